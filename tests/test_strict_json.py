"""Every JSON frn_det writes parses with a strict parser: NaN and +-inf are written as null (json.dumps
would write the bare tokens NaN and Infinity), files are written whole, and the package's readers
read null back as NaN."""
import json
import math

import numpy as np
import pytest
import yaml
from detectron2.utils.events import EventStorage

from frn_det.engine import StrictJSONWriter
from frn_det.evaluation import read_results, write_results
from frn_det.utils import write_json

NAN, INF = float("nan"), float("inf")


def strict_loads(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: bare {c}"))


def coco_results(ap=70.0):
    """detectron2's COCOEvaluator output: NaN where an area range has no objects."""
    return {"shapes_val": {"bbox": {"AP": ap, "AP50": 90.0, "AP75": 80.0, "APs": 60.5, "APm": NAN, "APl": NAN,
                                    "AP-circle": 71.0}}}


def test_results_json_is_strict_and_reads_back_nan(tmp_path):
    path = write_results(coco_results(), str(tmp_path))
    data = strict_loads(open(path).read())
    assert data["all"]["shapes_val"]["bbox"]["APm"] is None and data["all"]["shapes_val"]["bbox"]["APl"] is None
    back = read_results(path)
    bbox = back["all"]["shapes_val"]["bbox"]
    assert math.isnan(bbox["APm"]) and math.isnan(bbox["APl"]) and bbox["APs"] == 60.5
    assert back["headline"] == {"shapes_val": {"AP": 70.0, "AP50": 90.0, "AP75": 80.0}}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left


def test_study_readers_read_null_as_nan(tmp_path):
    from frn_det.study import batch_runs
    from frn_det.study.summary.runs import load_runs

    run = tmp_path / "study" / "shapes" / "frn_8img_seed0"
    run.mkdir(parents=True)
    write_results(coco_results(ap=NAN), str(run))
    (run / "config.yaml").write_text(yaml.safe_dump({"SOLVER": {"IMS_PER_BATCH": 8, "BASE_LR": 0.02, "MAX_ITER": 1600},
                                                     "INPUT": {"MAX_SIZE_TRAIN": 128}}))
    (r,) = load_runs(str(tmp_path / "study"))
    assert math.isnan(r["AP"]) and (r["AP50"], r["AP75"]) == (90.0, 80.0)
    headline = batch_runs.finished_result(str(tmp_path / "study" / "shapes" / "frn_8img_seed0"))
    assert math.isnan(headline["shapes_val"]["AP"]) and headline["shapes_val"]["AP50"] == 90.0


def test_write_json_writes_non_finite_numbers_as_null(tmp_path):
    obj = {"a": [1.5, NAN, (INF, -INF)], "b": {"c": np.float64("nan"), "d": 2, "e": None}, "f": "NaN"}
    write_json(tmp_path / "x.json", obj, indent=2)
    assert strict_loads((tmp_path / "x.json").read_text()) == {
        "a": [1.5, None, [None, None]], "b": {"c": None, "d": 2, "e": None}, "f": "NaN"}


def test_a_non_finite_number_from_default_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(ValueError, match="JSON"):
        write_json(tmp_path / "x.json", {"score": object()}, default=lambda o: NAN)
    assert not any(tmp_path.iterdir())


def test_metrics_json_is_strict(tmp_path):
    writer = StrictJSONWriter(str(tmp_path / "metrics.json"))
    with EventStorage(0) as storage:
        storage.put_scalars(**{"bbox/AP": 70.0, "bbox/APm": NAN}, smoothing_hint=False)
        writer.write()
        storage.iter = 1
        storage.put_scalar("lr", 0.02, smoothing_hint=False)
        writer.write()
    writer.close()
    rows = [strict_loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert rows == [{"bbox/AP": 70.0, "bbox/APm": None, "iteration": 0}, {"iteration": 1, "lr": 0.02}]
