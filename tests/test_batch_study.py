"""tools/batch_study.py (frn_det.study.batch): a tiny study writes its table, plot and results, and a second run skips
the finished runs."""
import json
import os
import subprocess
import sys

import pytest

from coco_tree import ROOT, TINY_MODEL, make_coco_tree


@pytest.fixture
def batch_study():
    from frn_det.study import batch

    return batch


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


def test_plots_draw_the_cells_and_leave_out_gaps_of_models_without_detections(tmp_path):
    from frn_det.study.batch_report import plot, plot_sizes

    nan = float("nan")  # the AP of a model with no detections
    by_size = {128: {("gn", 8): {"AP": [50.0]}, ("frn", 8): {"AP": [48.0]}, ("gn", 2): {"AP": [40.0]}, ("frn", 2): {"AP": [nan]}},
               256: {("gn", 8): {"AP": [60.0]}, ("frn", 8): {"AP": [61.0, 63.0]}, ("gn", 2): {"AP": [35.0]}, ("frn", 2): {"AP": [30.0]}}}
    (ax,) = plot_sizes(by_size, ["frn", "gn"], [2, 8], str(tmp_path / "sizes.png"), "sizes").axes
    assert {line.get_label(): line.get_xydata().tolist() for line in ax.lines if line.get_label()[0] != "_"} == {
        "FRN - GN, 8 img": [[128, -2.0], [256, 2.0]], "FRN - GN, 2 img": [[256, -5.0]]}
    # AP against images per GPU: the mean over seeds, with its standard deviation as the error bar
    (ax,) = plot(by_size[256], ["frn", "gn"], [2, 8], str(tmp_path / "plot.png"), "plot").axes
    frn, gn = ax.containers
    assert frn[0].get_xydata().tolist() == [[2, 30.0], [8, 62.0]] and gn[0].get_xydata().tolist() == [[2, 35.0], [8, 60.0]]
    assert frn[2][0].get_segments()[1].tolist() == [[8, 62.0 - 2 ** 0.5], [8, 62.0 + 2 ** 0.5]]


def test_run_names_are_parsed_back_and_best_lr_is_the_first_best_mean(batch_study):
    from frn_det.study.best_lr import best_lr
    from frn_det.study.run_name import RunName, parse_schedule_folder, schedule_folder

    runs = batch_study.plan_runs(["frn", "gn_tlu"], [8], [0], {}, base_lrs=[None, 0.05], schedules=[400],
                                 sizes=[128, 256], own_size=128)
    parsed = [RunName.parse(r["name"]) for r in runs]
    assert [(p.method, p.imgs, p.seed, p.lr, p.size) for p in parsed] == [
        (r["method"], r["imgs"], r["seed"], r["base_lr"], None if r["size"] == 128 else r["size"]) for r in runs]
    assert "gn_tlu_8img_seed0_lr0.05_256px" in [str(p) for p in parsed]
    assert all(parse_schedule_folder(os.path.dirname(r["dir"])) == 400 for r in runs) and schedule_folder(400) == "iters400"
    assert RunName.parse("shapes_center") is None and RunName.parse("frn_8img_seed0_lr0.0.5") is None
    assert parse_schedule_folder("frn_8img_seed0") is None
    # the best mean AP over the seeds every lr ran (seed 0: 10, 12, 13), not 0.02's mean of two (12)
    assert best_lr({0.02: {0: 10, 1: 14}, 0.1: {0: 12}, 0.05: {0: 13, 1: 11}}) == 0.05 and best_lr({}) is None
    # no seed in common: each lr's own mean, the first among equals
    assert best_lr({0.02: {0: 10, 1: 14}, 0.1: {2: 12}}) == 0.02


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


def test_a_failed_run_fails_the_study(tmp_path):
    # no COCO under DETECTRON2_DATASETS: the run stops at its data; the study reports it and exits 1
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f'_BASE_: "{os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")}"\n')
    env = {**os.environ, "DETECTRON2_DATASETS": str(tmp_path / "no_datasets")}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "batch_study.py"), "--config", str(cfg),
                           "--methods", "frn", "--imgs", "2", "--extra-seeds", "--output", str(tmp_path / "study"),
                           *TINY_MODEL], env=env, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "frn_2img_seed0: FAILED (exit code 1" in proc.stdout
    assert proc.stderr.rstrip().endswith("batch study: 1 run(s) failed: frn_2img_seed0")
    assert "not found: missing" in (tmp_path / "study" / "frn_2img_seed0" / "study.log").read_text()


def test_schedules_scale_warmup_and_go_to_their_own_folders(batch_study):
    runs = batch_study.plan_runs(["frn", "gn"], [8, 2], [0], {}, schedules=[400, 1600])
    assert [r["dir"] for r in runs][:2] == [os.path.join("iters400", "frn_8img_seed0"),
                                            os.path.join("iters400", "gn_8img_seed0")]
    ref = dict(batch=8, steps=400, lr=0.02, warmup=40, checkpoint=200)
    s = batch_study.run_solver(runs[-1], ref, 1)  # gn, 2 images, 1600 reference iterations
    assert (s["MAX_ITER"], s["WARMUP_ITERS"], s["CHECKPOINT_PERIOD"], s["IMS_PER_BATCH"]) == (6400, 640, 3200, 2)
    assert s["BASE_LR"] == pytest.approx(0.005)
    records = [{**r, "result": {"val": {"AP": 10.0 * (r["schedule"] == 1600) + r["imgs"], "AP50": 0, "AP75": 0}}}
               for r in runs]
    assert batch_study.summarize(records, 1600)[("gn", 2)]["AP"] == [12.0]
    assert batch_study.summarize(records, 400)[("gn", 2)]["AP"] == [2.0]


def test_tiny_convergence_curve_keeps_committable_results(batch_study, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(make_coco_tree(tmp_path / "datasets")))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f'_BASE_: "{os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")}"\n'
                   "SOLVER:\n  IMS_PER_BATCH: 2\n  MAX_ITER: 2\n  WARMUP_ITERS: 1\n  CHECKPOINT_PERIOD: 2\n")
    keep = tmp_path / "kept"
    records = batch_study.main(["--config", str(cfg), "--methods", "frn", "--imgs", "2", "--extra-seeds",
                                "--schedules", "2", "4", "--output", str(tmp_path / "study"), "--keep-in",
                                str(keep), *TINY_MODEL])
    assert [r["dir"] for r in records] == [os.path.join("iters2", "frn_2img_seed0"), os.path.join("iters4", "frn_2img_seed0")]
    assert all("failed" not in r["result"] for r in records)
    last = [json.loads(x) for x in open(keep / "iters4" / "frn_2img_seed0" / "metrics.json") if '"total_loss"' in x][-1]
    assert last["iteration"] == 3
    assert os.path.getsize(keep / "curve.png") > 1000 and (keep / "iters2" / "frn_2img_seed0" / "results.json").exists()
    assert not (keep / "iters2" / "frn_2img_seed0" / "model_final.pth").exists()
    table = (keep / "table.md").read_text()
    assert "### 2 iterations of 2 images (4 images seen)" in table and "### 4 iterations" in table
    summary = json.loads((keep / "results.json").read_text())
    assert "--schedules" in summary["command"] and summary["config"] == str(cfg)  # outside the repo: as given
    monkeypatch.chdir(tmp_path)  # paths in the working directory are written relative to it, others as given
    assert batch_study.relative(str(tmp_path / "configs" / "x.yaml")) == os.path.join("configs", "x.yaml")
    assert batch_study.relative(os.path.join(ROOT, "configs", "x.yaml")) == os.path.join(ROOT, "configs", "x.yaml")


def test_sizes_scale_images_and_anchors_and_name_the_runs(batch_study):
    runs = batch_study.plan_runs(["frn"], [8], [0], {}, base_lrs=[0.02], sizes=[128, 256], own_size=128)
    assert [(r["name"], r["size"]) for r in runs] == [("frn_8img_seed0_lr0.02", 128), ("frn_8img_seed0_lr0.02_256px", 256)]
    cfg = batch_study.reference_config(batch_study.STUDY_CONFIG, [])
    assert batch_study.config_size(cfg) == 128 and batch_study.size_opts(128, cfg) == []
    opts = dict(zip(*[iter(batch_study.size_opts(256, cfg))] * 2))
    assert (opts["INPUT.MIN_SIZE_TRAIN"], opts["INPUT.MAX_SIZE_TEST"]) == ("(256,)", "256")
    # every anchor doubles, so each object stays on its pyramid level
    assert opts["MODEL.ANCHOR_GENERATOR.SIZES"].startswith("[[24.0, 30.24, 38.1], [48.0, 60.48, 76.2]")
    records = [{**r, "result": {"val": {"AP": 10.0 if r["size"] == 128 else 20.0, "AP50": 0, "AP75": 0}}} for r in runs]
    assert batch_study.summarize(records, size=256)[("frn", 8)]["AP"] == [20.0]


def test_tiny_study_at_two_sizes(batch_study, tmp_path, monkeypatch):
    import yaml

    monkeypatch.setenv("DETECTRON2_DATASETS", str(make_coco_tree(tmp_path / "datasets")))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(f'_BASE_: "{os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")}"\n'
                   "SOLVER:\n  IMS_PER_BATCH: 2\n  MAX_ITER: 1\n  WARMUP_ITERS: 1\n  CHECKPOINT_PERIOD: 1\n")
    out = tmp_path / "study"
    records = batch_study.main(["--config", str(cfg), "--methods", "frn", "gn", "--imgs", "2", "--extra-seeds",
                                "--sizes", "64", "96", "--output", str(out), *TINY_MODEL,
                                "MODEL.FPN.OUT_CHANNELS", "64"])  # GN(32) needs 2 values per group on 1x1 maps
    assert [r["name"] for r in records] == ["frn_2img_seed0", "gn_2img_seed0", "frn_2img_seed0_96px", "gn_2img_seed0_96px"]
    assert all("failed" not in r["result"] for r in records), records
    run_cfg = yaml.safe_load(open(out / "frn_2img_seed0_96px" / "config.yaml"))
    assert run_cfg["INPUT"]["MIN_SIZE_TRAIN"] == [96] and run_cfg["INPUT"]["MAX_SIZE_TEST"] == 96
    assert run_cfg["MODEL"]["ANCHOR_GENERATOR"]["SIZES"] == [[12], [24], [48], [96], [192]]
    assert os.path.getsize(out / "sizes.png") > 1000
    assert "### 96 px" in (out / "table.md").read_text()
    assert json.loads((out / "results.json").read_text())["sizes"] == [64, 96]


def test_committed_results_name_no_machine_paths():
    import glob

    for path in ("benchmarks/batch_study/results.json", "benchmarks/batch_study_lr/results.json",
                 *glob.glob("benchmarks/convergence/**/*.json", root_dir=ROOT, recursive=True),
                 *glob.glob("benchmarks/convergence/**/*.yaml", root_dir=ROOT, recursive=True)):
        text = open(os.path.join(ROOT, path)).read()
        assert "/work/" not in text and ROOT not in text, path


def test_a_diverged_run_is_kept_with_its_error_line(batch_study, tmp_path):
    from frn_det.study import batch_runs

    error = ("FloatingPointError: Non-finite loss at iteration 403: loss_cls=nan, loss_box_reg=nan (all losses: "
             "{'loss_cls': nan, 'loss_box_reg': nan}). Training stopped before the optimizer step\n")
    for name, log in [("frn_8img_seed0_lr0.5", "Traceback (most recent call last):\n  File ...\n" + error),
                      ("frn_2img_seed0", "KeyError: 'not found: missing'\n")]:
        run = tmp_path / "study" / name
        run.mkdir(parents=True)
        (run / "study.log").write_text(log)
        (run / "config.yaml").write_text("SEED: 0\n")
        batch_runs.mark_diverged(str(run))
    assert (tmp_path / "study" / "frn_8img_seed0_lr0.5" / "diverged.txt").read_text() == error
    assert not (tmp_path / "study" / "frn_2img_seed0" / "diverged.txt").exists()  # failed, not diverged
    records = [{"dir": "frn_8img_seed0_lr0.5"}, {"dir": "frn_2img_seed0"}]
    batch_study.keep_results(str(tmp_path / "study"), records, str(tmp_path / "kept"))
    assert sorted(os.listdir(tmp_path / "kept" / "frn_8img_seed0_lr0.5")) == ["config.yaml", "diverged.txt"]
    # a later attempt that failed otherwise is judged by its own part of the log
    log = tmp_path / "study" / "frn_8img_seed0_lr0.5" / "study.log"
    (log.parent / "diverged.txt").unlink()
    start = log.stat().st_size
    log.write_text(log.read_text() + "KeyError: 'not found: missing'\n")
    batch_runs.mark_diverged(str(log.parent), start)
    assert not (log.parent / "diverged.txt").exists()
