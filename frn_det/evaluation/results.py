"""The numbers a run reports: COCO AP, AP50, AP75 per dataset (and task), as a table and a JSON file."""
import json
import math
import os

from tabulate import tabulate

from frn_det.utils import write_json

HEADLINE = ("AP", "AP50", "AP75")


def by_dataset(results, dataset_names):
    """detectron2's test() returns {dataset: {task: ..}}, flattened to {task: ..} for one dataset."""
    return {dataset_names[0]: results} if "bbox" in results else results


def headline(results):
    """{dataset: {"AP": .., "AP50": .., "AP75": ..}} from {dataset: {"bbox": {...}}}."""
    return {name: {k: r["bbox"][k] for k in HEADLINE} for name, r in results.items() if "bbox" in r}


def format_table(results):
    """AP, AP50, AP75 of each dataset and COCO task (bbox, segm, ...)."""
    rows = [[name, task, *(f"{r[task][k]:.2f}" for k in HEADLINE)]
            for name, r in results.items() for task in r
            if isinstance(r[task], dict) and all(k in r[task] for k in HEADLINE)]
    return tabulate(rows, headers=["dataset", "task", *HEADLINE], tablefmt="pipe")


def write_results(results, output_dir, filename="results.json"):
    """Writes {"headline": .., "all": results} as strict JSON: a NaN metric (COCOeval's for an area
    range without objects) is null."""
    path = os.path.join(output_dir, filename)
    write_json(path, {"headline": headline(results), "all": results}, indent=2, fsync=True)
    return path


def _nan_for_null(obj):
    if obj is None:
        return math.nan
    if isinstance(obj, dict):
        return {k: _nan_for_null(v) for k, v in obj.items()}
    return obj


def read_results(path):
    """What write_results wrote, with its null metrics NaN again."""
    with open(path) as f:
        return _nan_for_null(json.load(f))
