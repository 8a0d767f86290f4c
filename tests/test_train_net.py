"""tools/train_net.py end to end on a tiny COCO-shaped tree under a temporary DETECTRON2_DATASETS."""
import json
import os
import subprocess
import sys

import pytest

from coco_tree import ROOT, TINY, make_coco_tree

TRAIN_NET = os.path.join(ROOT, "tools", "train_net.py")


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    return make_coco_tree(tmp_path_factory.mktemp("datasets"))


def run(args, datasets, check=True):
    env = dict(os.environ, DETECTRON2_DATASETS=str(datasets))
    proc = subprocess.run([sys.executable, TRAIN_NET, *args], env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-5000:])
    return proc


def test_train_eval_only_and_resume(coco_root, tmp_path):
    out = str(tmp_path / "out")
    cfg = ["--config-file", os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")]
    proc = run([*cfg, *TINY, "SOLVER.MAX_ITER", "4", "OUTPUT_DIR", out], coco_root)
    assert os.path.exists(os.path.join(out, "model_final.pth"))
    # MODEL.FRN.IMPL auto: the CPU's candidate checked against frn_reference, logged and recorded
    choice = json.loads(open(os.path.join(out, "frn_path.json")).read())
    assert choice["device_type"] == "cpu" and choice["choice"] in choice["candidates"] and not choice["left_out"]
    assert f"| {choice['choice']} | agrees |" in proc.stdout + proc.stderr
    strict = dict(parse_constant=lambda c: pytest.fail(f"non-strict JSON: bare {c}"))  # NaN APs are null
    headline = json.loads(open(os.path.join(out, "results.json")).read(), **strict)["headline"]["coco_2017_val"]
    assert set(headline) == {"AP", "AP50", "AP75"}

    proc = run([*cfg, "--eval-only", *TINY, "MODEL.WEIGHTS", os.path.join(out, "model_final.pth"),
                "OUTPUT_DIR", out], coco_root)
    log = proc.stdout + proc.stderr
    assert "| dataset" in log and "AP50" in log and "AP75" in log

    # --resume continues from the last checkpoint (iteration 4), not from scratch
    proc = run([*cfg, "--resume", *TINY, "SOLVER.MAX_ITER", "6", "OUTPUT_DIR", out], coco_root)
    log = proc.stdout + proc.stderr
    assert "Starting training from iteration 4" in log
    assert f"FRN path '{choice['choice']}', as chosen at the start of this run" in log
    metrics = [json.loads(line, **strict) for line in open(os.path.join(out, "metrics.json")) if '"iteration"' in line]
    # one line per run (the last iteration): 3 from the first, 5 from the resumed one, nothing from 0
    assert [m["iteration"] for m in metrics if "total_loss" in m] == [3, 5]


def test_missing_coco_is_one_clear_error(tmp_path):
    proc = run(["--config-file", os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml"), "OUTPUT_DIR",
                str(tmp_path / "out")], tmp_path / "nothing", check=False)
    assert proc.returncode != 0
    assert "Dataset 'coco_2017_train' not found" in proc.stderr and "DETECTRON2_DATASETS" in proc.stderr
