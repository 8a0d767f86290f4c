"""tools/batch_study.py: a tiny study writes its table, plot and results, and a second run skips
the finished runs."""
import importlib.util
import json
import os

import pytest

from coco_tree import ROOT, TINY_MODEL, make_coco_tree


@pytest.fixture
def batch_study():
    spec = importlib.util.spec_from_file_location("batch_study", os.path.join(ROOT, "tools", "batch_study.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_and_scaling_rule(batch_study):
    runs = batch_study.plan_runs(["frn", "bn"], [1, 2, 8], [0], {2: [1, 2]})
    assert [r["name"] for r in runs if r["imgs"] == 2] == [
        "frn_2img_seed0", "bn_2img_seed0", "frn_2img_seed1", "bn_2img_seed1", "frn_2img_seed2", "bn_2img_seed2"]
    assert len(runs) == 2 + 6 + 2
    from frn_det.config.protocol import scaled_solver

    s = scaled_solver(2, 1, reference_batch=8, reference_steps=1000, reference_lr=0.02, reference_warmup=100)
    assert (s["MAX_ITER"], s["BASE_LR"], s["WARMUP_ITERS"], s["IMS_PER_BATCH"]) == (4000, 0.005, 400, 2)


def test_best_learning_rate_per_cell(batch_study):
    runs = batch_study.plan_runs(["gn"], [2, 8], [0], {2: [1]}, base_lrs=[0.02, 0.1])
    assert [r["name"] for r in runs][:3] == ["gn_2img_seed0_lr0.02", "gn_2img_seed1_lr0.02", "gn_8img_seed0_lr0.02"]
    assert len(runs) == 6 and {r["base_lr"] for r in runs} == {0.02, 0.1}
    ap = {"gn_2img_seed0_lr0.02": 10, "gn_2img_seed1_lr0.02": 14, "gn_8img_seed0_lr0.02": 9,
          "gn_2img_seed0_lr0.1": 13, "gn_2img_seed1_lr0.1": 12, "gn_8img_seed0_lr0.1": 7}
    records = [{**r, "result": {"val": {"AP": ap[r["name"]], "AP50": 0.0, "AP75": 0.0}}} for r in runs]
    cells = batch_study.summarize(records)
    # 2 images: mean 12 at lr 0.02 against 12.5 at lr 0.1; 8 images: 9 against 7
    assert cells[("gn", 2)]["base_lr"] == 0.1 and cells[("gn", 2)]["AP"] == [13, 12]
    assert cells[("gn", 8)]["base_lr"] == 0.02 and cells[("gn", 8)]["AP"] == [9]
    table = batch_study.markdown_table(cells, ["gn"], [2, 8], [0.02, 0.1])
    assert "| GN | 9.0 | 12.5 ± 0.7 |" in table and "| GN best lr | 0.02 | 0.1 |" in table


def test_tiny_study_writes_outputs_and_skips_finished_runs(batch_study, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(make_coco_tree(tmp_path / "datasets")))
    out = tmp_path / "study"
    # The study scales from the config file's solver: 4 iterations at 2 images -> 8 at 1 image.
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f'_BASE_: "{os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")}"\n'
                   "SOLVER:\n  IMS_PER_BATCH: 2\n  MAX_ITER: 4\n  WARMUP_ITERS: 2\n  CHECKPOINT_PERIOD: 2\n")
    argv = ["--config", str(cfg), "--methods", "frn", "--imgs", "1", "2", "--extra-seeds",
            "--output", str(out), *TINY_MODEL]
    records = batch_study.main(argv)
    assert [r["name"] for r in records] == ["frn_1img_seed0", "frn_2img_seed0"]
    assert all("failed" not in r["result"] and not r["skipped"] for r in records)
    assert os.path.getsize(out / "plot.png") > 1000
    table = (out / "table.md").read_text()
    assert "| FRN |" in table and "AP50 @2" in table and "AP75 @1" in table
    results = json.loads((out / "results.json").read_text())
    assert len(results["runs"]) == 2
    # the 1-image run followed the rule: 8 iterations
    last = [json.loads(x) for x in open(out / "frn_1img_seed0" / "metrics.json") if '"total_loss"' in x][-1]
    assert last["iteration"] == 7

    again = batch_study.main(argv)
    assert all(r["skipped"] for r in again)
