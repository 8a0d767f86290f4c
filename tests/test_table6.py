"""tools/table6.py: Table 6 from the runs' config.yaml and results.json, beside the paper's numbers."""
import json
import math
import os
import subprocess
import sys

import pytest

from frn_det.config import build_cfg
from frn_det.config.make_configs import write_configs
from frn_det.evaluation import write_results
from frn_det.evaluation.table6 import PAPER, main, read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = ("BN*", "BN", "GN", "FRN")
NAMES = {"BN*": "bn_finetune", "BN": "bn", "GN": "gn", "FRN": "frn"}
COLS = (8, 4, 2)


def fake_ap(method, imgs):
    """Distinct numbers per cell: the paper's, shifted by an amount that names the cell."""
    shift = ROWS.index(method) + COLS.index(imgs) / 10
    return {k: PAPER[method][k][COLS.index(imgs)] + shift - 2 for k in ("AP", "AP50", "AP75")}


def write_run(folder, config_file, opts=(), metrics=None, config=True):
    """A run's OUTPUT_DIR as tools/train_net.py leaves it: detectron2's config.yaml (cfg.dump()) and
    results.json (frn_det.evaluation.write_results)."""
    os.makedirs(folder)
    if config:
        with open(os.path.join(folder, "config.yaml"), "w") as f:
            f.write(build_cfg(config_file, opts).dump())
    if metrics is not None:
        write_results({"coco_2017_val": {"bbox": {**metrics, "APs": 1.0}}}, str(folder))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("output")
    config = {(m, i): os.path.join(ROOT, "configs", f"retinanet_{NAMES[m]}_{i}img.yaml")
              for m in ROWS for i in COLS}
    for (method, imgs), path in config.items():
        if (method, imgs) in {("BN*", 2), ("BN", 2), ("GN", 4), ("GN", 2), ("GN", 8)}:
            continue
        # the folder's name says nothing: config.yaml identifies the run
        write_run(out / f"run_{NAMES[method]}{imgs}", path, metrics=fake_ap(method, imgs))
    # BN* @2 has no run; BN @2 started but never finished
    write_run(out / "retinanet_bn_2img", config["BN", 2])
    # no detections: NaN (json.dump's) and null (a writer that maps NaN to null)
    write_run(out / "gn4", config["GN", 4], metrics={"AP": math.nan, "AP50": math.nan, "AP75": math.nan})
    write_run(out / "gn2", config["GN", 2])
    with open(out / "gn2" / "results.json", "w") as f:
        json.dump({"headline": {"coco_2017_val": {"AP": None, "AP50": None, "AP75": None}}, "all": {}}, f)
    # copied results without config.yaml: identified by the folder's name
    write_run(out / "retinanet_gn_8img_copy", None, metrics=fake_ap("GN", 8), config=False)
    # --eval-only in BN* @8's folder rewrote its config.yaml with MODEL.WEIGHTS: still BN*
    with open(out / "run_bn_finetune8" / "config.yaml", "w") as f:
        f.write(build_cfg(config["BN*", 8], ["MODEL.WEIGHTS", "output/x/model_final.pth"]).dump())
    # FRN @8 of the base_lr 0.1 set, better than the 0.05 run: the table shows it
    (lr01,) = write_configs(str(out.parent / "lr0.1"), base_lr=0.1, imgs=(8,), methods=("frn",))
    write_run(out / "frn8_lr0.1", lr01, metrics={k: v + 0.5 for k, v in fake_ap("FRN", 8).items()})
    # a smoke run on a short schedule is not a Table 6 run
    write_run(out / "smoke", config["FRN", 2], ["SOLVER.MAX_ITER", "100"], metrics=fake_ap("FRN", 2))
    return out


def test_cells_differences_and_missing_runs(runs, capsys):
    table = main([str(runs), "--json"])
    printed = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert printed == json.loads(json.dumps(table))
    cells = {(c["method"], c["imgs_per_gpu"]): c for c in table["cells"]}
    assert len(cells) == 12 and table["metrics"] == ["AP", "AP50", "AP75"] and table["imgs_per_gpu"] == [8, 4, 2]
    empty = {("BN*", 2), ("BN", 2), ("GN", 4), ("GN", 2)}
    for (method, imgs), cell in cells.items():
        for k in ("AP", "AP50", "AP75"):
            paper = PAPER[method][k][COLS.index(imgs)]
            assert cell[k]["paper"] == paper
            if (method, imgs) in empty:
                assert cell[k]["value"] is None and cell[k]["diff"] is None
                continue
            expected = fake_ap(method, imgs)[k] + (0.5 if (method, imgs) == ("FRN", 8) else 0)
            assert cell[k]["value"] == pytest.approx(expected)
            assert cell[k]["diff"] == pytest.approx(expected - paper)
        assert bool(cell["problem"]) == ((method, imgs) in empty)
    assert cells["BN*", 2]["run"] is None and "retinanet_bn_finetune_2img" in cells["BN*", 2]["problem"]
    assert cells["BN", 2]["run"].endswith("retinanet_bn_2img") and "no results.json" in cells["BN", 2]["problem"]
    assert "AP, AP50, AP75" in cells["GN", 4]["problem"] and "AP, AP50, AP75" in cells["GN", 2]["problem"]
    assert cells["GN", 8]["run"].endswith("retinanet_gn_8img_copy") and cells["GN", 8]["base_lr"] is None
    assert cells["BN*", 8]["run"].endswith("run_bn_finetune8")
    assert cells["BN*", 8]["base_lr"] == pytest.approx(0.05)
    assert cells["FRN", 8]["run"].endswith("frn8_lr0.1") and cells["FRN", 8]["base_lr"] == pytest.approx(0.1)
    (other,) = table["other_runs"]
    assert other["run"].endswith("run_frn8") and other["AP"] == pytest.approx(fake_ap("FRN", 8)["AP"])
    (smoke,) = table["unidentified"]
    assert smoke["run"].endswith("smoke") and "100 x 16" in smoke["reason"]


def test_markdown_layout(runs, capsys):
    main([str(runs)])
    text = capsys.readouterr().out
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| method"))
    assert [h.strip() for h in header.strip("|").split("|")] == [
        "method", *(f"{k} @{m}" for k in ("AP", "AP50", "AP75") for m in COLS)]
    body = [line for line in lines if line.startswith("| ") and not line.startswith("| method")]
    assert [line.split("|")[1].strip() for line in body] == list(ROWS)
    frn = [c.strip() for c in body[3].strip("|").split("|")][1:]
    ap = fake_ap("FRN", 4)["AP"]
    assert frn[1] == f"{ap:.2f} (39.5, {ap - 39.5:+.2f})"  # FRN AP @4
    bn_star = [c.strip() for c in body[0].strip("|").split("|")][1:]
    assert bn_star[2] == "- (32.9)" and bn_star[8] == "- (35.9)"  # BN* AP and AP75 @2: no run
    missing = text.split("Missing or incomplete:")[1]
    assert "- BN* @2: no run found" in missing and "retinanet_bn_2img: no results.json" in missing
    assert "gn4: results.json has no AP, AP50, AP75" in missing
    assert "frn8" in text.split("Other runs of a cell")[1] and "smoke" in text.split("Not Table 6 runs:")[1]


def test_cli(runs, tmp_path, capsys):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "table6.py"), "--json",
                           str(runs / "run_frn2"), str(runs / "gn2")], capture_output=True, text=True, check=True)
    table = json.loads(done.stdout)
    filled = {(c["method"], c["imgs_per_gpu"]) for c in table["cells"] if not c["problem"]}
    assert filled == {("FRN", 2)}
    with pytest.raises(SystemExit) as bad:
        main([str(tmp_path / "nowhere")])
    assert bad.value.code == 2 and "nowhere: no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "config.yaml" in capsys.readouterr().out


@pytest.mark.parametrize("content, problem", [
    ({"headline": None}, "results.json has no bbox metrics"),
    ({"all": {}}, "results.json has no bbox metrics"),
    ({"headline": {"coco_2017_val": None}}, "results.json has no AP, AP50, AP75"),
    ([1, 2], "results.json can't be read"),
])
def test_results_without_metrics_are_named_not_raised(tmp_path, content, problem):
    (tmp_path / "results.json").write_text(json.dumps(content))
    metrics, said = read_metrics(str(tmp_path))
    assert said.startswith(problem)
