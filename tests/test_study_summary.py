"""tools/study_summary.py (the study's tables, Table 6's claims and plots) and norm_health.py --training
(the monitor's records of training), on hand-made run folders; the plots' drawing
(frn_det.study.report_plots); and the committed summary against the committed runs."""
import importlib
import json
import os
from pathlib import Path

import pytest
import yaml

from coco_tree import ROOT
from frn_det.study.summary import ablation, cells, plots, report, runs as study_runs, tables


def _tool(name):
    """The package module behind tools/<name>.py."""
    return importlib.import_module({"norm_health": "frn_det.study.norm_health", "bn_statistics": "frn_det.study.bn_statistics"}[name])


def _lines(ax):
    """{legend label: [(x, y)]} of a panel's plain lines (errorbar lines and the zero line have none)."""
    return {line.get_label(): [tuple(p) for p in line.get_xydata()] for line in ax.lines
            if not line.get_label().startswith("_")}


def _run(study, variant, name, ap, imgs, lr=0.02, metrics=(), size=128):
    folder = study / variant / name
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"headline": {"shapes_val": {"AP": ap, "AP50": ap + 20, "AP75": ap + 5}}}))
    (folder / "config.yaml").write_text(yaml.safe_dump(
        {"SOLVER": {"IMS_PER_BATCH": imgs, "BASE_LR": lr * imgs / 8, "MAX_ITER": 1600 * 8 // imgs},
         "INPUT": {"MAX_SIZE_TRAIN": size},
         "DATASETS": {"TRAIN": ["shapes_real_train" if variant.startswith("real") else "shapes_train"]}}))
    (folder / "metrics.json").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return folder


@pytest.fixture
def study(tmp_path):
    s = tmp_path / "study"
    for variant, name, ap, imgs in [
        ("shapes", "frn_8img_seed0", 70.0, 8), ("shapes", "gn_8img_seed0", 70.8, 8),
        ("shapes", "frn_2img_seed0", 69.0, 2), ("shapes", "frn_2img_seed1", 69.4, 2),
        ("shapes", "gn_2img_seed0", 72.0, 2), ("shapes", "bn_8img_seed0", 60.0, 8), ("shapes", "bn_2img_seed0", 58.0, 2),
        ("shapes_center", "frn_2img_seed0", 71.5, 2),
        ("shapes", "frn_8img_seed0_lr0.05", 69.0, 8), ("shapes", "gn_8img_seed0_lr0.05", 65.0, 8),
        ("shapes", "gn_2img_seed0_lr0.05", 80.0, 2),
    ]:
        _run(s, variant, name, ap, imgs, lr=0.05 if name.endswith("lr0.05") else 0.02)
    return s


def test_runs_are_read_from_their_folders(study):
    runs = study_runs.load_runs(str(study))
    assert len(runs) == 11
    frn2 = [r for r in runs if r["variant"] == "shapes" and r["method"] == "frn" and r["imgs"] == 2]
    assert sorted(r["seed"] for r in frn2) == [0, 1]
    assert {r["lr"] for r in runs if r["variant"] == "shapes"} == {0.02, 0.05}
    assert {r["iters"] * r["imgs"] // 8 for r in runs} == {1600}
    # a metric written as null (a strict JSON NaN) reads as NaN
    (study / "shapes" / "bn_2img_seed0" / "results.json").write_text(
        json.dumps({"headline": {"shapes_val": {"AP": 58.0, "AP50": 78.0, "AP75": None}}}))
    (bn2,) = [r for r in study_runs.load_runs(str(study)) if r["method"] == "bn" and r["imgs"] == 2]
    assert (bn2["AP"], bn2["AP75"] != bn2["AP75"]) == (58.0, True)


def test_sizes_get_their_own_tables_and_gaps(study, tmp_path):
    for variant, name, ap, imgs in [("shapes", "frn_8img_seed0_lr0.02_256px", 80.0, 8),
                                    ("shapes", "gn_8img_seed0_lr0.02_256px", 83.0, 8),
                                    ("shapes_learnable_eps", "frn_8img_seed0_lr0.02_256px", 82.5, 8)]:
        _run(study, variant, name, ap, imgs, size=256)
    runs = study_runs.load_runs(str(study))
    assert sorted(r["size"] for r in runs).count(256) == 3
    # 256 px has no BN and no 2-image column: the complete 128 px table stays the main one
    assert cells.main_size(runs) == 128
    text = tables.markdown(runs)
    assert text.index("### 256 px") < text.index("### 128 px") < text.index("### The gap to GN by input size")
    at256 = text[text.index("### 256 px"):text.index("### 128 px")]
    assert "| FRN (paper) | 80.0 (lr 0.02) | - |" in at256
    assert "| FRN + learnable_eps (option) | 82.5 (lr 0.02) | - |" in at256
    # 128 px: FRN 70.0 against GN 70.8 at their best lr; 256 px: 80.0 against 83.0
    assert "| shapes | FRN (paper) | 8 | 70.0 (-0.8) | 80.0 (-3.0) |" in text
    assert "| shapes | FRN + learnable_eps (option) | 8 | - | 82.5 (-0.5) |" in text
    # the gaps above, a line per row with a point at another size than the first (FRN at 2: 128 px only)
    (ax,) = plots.plot_sizes(runs, str(tmp_path / "sizes.png")).axes
    assert _lines(ax) == {"FRN (paper), 8 img": [(128, pytest.approx(-0.8)), (256, -3.0)],
                          "FRN + learnable_eps (option), 8 img": [(256, -0.5)]}
    assert [line.get_linestyle() for line in ax.lines[:2]] == ["-", "--"] and ax.get_title().startswith("photo-like")


def test_diverged_runs_are_in_the_learning_rate_table_only(study, tmp_path):
    """A run stopped by a non-finite loss (diverged.txt, no results.json) is a cell of the lr sweep, and no
    other table's; one that finished after a diverged attempt counts as finished."""
    _run(study, "shapes", "frn_8img_seed0_lr0.2_256px", 80.0, 8, lr=0.2, size=256)
    _run(study, "shapes", "gn_8img_seed0_lr0.1_256px", 83.0, 8, lr=0.1, size=256)
    _run(study, "shapes", "gn_8img_seed1_lr0.1_256px", 83.4, 8, lr=0.1, size=256)
    for name, error in [("frn_8img_seed0_lr0.5_256px", "Non-finite loss at iteration 97: loss_cls=nan"),
                        ("gn_8img_seed0_lr0.2_256px", "Non-finite loss at iteration 403: loss_cls=nan"),
                        ("gn_8img_seed2_lr0.1_256px", "Non-finite loss at iteration 7"),
                        ("gfrn_8img_seed0_lr0.5_256px", "Non-finite loss"),  # no iteration in the line
                        ("foo_8img_seed0_lr0.05_256px", "Non-finite loss at iteration 3")]:  # no table's method
        folder = _run(study, "shapes", name, 0.0, 8, lr=float(name.split("_lr")[1].split("_")[0]), size=256)
        (folder / "results.json").unlink()
        (folder / "diverged.txt").write_text(f"FloatingPointError: {error}\n")
    (study / "shapes" / "gn_8img_seed0" / "diverged.txt").write_text("FloatingPointError: Non-finite loss at iteration 5\n")
    runs, diverged = study_runs.load_runs(str(study)), study_runs.load_runs(str(study), diverged=True)
    assert sorted((r["name"], r["lr"], r["iteration"]) for r in diverged) == [
        ("foo_8img_seed0_lr0.05_256px", 0.05, 3), ("frn_8img_seed0_lr0.5_256px", 0.5, 97),
        ("gfrn_8img_seed0_lr0.5_256px", 0.5, None), ("gn_8img_seed0_lr0.2_256px", 0.2, 403),
        ("gn_8img_seed2_lr0.1_256px", 0.1, 7)]
    assert not {r["name"] for r in diverged} & {r["name"] for r in runs if r["size"] == 256}
    text = tables.markdown(runs, diverged=diverged)
    at256 = text[text.index("### 256 px"):text.index("### 128 px")]
    assert "| method | lr 0.1 | lr 0.2 | lr 0.5 | best |" in at256  # not foo's 0.05
    assert "| FRN | - | 80.0 | diverged (iteration 97) | 0.2 |" in at256
    assert "| GN | 83.2 (1 of 3 diverged) | diverged (iteration 403) | - | 0.1 |" in at256
    assert "| GFRN | - | - | diverged | - |" in at256  # an ablation that only diverged still has its row
    assert "| FRN (paper) | 80.0 (lr 0.2) | - |" in at256 and text.count("diverged") == 4
    # without the diverged runs, no method has two lrs at 256 px: no sweep table there
    assert "| method |" not in tables.markdown(runs).split("### 128 px")[0]
    # the tool passes them on
    summary = report.main(["--study", str(study), "--output", str(tmp_path / "out")]) and \
        (tmp_path / "out" / "summary.md").read_text()
    assert "| FRN | - | 80.0 | diverged (iteration 97) | 0.2 |" in summary


def test_claims_are_checked_on_the_table_cells_for_the_paper_and_each_option(study):
    runs = study_runs.load_runs(str(study))
    got = {claim: (round(d, 6), verdict) for claim, _, _, _, d, _, verdict in cells.claims(runs, "shapes")}
    # at 8, each at its best lr: FRN 70.0 (0.02, not 69.0 at 0.05) against GN 70.8 (0.02, not 65.0)
    assert got["FRN above GN at 8 images"] == (-0.8, "one seed: no spread")
    assert cells.best_cell(runs, "shapes", "frn", 8) == (0.02, [70.0]) and cells.best_cell(runs, "shapes", "gn", 8)[0] == 0.02
    # at 2, every cell at its method's 8-image lr (GN's 80.0 at lr 0.05 is not GN's cell): the paper's
    # FRN (mean of 69.0, 69.4) is 2.8 below GN's 72.0
    assert got["FRN above GN at 2 images"] == (-2.8, "one seed: no spread")
    assert got["FRN holds at 2 images (within 1.5 AP of 8)"] == (-0.8, "one seed: no spread")
    assert got["BN falls at 2 images"] == (-2.0, "one seed: no spread")
    # the option has no 8-image run (where its lr is chosen): no claims of its own
    assert not any("center" in c for c in got)
    _run(study, "shapes_center", "frn_8img_seed0", 72.0, 8)
    runs = study_runs.load_runs(str(study))
    got = {claim: (round(d, 6), verdict) for claim, _, _, _, d, _, verdict in cells.claims(runs, "shapes")}
    assert got["FRN + center (option) above GN at 8 images"] == (1.2, "one seed: no spread")
    assert got["FRN + center (option) above GN at 2 images"] == (-0.5, "one seed: no spread")  # 71.5 - 72.0
    assert got["FRN + center (option) holds at 2 images (within 1.5 AP of 8)"] == (-0.5, "one seed: no spread")
    assert [c for c, *_ in cells.claims(runs, "shapes")].count("BN falls at 2 images") == 1  # BN's: once
    text = "\n".join(tables.claims_table(runs))
    assert "| FRN + center (option) above BN at 2 images | +8.9 | +13.5 | 1 / 1 | one seed: no spread |" in text
    assert "center" not in "\n".join(tables.claims_table(runs, options=False))


def test_longer_schedules_stay_out_of_the_tables_and_give_the_gap_against_images_seen(study, tmp_path):
    for name, ap in [("frn_8img_seed0", 75.0), ("gn_8img_seed0", 75.5)]:
        folder = _run(study / "shapes", "iters3200", name, ap, 8)
        config = yaml.safe_load((folder / "config.yaml").read_text())
        config["SOLVER"]["MAX_ITER"] = 3200
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
    runs = study_runs.load_runs(str(study))
    longer = [r for r in runs if r["longer"]]
    assert len(longer) == 2 and {r["schedule"] for r in longer} == {3200}
    assert len(study_runs.study_budget(runs)) == 11
    text = tables.markdown(runs)
    assert "| FRN (paper) | 70.0 (lr 0.02) |" in text  # the 1600-iteration cell, not a mean with 75.0
    # best lrs at the study's schedule (0.02 both): -0.8 at 12,800 images, -0.5 at 25,600
    assert "| shapes | FRN (paper) | 128 px | 0.02 / 0.02 | -0.8 (70.0 / 70.8) | -0.5 (75.0 / 75.5) |" in text
    (ax,) = plots.plot_schedule(runs, str(tmp_path / "schedule.png")).axes
    assert _lines(ax) == {"128 px, photo-like: FRN (paper) (lr 0.02) - GN (lr 0.02)":
                          [(12800, pytest.approx(-0.8)), (25600, -0.5)]}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["12.8k", "25.6k"]
    # the convergence curve's runs join where the study has none of the same
    conv = tmp_path / "convergence"
    _run(conv, "iters1600", "frn_8img_seed0", 1.0, 8)  # the study holds this one: left out
    folder = _run(conv, "iters400", "gn_8img_seed0", 20.0, 8)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["SOLVER"]["MAX_ITER"] = 400
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    assert [(r["method"], r["schedule"]) for r in study_runs.convergence_runs(str(conv), runs)] == [("gn", 400)]


def test_other_columns_take_the_8_image_columns_lr():
    runs = [dict(variant="shapes", method="bn", imgs=8, seed=0, lr=0.02, AP=50.0),
            dict(variant="shapes", method="bn", imgs=8, seed=0, lr=0.05, AP=60.0),
            dict(variant="shapes", method="bn", imgs=2, seed=0, lr=0.02, AP=58.0)]
    assert cells.column_cell(runs, "shapes", "bn", 8) == (0.05, [60.0])
    assert cells.column_cell(runs, "shapes", "bn", 2) == (0.05, None)  # not the 58.0 at lr 0.02
    assert dict((c, v) for c, *_, v in cells.claims(runs, "shapes"))["BN falls at 2 images"] == "not run"
    runs += [dict(variant="shapes", method="bn", imgs=2, seed=s, lr=0.05, AP=ap) for s, ap in enumerate([55.0, 57.0, 56.0])]
    runs += [dict(variant="shapes", method="bn", imgs=8, seed=s, lr=0.05, AP=ap) for s, ap in [(1, 61.0), (2, 60.5)]]
    got = {c: (d, spread, v) for c, _, _, _, d, spread, v in cells.claims(runs, "shapes")}
    # 56.0 - 60.5 = -4.5 ± 2.1, below 0 as a whole
    assert got["BN falls at 2 images"] == pytest.approx((-4.5, 2.0777, "supported"), abs=1e-4)


def test_more_seeds_at_one_lr_do_not_move_the_best_lr():
    sweep = [dict(variant="real", method="frn", imgs=8, seed=0, lr=lr, AP=ap) for lr, ap in [(0.1, 84.4), (0.2, 84.8)]]
    more = [dict(variant="real", method="frn", imgs=8, seed=s, lr=0.2, AP=ap) for s, ap in [(1, 84.3), (2, 83.4)]]
    # chosen on the seed every lr ran (0.2's 84.8 against 0.1's 84.4), not on 0.2's mean of three (84.2)
    assert cells.best_cell(sweep + more, "real", "frn", 8) == (0.2, [84.8, 84.3, 83.4])
    # with no seed in common, on every seed's
    other = [dict(r, seed=5) if r["lr"] == 0.1 else r for r in sweep + more]
    assert cells.best_cell(other, "real", "frn", 8)[0] == 0.1


def test_a_difference_of_means_comes_with_welchs_95_percent_interval():
    # equal seeds and variances: df = 2 (n - 1) = 4, t(0.975, 4) = 2.7764 (the textbook's), se = sqrt(1/3 + 1/3)
    assert cells.difference([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == pytest.approx((-3.0, 2.7764451 * (2 / 3) ** 0.5))
    assert cells.difference([1.0, 2.0, 3.0], [4.0]) == (-2.0, None)  # one seed: no spread
    assert cells.difference([1.0, 1.0], [2.0, 2.0]) == (-1.0, 0.0)
    # two seeds a side: t on about one degree of freedom, far wider than two standard errors
    d, spread = cells.difference([84.0, 86.0, 88.0], [90.0, 91.0])
    assert d == -4.5 and spread > 3 * (4 / 3 + 0.25) ** 0.5


def test_table6_claims_are_differences_of_cell_means_with_their_interval():
    def runs(method, imgs, aps, lr=0.1):
        return [dict(variant="real", method=method, imgs=imgs, seed=s, lr=lr, AP=ap) for s, ap in enumerate(aps)]
    study = (runs("frn", 8, [85.0, 85.5, 86.0]) + runs("gn", 8, [84.0, 84.5, 85.0]) + runs("gn", 8, [99.0], lr=0.05)
             + runs("frn", 2, [84.0, 86.0, 88.0]) + runs("gn", 2, [90.0, 91.0])
             + runs("bn", 8, [85.0, 86.0, 87.0]) + runs("bn", 2, [70.0]))
    got = {claim: rest for claim, *rest in cells.claims(study, "real")}
    # GN's 8-image cell is its best lr (0.05, one seed), not the three seeds at 0.1
    paper, a, b, d, spread, verdict = got["FRN above GN at 8 images"]
    assert (round(paper, 6), b, verdict) == (0.3, [99.0], "one seed: no spread")
    # FRN at 2 against GN at 2, both at their 8-image lrs (GN's 0.05: not run at 2 images)
    assert got["FRN above GN at 2 images"][-1] == "not run"
    # FRN 2 vs 8: d = 86.0 - 85.5 = 0.5 ± 4.6, which reaches below -1.5
    _, a, b, d, spread, verdict = got["FRN holds at 2 images (within 1.5 AP of 8)"]
    assert (d, spread) == pytest.approx((0.5, 4.6144), abs=1e-4)
    assert verdict == "within the spread"
    assert cells.judge(-1.0, 0.5, -1, 0.0) == "supported" and cells.judge(1.0, 0.5, -1, 0.0) == "contradicted"
    assert cells.judge(0.3, 0.5, +1, 0.0) == "within the spread" and cells.judge(-2.0, 0.4, +1, -1.5) == "contradicted"
    text = "\n".join(tables.claims_table(study))
    assert "FRN above GN at 2 images" not in text  # a claim not run is left out
    assert "| FRN holds at 2 images (within 1.5 AP of 8) | -0.5 | +0.5 ± 4.6 | 3 / 3 | within the spread |" in text
    study += runs("gn", 2, [90.0, 91.0], lr=0.05)
    text = "\n".join(tables.claims_table(study))
    assert "| FRN above GN at 2 images | +0.4 | -4.5 ± 4.3 | 3 / 2 | contradicted |" in text
    assert "| BN falls at 2 images | -8.5 | -16.0 | 1 / 3 | one seed: no spread |" in text


def test_summary_tables_and_best_learning_rate(study, tmp_path):
    text = "\n".join(report.main(["--study", str(study), "--output", str(tmp_path / "out")]) and
                     [open(tmp_path / "out" / "summary.md").read()])
    assert "| FRN (paper) | 70.0 (lr 0.02) | 69.2 ± 0.3 (2 seeds: 69.0, 69.4) (lr 0.02) | -0.8 |" in text
    assert "| FRN + center (option) | - | 71.5 (lr 0.02) | - |" in text
    assert "| GN | 70.8 (lr 0.02) | 72.0 (lr 0.02) | +1.2 |" in text
    # the option against the same lr and seeds without it: seed 0's 69.0, not the mean over 2 seeds
    assert "| shapes | input centering: each image's per-channel mean removed (`MODEL.CENTER_PIXELS_PER_IMAGE True`) " \
           "| FRN | 2 | 0.02 | 69.0 | 71.5 | +2.5 |" in text
    assert "| FRN | 70.0 | 69.0 | 0.02 |" in text and "| GN | 70.8 | 65.0 | 0.02 |" in text
    assert (tmp_path / "out" / "summary.png").stat().st_size > 0


def test_defaults_are_relative_to_the_current_directory(study, tmp_path, monkeypatch):
    (tmp_path / "benchmarks").mkdir()
    study.rename(tmp_path / "benchmarks" / "study")
    monkeypatch.chdir(tmp_path)
    assert len(report.main([])) == 11
    assert "| GN | 70.8 (lr 0.02) |" in (tmp_path / "benchmarks" / "study" / "summary.md").read_text()
    monkeypatch.chdir(tmp_path / "benchmarks")
    with pytest.raises(SystemExit, match="no study folder 'benchmarks/study': give --study"):
        report.main([])


def test_runs_of_methods_without_a_table_leave_the_tables_as_they_are(study, tmp_path):
    text = tables.markdown(study_runs.load_runs(str(study)))
    for variant, name, ap, imgs, size in [("shapes", "ws_gn_8img_seed0", 71.0, 8, 128),
                                          ("shapes", "xnorm_4img_seed0", 66.0, 4, 128),  # a column of its own
                                          ("real", "xnorm_8img_seed0_lr0.05_256px", 50.0, 8, 256)]:  # a size of its own
        _run(study, variant, name, ap, imgs, size=size)
    runs = study_runs.load_runs(str(study))
    assert {(r["method"], r["imgs"], r["lr"], r["size"]) for r in runs if r["method"] not in cells.TABLE_METHODS} == {
        ("ws_gn", 8, 0.02, 128), ("xnorm", 4, 0.02, 128), ("xnorm", 8, 0.05, 256)}
    assert tables.markdown(runs) == text
    # a table of other methods: a function of the runs of one size, with AP50 / AP75 at the lr chosen by AP
    assert cells.column_cell(runs, "shapes", "ws_gn", 8, metric="AP50") == (0.02, [91.0])
    report.main(["--study", str(study), "--output", str(tmp_path / "out"), "--convergence", ""])
    assert (tmp_path / "out" / "summary.md").read_text() == text


def test_table3_ablations_are_rows_where_run(study):
    _run(study, "shapes", "gfrn_8img_seed0", 64.0, 8)
    _run(study, "shapes", "gfrn_2img_seed0", 63.0, 2)
    text = tables.markdown(study_runs.load_runs(str(study)))
    assert "| GFRN + TLU (Table 3) | 64.0 (lr 0.02) | 63.0 (lr 0.02) | -1.0 |" in text
    assert "| GN + TLU (Table 3) |" not in text  # not run
    assert "| GFRN | 64.0 | - | 0.02 |" in text  # the lr sweep at 8 images


def test_table3_in_detection_and_the_gap_split_into_its_steps(study):
    # 128 px: FRN 70.0 (lr 0.02, better than 69.0 at 0.05), GN 70.8 (0.02); GFRN best at 0.05
    # FRN at lr 0.05: seed 0 69.0, seed 1 65.0; centering at 0.05 has seed 0 only
    for variant, name, ap in [("shapes", "gn_tlu_8img_seed0", 71.5), ("shapes", "gfrn_8img_seed0", 69.5),
                              ("shapes", "gfrn_8img_seed0_lr0.05", 70.5), ("shapes", "frn_relu_8img_seed0", 68.0),
                              ("shapes", "frn_8img_seed1_lr0.05", 65.0), ("shapes_center", "frn_8img_seed0_lr0.05", 72.0)]:
        _run(study, variant, name, ap, 8, lr=0.05 if name.endswith("lr0.05") else 0.02)
    # AP chooses GFRN's lr (0.05), whose AP50 is the lower one
    (study / "shapes" / "gfrn_8img_seed0_lr0.05" / "results.json").write_text(
        json.dumps({"headline": {"shapes_val": {"AP": 70.5, "AP50": 85.0, "AP75": 75.5}}}))
    for name, ap in [("frn_8img_seed0_lr0.02_256px", 80.0), ("gn_8img_seed0_lr0.02_256px", 83.0)]:
        _run(study, "shapes", name, ap, 8, size=256)
    runs = study_runs.load_runs(str(study))
    steps = ablation.attribution([r for r in runs if r["size"] == 128], "shapes")
    assert steps[0][1] == pytest.approx(sum(d for _, d, _ in steps[1:4]))
    text = tables.markdown(runs)
    assert "| GFRN + TLU | 0.05 (of 0.02, 0.05) | 70.5 | 85.0 | 75.5 | -0.3 | 76.44 | +0.77 |" in text
    assert "| FRN + TLU (paper) | 0.02 (of 0.02, 0.05) | 70.0 | 90.0 | 75.0 | -0.8 | 77.21 | +1.54 |" in text
    steps = text[text.index("### FRN's gap to GN, step by step"):]
    # the three steps add up to FRN - GN: +0.7 - 1.0 - 0.5 = -0.8
    for line in ["| 128 px | FRN - GN, each at its best lr | -0.8 | `shapes/frn_8img_seed0`, `shapes/gn_8img_seed0` |",
                 "| 128 px | TLU in place of ReLU, on GN | +0.7 |",
                 "| 128 px | no mean subtraction (GFRN + TLU - GN + TLU) | -1.0 | `shapes/gfrn_8img_seed0_lr0.05`, ",
                 "| 128 px | per-channel instead of grouped statistics (FRN + TLU - GFRN + TLU) | -0.5 |",
                 "| 128 px | TLU in place of ReLU, on FRN (FRN + TLU - FRN + ReLU) | +2.0 |",
                 # against plain FRN at lr 0.05 and seed 0 (69.0), not its best (70.0) or both seeds (67.0)
                 "| 128 px | input centering on FRN (option), both at lr 0.05 | +3.0 | `shapes_center/frn_8img_seed0_lr0.05`, "
                 "`shapes/frn_8img_seed0_lr0.05` |",
                 "| 128 px | FRN + input centering - GN, each at its best lr | +1.2 |",
                 "| 256 px | FRN - GN, each at its best lr | -3.0 | `shapes/frn_8img_seed0_lr0.02_256px`, "
                 "`shapes/gn_8img_seed0_lr0.02_256px` |"]:
        assert line in steps, line
    assert "| 256 px | TLU in place of ReLU" not in steps  # no ablation run at 256 px


def test_ablations_not_run_are_named_in_table3(study):
    _run(study, "shapes", "gn_tlu_8img_seed0", 71.5, 8)
    text = tables.markdown(study_runs.load_runs(str(study)))
    assert "| FRN + ReLU | not run | - | - | - | - | 75.24 | -0.43 |" in text
    assert "| 128 px | no mean subtraction (GFRN + TLU - GN + TLU) | not run | `shapes/gn_tlu_8img_seed0` |" in text


def test_draw_puts_each_series_in_its_panel_and_writes_the_whole_figure(tmp_path):
    from matplotlib.image import imread

    from frn_det.study.report_plots import Series, draw

    path = tmp_path / "f.png"
    fig = draw(str(path), [("left", [Series("one", [2, 8], [1.0, 3.0], errs=[0.5, 0]),
                                     Series("two", [2, 8], [2.0, 2.5], dashed=True)]),
                           ("right", [Series("three", [8], [4.0])])],
               [2, 8], "images per GPU", "AP", xtick_labels=["two", "eight"], zero_line=True)
    left, right = fig.axes
    (bars,) = left.containers  # the error bars: the data line, then a segment per point
    assert [tuple(p) for p in bars[0].get_xydata()] == [(2, 1.0), (8, 3.0)]
    assert [s.tolist() for s in bars[2][0].get_segments()] == [[[2, 0.5], [2, 1.5]], [[8, 3.0], [8, 3.0]]]
    assert _lines(left) == {"two": [(2, 2.0), (8, 2.5)]} and _lines(right) == {"three": [(8, 4.0)]}
    assert {t.get_text() for t in left.get_legend().get_texts()} == {"one", "two"}
    assert bars[0].get_linestyle() == "-" and left.lines[-2].get_linestyle() == "--"
    assert all(list(ax.lines[-1].get_ydata()) == [0, 0] for ax in (left, right))  # the zero line
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"] and left.get_xaxis().get_transform().base == 2
    assert [t.get_text() for t in right.get_xticklabels()] == ["two", "eight"]
    assert (left.get_title(), right.get_title(), left.get_ylabel(), right.get_xlabel()) == ("left", "right", "AP", "images per GPU")
    assert left.get_shared_y_axes().joined(left, right)
    # 5.2 x 4 inches a panel at 110 dpi, and no temporary file left beside it
    assert imread(path).shape[:2] == (440, 1144) and os.listdir(tmp_path) == ["f.png"]


def test_norm_health_plots_the_monitor_records_of_training(tmp_path):
    norm_health = _tool("norm_health")
    records = [{"iteration": 19, "frn_monitor/res2/uncentred": 0.5, "frn_monitor/head/uncentred": 0.2, "loss": 1.0},
               {"iteration": 20, "loss": 0.9},
               {"iteration": 39, "frn_monitor/res2/uncentred": 0.9, "frn_monitor/res2/tlu_active": 0.45},
               {"iteration": 19, "frn_monitor/res2/uncentred": 0.6},  # resumed from iteration 0: appended again
               {"iteration": 39, "frn_monitor/res2/uncentred": 0.4}]
    folder = _run(tmp_path, "study", "frn_2img_seed0", 50.0, 2, metrics=records)
    assert norm_health.training_records(str(folder), "uncentred") == {"res2": [(40, 0.6), (80, 0.4)], "head": [(40, 0.2)]}
    assert norm_health._rolling_mean([(1, 1.0), (2, 3.0), (3, 5.0)], 2) == ((1, 2, 3), [1.0, 2.0, 4.0])
    curves = norm_health.main(["--training", "--run", f"FRN={folder}", "--stats", "uncentred", "tau_std",
                               "--output", str(tmp_path / "plots")])
    assert curves["tau_std"] is None and (tmp_path / "plots" / "training_uncentred.png").exists()
    assert json.load(open(tmp_path / "plots" / "training.json"))["command"][2:4] == ["--training", "--run"]
    with pytest.raises(SystemExit, match="FRN_MONITOR.ENABLED"):
        norm_health.main(["--training", "--run", f"FRN={folder}", "--stats", "out_rms", "--output", str(tmp_path / "p2")])


def test_bn_statistics_batch_mode_normalizes_with_the_batch_in_eval_mode():
    import torch
    from detectron2.layers import CycleBatchNormList

    bn_statistics = _tool("bn_statistics")
    net = torch.nn.Sequential(torch.nn.BatchNorm2d(3), CycleBatchNormList(2, bn_class=torch.nn.BatchNorm2d, num_features=3))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(5.0)  # far from the batch's
            m.running_var.fill_(9.0)
    net.eval()
    x = torch.randn(4, 3, 5, 5) * 2 + 1
    assert not torch.allclose(net[0](x), torch.nn.functional.batch_norm(x, None, None, training=True), atol=1e-3)
    assert bn_statistics.use_batch_statistics(net) == 3
    net.eval()
    y = net[0](x)
    expected = (x - x.mean((0, 2, 3), keepdim=True)) / torch.sqrt(x.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(net[1](y), expected, atol=1e-4, rtol=1e-4)  # a normalized input stays so


def test_summary_goes_between_the_readme_markers(study, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\nbefore\n<!-- study summary -->\nold table\n<!-- /study summary -->\nafter\n")
    report.main(["--study", str(study), "--output", str(tmp_path / "out"), "--readme", str(readme)])
    text = readme.read_text()
    assert text.startswith("# x\nbefore\n<!-- study summary -->\nReference schedule:") and text.endswith("<!-- /study summary -->\nafter\n")
    assert "old table" not in text and "| FRN (paper) | 70.0 (lr 0.02)" in text
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="study summary"):
        report.main(["--study", str(study), "--output", str(tmp_path / "out"), "--readme", str(readme)])


def test_headline_table_has_a_row_per_look_and_size_on_the_table_cells(study, tmp_path):
    _run(study, "shapes", "frn_8img_seed0_lr0.02_256px", 80.0, 8, size=256)
    _run(study, "shapes", "ws_gn_8img_seed0", 99.0, 8)  # a method no table shows
    lines = tables.headline_table(study_runs.load_runs(str(study)))
    assert lines[0] == "| look, input side | FRN (paper) @8 / @2 | GN @8 / @2 | BN @8 / @2 |"
    # 128 px: FRN's best lr at 8 is 0.02 (70.0 against 69.0 at 0.05), so @2 is the mean of its two seeds
    # there; GN's best at 8 is 0.02 too, so its 80.0 at 2 images and lr 0.05 is not the cell
    assert lines[2:] == ["| photo-like shapes, 128 px | 70.0 / 69.2 ± 0.3 (lr 0.02; seeds 1 / 2) | 70.8 / 72.0 (lr 0.02; seeds 1 / 1) "
                         "| 60.0 / 58.0 (lr 0.02; seeds 1 / 1) |",
                         "| photo-like shapes, 256 px | 80.0 / - (lr 0.02; seeds 1 / -) | - / - | - / - |"]
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- study table -->\nold\n<!-- /study table -->\nafter\n")
    report.main(["--study", str(study), "--output", str(tmp_path / "out"), "--headline", str(readme)])
    assert readme.read_text() == "intro\n<!-- study table -->\n" + "\n".join(lines) + "\n<!-- /study table -->\nafter\n"
    readme.write_text("<!-- study summary -->\n<!-- /study summary -->\n")
    with pytest.raises(SystemExit, match="study table"):
        report.main(["--study", str(study), "--output", str(tmp_path / "out"), "--headline", str(readme)])


def _committed(path):
    return Path(ROOT, path).read_text()


def test_committed_summary_and_readme_tables_are_those_of_the_committed_runs():
    """What benchmarks/study/summary.md and the README's study table show is what the committed runs give."""
    study = os.path.join(ROOT, report.STUDY)
    runs = study_runs.load_runs(study)
    curve = runs + study_runs.convergence_runs(os.path.join(ROOT, report.CONVERGENCE), runs)
    text = tables.markdown(runs, curve, study_runs.load_runs(study, diverged=True))
    assert _committed(os.path.join(report.STUDY, "summary.md")) == text
    headline = "\n".join(tables.headline_table(runs))
    assert f"{report.HEADLINE_BEGIN}\n{headline}\n{report.HEADLINE_END}" in _committed(report.HEADLINE_README)
    claims = "\n".join(tables.all_claims(runs))
    assert "Table 6's claims (256 px, real-photo look" in claims
    assert f"{report.CLAIMS_BEGIN}\n{claims.rstrip()}\n{report.CLAIMS_END}" in _committed(report.CLAIMS_README)


def test_committed_gpu_summary_is_that_of_its_runs():
    """benchmarks/study_gpu/summary.md is what its runs give, without the CPU's schedule curve."""
    study = os.path.join("benchmarks", "study_gpu")
    runs = study_runs.load_runs(os.path.join(ROOT, study))
    assert runs
    assert _committed(os.path.join(study, "summary.md")) == tables.markdown(
        runs, runs, study_runs.load_runs(os.path.join(ROOT, study), diverged=True))
