"""The shapes dataset's files: PNG images and a COCO json, the same bytes for the same arguments, written
once and regenerated only when the arguments or the renderer change."""
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from frn_det.utils import write_atomic, write_json

from .render import LOOKS, SHAPE_CLASSES, real_photos, render_sample

# Part of the manifest: bump it whenever rendering changes, so that stale files are regenerated.
GENERATOR_VERSION = "frn_shapes-2"
# The real look's own version, so that changing it leaves the other looks' manifests (and files) alone.
REAL_GENERATOR_VERSION = "frn_shapes_real-1"


def dataset_paths(root, split):
    """(image folder, COCO json, manifest) of a split under root."""
    root = Path(root)
    return root / split, root / "annotations" / f"instances_{split}.json", root / "annotations" / f"manifest_{split}.json"


def generate_shapes_dataset(root, split, num_images, image_size=128, seed=0, look="photo"):
    """Write `root/<split>/NNNNNN.png` and `root/annotations/instances_<split>.json` (COCO); return the json path.

    Deterministic: the same arguments give the same bytes. Idempotent: does nothing when the json, the
    images and `root/annotations/manifest_<split>.json` exist and the manifest matches the arguments and
    GENERATOR_VERSION (REAL_GENERATOR_VERSION and the photos' digest for the real look); otherwise
    (re)generates everything. Takes about 3-4 ms per 128 px image.
    """
    if look not in LOOKS:
        raise ValueError(f"look must be one of {LOOKS}, got {look!r}")
    image_dir, json_path, manifest_path = dataset_paths(root, split)
    # "variation" is the look's key in manifests already on disk: renaming it would regenerate them
    manifest = {"generator": GENERATOR_VERSION, "split": split, "num_images": int(num_images),
                "image_size": int(image_size), "seed": int(seed), "variation": look,
                "classes": list(SHAPE_CLASSES)}
    if look == "real":  # other photos (another scikit-image) regenerate; other looks' manifests unchanged
        manifest.update(generator=REAL_GENERATOR_VERSION, photos=real_photos()[1])
    names = [f"{i:06d}.png" for i in range(num_images)]
    if json_path.exists() and manifest_path.exists() and image_dir.is_dir():
        try:
            current = json.loads(manifest_path.read_text())
        except ValueError:
            current = None
        if current == manifest and set(names) <= set(os.listdir(image_dir)):
            return str(json_path)

    image_dir.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    look_code = LOOKS.index(look)
    images, annotations = [], []
    for index, name in enumerate(names):
        rng = np.random.default_rng([int(seed), look_code, index])
        pixels, objects = render_sample(rng, image_size, look)
        write_atomic(image_dir / name, lambda f: Image.fromarray(pixels).save(f, format="PNG", compress_level=1),
                     fsync=False)
        images.append({"id": index + 1, "file_name": name, "width": image_size, "height": image_size})
        for o in objects:
            annotations.append({
                "id": len(annotations) + 1, "image_id": index + 1, "category_id": o["category"] + 1,
                "bbox": o["bbox"], "area": o["area"], "iscrowd": 0, "segmentation": [o["segmentation"]],
            })
    coco = {
        "info": manifest, "licenses": [], "images": images, "annotations": annotations,
        "categories": [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(SHAPE_CLASSES)],
    }
    write_json(json_path, coco)
    write_json(manifest_path, manifest)  # last: marks completion
    return str(json_path)
