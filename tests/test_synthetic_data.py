"""The generated shapes dataset: determinism, annotations, COCO / detectron2 loading, idempotency, looks."""
import hashlib
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image
from pycocotools.coco import COCO

from frn_det.data import (
    DEFAULT_DATASETS,
    SHAPE_CLASSES,
    ensure_generated,
    generate_shapes_dataset,
    register_default_datasets,
    register_shapes_dataset,
)
from frn_det.data import render, shapes


def _unregister(*names):
    for name in names:
        if name in DatasetCatalog.list():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_deterministic(tmp_path):
    a = generate_shapes_dataset(tmp_path / "a", "train", 6, seed=3)
    b = generate_shapes_dataset(tmp_path / "b", "train", 6, seed=3)
    assert open(a, "rb").read() == open(b, "rb").read()
    for i in range(6):
        name = f"{i:06d}.png"
        assert (tmp_path / "a" / "train" / name).read_bytes() == (tmp_path / "b" / "train" / name).read_bytes()
    c = generate_shapes_dataset(tmp_path / "c", "train", 6, seed=4)
    assert open(a, "rb").read() != open(c, "rb").read()


@pytest.mark.parametrize("look", ["photo", "uniform", "real"])
def test_annotations_valid(tmp_path, look):
    size = 96  # a non-default size on purpose
    path = generate_shapes_dataset(tmp_path, "val", 12, image_size=size, look=look)
    coco = COCO(path)
    assert sorted(coco.getCatIds()) == list(range(1, len(SHAPE_CLASSES) + 1))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(SHAPE_CLASSES)
    assert len(coco.getImgIds()) == 12 and len(coco.getAnnIds()) >= 12
    for img in coco.loadImgs(coco.getImgIds()):
        assert (img["width"], img["height"]) == (size, size)
        assert (tmp_path / "val" / img["file_name"]).exists()
        assert 1 <= len(coco.getAnnIds(imgIds=img["id"])) <= 6
    for ann in coco.loadAnns(coco.getAnnIds()):
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= size and y + h <= size
        assert ann["iscrowd"] == 0 and 0 < ann["area"] <= w * h
        poly = np.array(ann["segmentation"][0]).reshape(-1, 2)
        assert len(poly) >= 3
        # the outline lies in the box, up to the anti-aliasing fringe
        assert (poly >= [x - 1, y - 1]).all() and (poly <= [x + w + 1, y + h + 1]).all()


@pytest.mark.parametrize("look", ["photo", "uniform", "real"])
def test_boxes_tight(look):
    for i in range(20):
        img, objs = render.render_sample(np.random.default_rng([7, i]), 128, look, num_objects=1)
        assert len(objs) == 1
        x, y, w, h = objs[0]["bbox"]
        ys, xs = np.nonzero(objs[0]["mask"])
        # every pixel the object changed is in the box, and the box touches such pixels on all sides
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
        if look == "uniform":  # independent of the mask: pixels far from the grey background
            far = np.abs(img.astype(int) - 102).max(-1) > 60
            assert far.any()
            fy, fx = np.nonzero(far)
            assert fx.min() >= x and fx.max() < x + w and fy.min() >= y and fy.max() < y + h


@pytest.mark.parametrize("look", ["photo", "real"])
def test_objects_do_not_overlap(look):
    for i in range(10):
        _, objs = render.render_sample(np.random.default_rng([5, i]), 128, look, num_objects=6)
        assert (np.sum([o["mask"] for o in objs], axis=0) <= 1).all()


def test_photo_statistics_vary_more_than_uniform():
    def stats(look):
        imgs = [render.render_sample(np.random.default_rng([1, i]), 128, look)[0] / 255.0 for i in range(24)]
        means = np.array([im.mean() for im in imgs])
        casts = np.array([im.reshape(-1, 3).mean(0) / im.mean() for im in imgs])  # colour balance
        return means.std(), casts.std(0).mean()

    photo_mean_std, photo_cast_std = stats("photo")
    uniform_mean_std, uniform_cast_std = stats("uniform")
    assert photo_mean_std > 0.1 and photo_mean_std > 4 * uniform_mean_std
    assert photo_cast_std > 2 * uniform_cast_std


# Pixels and annotations of the first 8 images (seed 0) of the uniform and photo looks, pinned so that
# committed results stay reproducible when the generator changes. Decoded pixels, not PNG bytes,
# so that another zlib in Pillow does not fail the test (the files would still be valid).
_PINNED = {
    "photo": ("00cd7a95cd0ede9dfc770c425e9bc0afcebe9919693a7bb0372743165990d209",
              "78ce190dc82334d761e094aaf15afbbd2cac5810760626ed4d1800c8f4a28b44"),
    "uniform": ("1ef8908ee67ba1e6adda25a5ca9b10729ace28b6db4fbfe300f35df039c1dda5",
                "38b5b66e278e99254c6012663199c18fb60059a908ee5c850f146328e16a363f"),
}


@pytest.mark.parametrize("look", sorted(_PINNED))
def test_existing_looks_unchanged(tmp_path, look):
    path = generate_shapes_dataset(tmp_path, "train", 8, seed=0, look=look)
    pixels = hashlib.sha256()
    for i in range(8):
        pixels.update(np.asarray(Image.open(tmp_path / "train" / f"{i:06d}.png")).tobytes())
    assert (pixels.hexdigest(), hashlib.sha256(open(path, "rb").read()).hexdigest()) == _PINNED[look]
    manifest = json.load(open(tmp_path / "annotations" / "manifest_train.json"))
    assert manifest == {"generator": "frn_shapes-2", "split": "train", "num_images": 8, "image_size": 128,
                        "seed": 0, "variation": look, "classes": list(SHAPE_CLASSES)}


def test_real_deterministic(tmp_path):
    a = generate_shapes_dataset(tmp_path / "a", "real", 4, seed=3, look="real")
    b = generate_shapes_dataset(tmp_path / "b", "real", 4, seed=3, look="real")
    for rel in ["annotations/instances_real.json", "annotations/manifest_real.json"] + [
            f"real/{i:06d}.png" for i in range(4)]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    manifest = json.load(open(tmp_path / "a" / "annotations" / "manifest_real.json"))
    assert manifest["generator"] == shapes.REAL_GENERATOR_VERSION != shapes.GENERATOR_VERSION
    assert manifest["photos"] == render.real_photos()[1]
    c = generate_shapes_dataset(tmp_path / "c", "real", 4, seed=4, look="real")
    assert open(a, "rb").read() == open(b, "rb").read() != open(c, "rb").read()


def _photo_crop(index, box, flipped, size):
    """The real look's background recomputed from skimage.data, independently of frn_det.data.render."""
    import skimage.data

    name = render.REAL_PHOTOS[index]
    pixels = getattr(skimage.data, name)()
    pixels = pixels[0] if name == "stereo_motorcycle" else pixels
    region = Image.fromarray(pixels).convert("RGB").crop(box)
    crop = np.asarray(region.resize((size, size), Image.Resampling.LANCZOS))
    return (crop[:, ::-1] if flipped else crop), np.asarray(region)


def test_real_backgrounds_are_photo_crops():
    images, used = [], set()
    for i in range(12):
        _, (index, box, flipped) = render.real_background(np.random.default_rng([9, i]), 128)
        img, objs = render.render_sample(np.random.default_rng([9, i]), 128, "real")
        expected, region = _photo_crop(index, box, flipped, 128)
        covered = np.any([o["mask"] for o in objs], axis=0)
        # every pixel outside the objects is the photo's, untouched (no lighting, cast or noise on top)
        assert (img[~covered] == expected[~covered]).all()
        assert (img[covered] != expected[covered]).any()
        # the crop keeps the statistics of the photo region it shows
        assert np.abs(expected.reshape(-1, 3).mean(0) - region.reshape(-1, 3).mean(0)).max() < 3
        assert expected.std() > 0.5 * region.std()
        images.append(img)
        used.add(index)
    assert len(used) >= 5  # several photos, not one
    assert len({im.tobytes() for im in images}) == len(images)


def test_real_photos_bundled_not_downloaded(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network used while loading the real look's photos")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    render.real_photos.cache_clear()
    try:
        photos, digest = render.real_photos()
    finally:
        render.real_photos.cache_clear()
    assert len(photos) == len(render.REAL_PHOTOS) and len(digest) == 16
    assert all(p.mode == "RGB" and min(p.size) >= 256 for p in photos)


def test_skimage_imported_lazily():
    code = "import sys, frn_det, frn_det.data; assert 'skimage' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_idempotent(tmp_path):
    path = generate_shapes_dataset(tmp_path, "train", 4)
    files = [path, tmp_path / "annotations" / "manifest_train.json", tmp_path / "train" / "000000.png"]
    mtimes = [os.stat(f).st_mtime_ns for f in files]
    assert generate_shapes_dataset(tmp_path, "train", 4) == path
    assert [os.stat(f).st_mtime_ns for f in files] == mtimes
    # a different request, or a missing image, regenerates
    generate_shapes_dataset(tmp_path, "train", 5)
    assert len(json.load(open(path))["images"]) == 5
    os.remove(tmp_path / "train" / "000004.png")
    generate_shapes_dataset(tmp_path, "train", 5)
    assert (tmp_path / "train" / "000004.png").exists()
    with pytest.raises(ValueError):
        generate_shapes_dataset(tmp_path, "train", 5, look="photos")


def test_detectron2_registration(tmp_path):
    name = "frn_det_test_shapes"
    _unregister(name)
    try:
        register_shapes_dataset(name, tmp_path, "val", 5, seed=2)
        meta = MetadataCatalog.get(name)
        assert not os.path.exists(meta.json_file)  # registration is lazy
        dicts = DatasetCatalog.get(name)
        coco = json.load(open(meta.json_file))
        assert len(dicts) == 5
        for d in dicts:
            assert os.path.exists(d["file_name"]) and (d["height"], d["width"]) == (128, 128)
            assert len(d["annotations"]) == sum(a["image_id"] == d["image_id"] for a in coco["annotations"])
            assert all(0 <= a["category_id"] < len(SHAPE_CLASSES) for a in d["annotations"])
        assert meta.thing_classes == list(SHAPE_CLASSES) and meta.evaluator_type == "coco"
        assert ensure_generated(name) == meta.json_file
        assert ensure_generated("coco_2017_val") is None
    finally:
        _unregister(name)


def test_register_default_datasets_twice(tmp_path):
    # import frn_det registered the names already: set them aside, register anew, then put them back
    saved = {n: (DatasetCatalog[n], MetadataCatalog.get(n)) for n in DEFAULT_DATASETS if n in DatasetCatalog.list()}
    assert set(saved) == set(DEFAULT_DATASETS)
    _unregister(*DEFAULT_DATASETS)
    try:
        assert register_default_datasets(tmp_path) == tuple(DEFAULT_DATASETS)
        assert register_default_datasets(tmp_path) == tuple(DEFAULT_DATASETS)
        assert set(DEFAULT_DATASETS) <= set(DatasetCatalog.list())
        assert not any(tmp_path.iterdir())  # nothing generated until used
        for n in DEFAULT_DATASETS:
            assert MetadataCatalog.get(n).json_file.startswith(str(tmp_path))
        # another root for names already registered is an error, not a silent no-op
        with pytest.raises(ValueError, match="registered under"):
            register_default_datasets(tmp_path / "elsewhere")
    finally:
        _unregister(*DEFAULT_DATASETS)
        for n, (load, meta) in saved.items():
            DatasetCatalog.register(n, load)
            MetadataCatalog[n] = meta
