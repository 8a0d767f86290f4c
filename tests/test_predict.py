"""frn_det.predict: a demo model trained for a few iterations here predicts on val images exactly what
Trainer.test evaluated; the command writes drawn images or a drawn video, predictions.json (loadRes) and
summary.json; bad input gets one message and nothing written."""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from coco_tree import ROOT
from pycocotools.coco import COCO

from frn_det.config import build_cfg
from frn_det.predict import Predictor, cli

CONFIG = os.path.join(ROOT, "configs", "demo", "retinanet_frn_R18_shapes.yaml")
SCORE = 0.01  # after a few iterations most scores are still near the 0.01 prior: keep enough of them
VAL_IMAGES = [f"{i:06d}.png" for i in range(4)]


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    """tools/train_net.py on the demo config, a few iterations on the val split (nothing more to
    generate), then its own evaluation of the val split: (output folder, dataset root, evaluator's results)."""
    tmp = tmp_path_factory.mktemp("predict")
    data, out = tmp / "data", tmp / "model"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--config-file", CONFIG,
           "DATASETS.TRAIN", "('shapes_uniform_val',)", "SOLVER.MAX_ITER", "6", "SOLVER.IMS_PER_BATCH", "2",
           "SOLVER.WARMUP_ITERS", "2", "SOLVER.CHECKPOINT_PERIOD", "1000", "MODEL.RETINANET.SCORE_THRESH_TEST", str(SCORE),
           "TEST.DETECTIONS_PER_IMAGE", "20", "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(out)]
    proc = subprocess.run(cmd, env=dict(os.environ, FRN_DET_DATASETS=str(data)), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = json.load(open(out / "inference" / "shapes_uniform_val" / "coco_instances_results.json"))
    return out, data, evaluated


def _for_image(results, image_id):
    return [r for r in results if r["image_id"] == image_id]


def _assert_same(got, want):
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        assert (g["image_id"], g["category_id"]) == (w["image_id"], w["category_id"])
        np.testing.assert_allclose(g["bbox"], w["bbox"], rtol=0, atol=1e-3)
        assert g["score"] == pytest.approx(w["score"], abs=1e-5)


def _cfg(out, *opts):
    return build_cfg(str(out / "config.yaml"), ["MODEL.WEIGHTS", str(out / "model_final.pth"), *opts])


def test_predictor_gives_what_the_evaluator_evaluated(demo_model):
    from detectron2.evaluation.coco_evaluation import instances_to_coco_json

    out, data, evaluated = demo_model
    predictor = Predictor(_cfg(out))
    images = [cv2.imread(str(data / "uniform_val" / name)) for name in VAL_IMAGES]  # BGR
    singles = [predictor(im)["instances"] for im in images]
    for k, instances in enumerate(singles):
        assert instances.image_size == images[k].shape[:2]
        got = instances_to_coco_json(instances, k + 1)
        for r in got:
            r["category_id"] += 1  # the shapes' dataset ids are the contiguous ones + 1
        _assert_same(got, _for_image(evaluated, k + 1))
    # RGB in, the same; a list of images of one size is one batch with the same results
    rgb = predictor(images[0][:, :, ::-1].copy(), input_format="RGB")["instances"]
    assert torch.equal(rgb.pred_boxes.tensor, singles[0].pred_boxes.tensor)
    batch = predictor(images)
    assert len(batch) == len(images)
    for one, b in zip(singles, batch):
        torch.testing.assert_close(b["instances"].scores, one.scores)
        # a batch runs other conv shapes: the same boxes to float rounding, in pixels
        torch.testing.assert_close(b["instances"].pred_boxes.tensor, one.pred_boxes.tensor, rtol=0, atol=1e-3)


def test_command_on_val_images_matches_the_evaluator_and_loads_with_loadres(demo_model, tmp_path):
    """A fresh process with the dataset's root: image ids and category ids are the dataset's."""
    out, data, evaluated = demo_model
    folder = data / "uniform_val"
    cmd = [sys.executable, "-m", "frn_det.predict", "--config-file", str(out / "config.yaml"),
           "--input", str(folder / VAL_IMAGES[0]), str(folder / "00000[1-3].png"), "--output", str(tmp_path / "p"),
           "--confidence-threshold", str(SCORE), "MODEL.WEIGHTS", str(out / "model_final.pth")]
    proc = subprocess.run(cmd, env=dict(os.environ, FRN_DET_DATASETS=str(data)), capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "4 images in" in proc.stdout and "images/s" in proc.stdout
    predictions = json.load(open(tmp_path / "p" / "predictions.json"))
    for image_id in range(1, 5):
        _assert_same(_for_image(predictions, image_id), _for_image(evaluated, image_id))
    loaded = COCO(str(data / "annotations" / "instances_uniform_val.json")).loadRes(str(tmp_path / "p" / "predictions.json"))
    assert len(loaded.getAnnIds()) == len(predictions)
    for name in VAL_IMAGES:
        drawn = cv2.imread(str(tmp_path / "p" / name))
        assert drawn is not None and drawn.shape == cv2.imread(str(folder / name)).shape
    summary = json.load(open(tmp_path / "p" / "summary.json"))
    assert summary["images"] == 4 and summary["skipped"] == [] and summary["images_per_second"] > 0


def test_a_broken_image_is_skipped_and_the_others_predicted(demo_model, tmp_path, capsys):
    out, data, _ = demo_model
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(data / "uniform_val" / VAL_IMAGES[0], inputs / "a.png")
    (inputs / "b_broken.png").write_text("not an image")
    shutil.copy(data / "uniform_val" / VAL_IMAGES[1], inputs / "c.jpg")
    (inputs / "notes.txt").write_text("a folder's other files are not inputs")
    cli(["--config-file", str(out / "config.yaml"), "--input", str(inputs), "--output", str(tmp_path / "p"),
         "--confidence-threshold", str(SCORE), "MODEL.WEIGHTS", str(out / "model_final.pth")])
    summary = json.load(open(tmp_path / "p" / "summary.json"))
    assert summary["images"] == 2
    assert [s["file"] for s in summary["skipped"]] == [str(inputs / "b_broken.png")]
    assert "1 file(s) skipped" in capsys.readouterr().out
    predictions = json.load(open(tmp_path / "p" / "predictions.json"))
    assert {p["image_id"] for p in predictions} == {"a.png", "c.jpg"}  # in no registered dataset: file names
    assert sorted(os.listdir(tmp_path / "p")) == ["a.png", "c.jpg", "predictions.json", "summary.json"]
    assert cv2.imread(str(tmp_path / "p" / "c.jpg")).shape == (128, 128, 3)


def test_video_gives_one_drawn_frame_per_frame(demo_model, tmp_path):
    out, data, _ = demo_model
    video = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 5, (128, 128))
    for name in VAL_IMAGES + VAL_IMAGES[:1]:
        writer.write(cv2.imread(str(data / "uniform_val" / name)))
    writer.release()
    cli(["--config-file", str(out / "config.yaml"), "--video-input", video, "--output", str(tmp_path / "p"),
         "--confidence-threshold", str(SCORE), "MODEL.WEIGHTS", str(out / "model_final.pth")])
    capture, frames = cv2.VideoCapture(str(tmp_path / "p" / "clip.mp4")), 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (128, 128, 3)
        frames += 1
    assert frames == 5
    assert json.load(open(tmp_path / "p" / "summary.json"))["frames"] == 5
    ids = {p["image_id"] for p in json.load(open(tmp_path / "p" / "predictions.json"))}
    assert ids <= {f"clip.mp4#{i}" for i in range(5)} and ids
    assert not any(n.endswith(".partial.mp4") for n in os.listdir(tmp_path / "p"))


def _bad(tmp_path, out, files):
    """Each case: (argv without --output, the message's words)."""
    image = str(files / "one.png")
    weights = ["--input", image, "MODEL.WEIGHTS"]
    return {
        "missing weights": ([*weights, str(tmp_path / "nowhere.pth")], "no such file"),
        "not a checkpoint": ([*weights, str(files / "notes.pth")], "is not a checkpoint"),
        "another model's checkpoint": ([*weights, str(files / "other.pth")], "holds none of this model's weights"),
        "no weights": (["--input", image, "MODEL.WEIGHTS", ""], "--allow-untrained"),
        "no input matched": (["--input", str(files / "*.jpg"), str(files / "empty"), "MODEL.WEIGHTS",
                              str(out / "model_final.pth")], "no image files matched"),
        "video that can't be opened": (["--video-input", str(files / "notes.pth"), "MODEL.WEIGHTS",
                                        str(out / "model_final.pth")], "can't open it as a video"),
        "missing video": (["--video-input", str(files / "none.mp4"), "MODEL.WEIGHTS",
                           str(out / "model_final.pth")], "no such file"),
        "unknown config key": (["--input", image, "MODEL.WEIGHT", "x"], "MODEL.WEIGHTS"),
        "missing file named": (["--input", image, str(files / "typo.png"), "MODEL.WEIGHTS",
                                str(out / "model_final.pth")], "typo.png: no such file or folder"),
    }


def test_bad_input_gets_one_message_and_nothing_written(demo_model, tmp_path):
    out, data, _ = demo_model
    files = tmp_path / "files"
    (files / "empty").mkdir(parents=True)
    shutil.copy(data / "uniform_val" / VAL_IMAGES[0], files / "one.png")
    (files / "notes.pth").write_text("not a checkpoint")
    torch.save({"model": {"head.weight": torch.zeros(2)}}, files / "other.pth")
    for case, (argv, words) in _bad(tmp_path, out, files).items():
        dest = tmp_path / case.replace(" ", "_")
        with pytest.raises(SystemExit) as e:
            cli(["--config-file", str(out / "config.yaml"), "--output", str(dest), *argv])
        assert str(e.value).startswith("predict: ") and words in str(e.value), (case, str(e.value))
        assert not dest.exists(), case
    # the output folder is the inputs': refused before anything is drawn over them
    with pytest.raises(SystemExit, match="would overwrite the input"):
        cli(["--config-file", str(out / "config.yaml"), "--output", str(files), "--input", str(files / "one.png"),
             "MODEL.WEIGHTS", str(out / "model_final.pth")])
    assert sorted(os.listdir(files)) == ["empty", "notes.pth", "one.png", "other.pth"]
    # nothing decodes: an error, with the files listed in summary.json
    with pytest.raises(SystemExit, match="none of the 1 input"):
        cli(["--config-file", str(out / "config.yaml"), "--output", str(tmp_path / "none"), "--input",
             str(files / "notes.pth"), "MODEL.WEIGHTS", str(out / "model_final.pth")])
    assert json.load(open(tmp_path / "none" / "summary.json"))["skipped"][0]["file"] == str(files / "notes.pth")
    # the flag says an untrained model is intended
    cli(["--config-file", str(out / "config.yaml"), "--output", str(tmp_path / "untrained"), "--allow-untrained",
         "--input", str(files / "one.png"), "MODEL.WEIGHTS", ""])
    assert json.load(open(tmp_path / "untrained" / "summary.json"))["images"] == 1


def test_without_opencv_the_command_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 then raises ImportError
    with pytest.raises(SystemExit, match="pip install opencv-python-headless"):
        cli(["--config-file", CONFIG, "--input", str(tmp_path), "--output", str(tmp_path / "p")])
    assert not (tmp_path / "p").exists()


def test_ids_of_a_coco_dataset_not_loaded_yet(demo_model, tmp_path):
    """A dataset registered with detectron2's register_coco_instances knows its category ids only once
    loaded: predictions.json still gets the json's ids (image and category), and nothing is loaded."""
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from detectron2.data.datasets import register_coco_instances

    out, data, evaluated = demo_model
    coco = json.load(open(data / "annotations" / "instances_uniform_val.json"))
    for image in coco["images"]:
        image["id"] += 1000
    for ann in coco["annotations"]:
        ann["image_id"] += 1000
        ann["category_id"] *= 10
    for cat in coco["categories"]:
        cat["id"] *= 10
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    name = "predict_test_renumbered"
    register_coco_instances(name, {}, str(tmp_path / "coco.json"), str(data / "uniform_val"))
    try:
        cli(["--config-file", str(out / "config.yaml"), "--input", str(data / "uniform_val" / VAL_IMAGES[0]),
             "--output", str(tmp_path / "p"), "--confidence-threshold", str(SCORE), "MODEL.WEIGHTS",
             str(out / "model_final.pth"), "DATASETS.TEST", f"('{name}',)"])
        assert not MetadataCatalog.get(name).get("thing_dataset_id_to_contiguous_id", None)  # not loaded
        got = json.load(open(tmp_path / "p" / "predictions.json"))
        want = [dict(r, image_id=1001, category_id=r["category_id"] * 10) for r in _for_image(evaluated, 1)]
        _assert_same(got, want)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
