"""The paper's Table 6 from the output folders of its runs, beside the paper's numbers.

  python tools/table6.py output/                      # one folder holding the runs' OUTPUT_DIRs
  python tools/table6.py output/retinanet_frn_2img output/retinanet_gn_2img --json

Each run writes OUTPUT_DIR/results.json at its end (frn_det.evaluation.results). A run is identified
by the config.yaml detectron2 writes in its OUTPUT_DIR, not by the folder's name, so renamed or
moved folders and other base_lr sets (configs/lr0.1_8gpu/) still count:
  - the row by the norms (MODEL.RESNETS/FPN/RETINANET.NORM) and the schedule in images seen
    (SOLVER.MAX_ITER x IMS_PER_BATCH: 25000 x 64 for BN*, 125000 x 64 for BN, GN and FRN), which
    `--eval-only MODEL.WEIGHTS ...` in the same folder leaves as they were;
  - the column by SOLVER.IMS_PER_BATCH / SOLVER.REFERENCE_WORLD_SIZE, the config's images per GPU.
Only a folder without config.yaml is identified by its name (retinanet_{bn_finetune,bn,gn,frn}_<m>img,
with any suffix). When several runs fill one cell, the one with the best AP is shown (the paper
reports the best of its base_lr values) and the others are named below the table.
"""
import argparse
import math
import os
import re

import yaml
from tabulate import tabulate

from frn_det.config.protocol import (
    IMGS_PER_GPU,
    REFERENCE_BATCH,
    REFERENCE_FINETUNE_STEPS,
    REFERENCE_STEPS,
    TABLE6_ROWS,
)
from frn_det.evaluation.results import HEADLINE, read_results
from frn_det.utils import json_text

# The paper's Table 6: COCO AP, AP50, AP75 at 8, 4, 2 images per GPU (8 GPUs).
PAPER = {
    "BN*": {"AP": (38.3, 37.1, 32.9), "AP50": (57.2, 55.4, 49.1), "AP75": (41.5, 40.4, 35.9)},
    "BN": {"AP": (38.7, 37.9, 30.2), "AP50": (56.6, 55.2, 44.5), "AP75": (42.1, 41.4, 32.5)},
    "GN": {"AP": (39.3, 39.0, 38.7), "AP50": (57.8, 57.5, 56.9), "AP75": (42.6, 42.3, 41.8)},
    "FRN": {"AP": (39.6, 39.5, 39.1), "AP50": (58.5, 58.4, 57.5), "AP75": (43.1, 43.3, 42.3)},
}
RUN_FILES = ("config.yaml", "results.json")
FOLDER_NAME = re.compile(r"retinanet_(bn_finetune|bn|gn|frn)_(\d+)img(?:_.+)?")
SCHEDULES = {REFERENCE_FINETUNE_STEPS * REFERENCE_BATCH: True, REFERENCE_STEPS * REFERENCE_BATCH: False}


def find_runs(paths):
    """Run folders among `paths`: each path is a run (it holds config.yaml or results.json) or a
    folder whose sub-folders are runs."""
    runs = []
    for path in paths:
        if not os.path.isdir(path):
            raise FileNotFoundError(
                f"{path}: no such folder (give the runs' OUTPUT_DIRs or one folder holding them)")
        if any(os.path.isfile(os.path.join(path, f)) for f in RUN_FILES):
            runs.append(path)
            continue
        runs += [os.path.join(path, d) for d in sorted(os.listdir(path))
                 if any(os.path.isfile(os.path.join(path, d, f)) for f in RUN_FILES)]
    return runs


def _get(cfg, dotted):
    for key in dotted.split("."):
        if not isinstance(cfg, dict) or key not in cfg:
            return None
        cfg = cfg[key]
    return cfg


def identify(run):
    """((method, images per GPU), base_lr or None, test dataset or None) of a run folder; ValueError
    saying why when it is not one of Table 6's runs."""
    config = os.path.join(run, "config.yaml")
    if not os.path.isfile(config):
        match = FOLDER_NAME.fullmatch(os.path.basename(os.path.normpath(run)))
        if not match:
            raise ValueError(
                "no config.yaml, and the folder's name is not retinanet_{bn_finetune,bn,gn,frn}_<m>img")
        method = next(k for k, row in TABLE6_ROWS.items() if row.name == match.group(1))
        return _checked_imgs(method, int(match.group(2))), None, None
    try:
        with open(config) as f:
            cfg = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"config.yaml can't be read: {e}") from None
    norms = {key: _get(cfg, f"MODEL.{key}.NORM") for key in ("RESNETS", "FPN", "RETINANET")}
    batch, world, steps = (_get(cfg, f"SOLVER.{k}") for k in ("IMS_PER_BATCH", "REFERENCE_WORLD_SIZE", "MAX_ITER"))
    if not all(isinstance(v, int) for v in (batch, world, steps)) or not world:
        raise ValueError("config.yaml needs SOLVER.IMS_PER_BATCH, MAX_ITER and a REFERENCE_WORLD_SIZE > 0 "
                         f"to give the images per GPU (got {batch}, {steps}, {world})")
    finetune = SCHEDULES.get(batch * steps)
    if finetune is None:
        raise ValueError(f"SOLVER.MAX_ITER x IMS_PER_BATCH = {steps} x {batch}, not Table 6's schedule "
                         f"({REFERENCE_STEPS} x {REFERENCE_BATCH} images from scratch, "
                         f"{REFERENCE_FINETUNE_STEPS} x {REFERENCE_BATCH} for BN*)")
    method = next((k for k, row in TABLE6_ROWS.items() if row.norms == norms and row.finetune == finetune), None)
    if method is None:
        raise ValueError(f"norms (RESNETS, FPN, RETINANET) {tuple(norms.values())} are none of Table 6's rows: "
                         + "; ".join(f"{k} {tuple(row.norms.values())}" for k, row in TABLE6_ROWS.items()))
    if batch % world:
        raise ValueError(f"SOLVER.IMS_PER_BATCH {batch} is not a multiple of REFERENCE_WORLD_SIZE {world}")
    lr = _get(cfg, "SOLVER.BASE_LR")
    base_lr = lr * REFERENCE_BATCH / batch if isinstance(lr, (int, float)) else None
    test = _get(cfg, "DATASETS.TEST")
    return _checked_imgs(method, batch // world), base_lr, (test[0] if test else None)


def _checked_imgs(method, imgs):
    if imgs not in IMGS_PER_GPU:
        raise ValueError(f"{method} at {imgs} images per GPU: Table 6 has {', '.join(map(str, IMGS_PER_GPU))}")
    return method, imgs


def _finite(value):
    """A metric, or None for NaN, null (results.json writes either for a model with no detections) or
    anything not a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def read_metrics(run, dataset=None):
    """({AP, AP50, AP75: float or None}, problem or None) from run/results.json."""
    path = os.path.join(run, "results.json")
    if not os.path.isfile(path):
        return None, "no results.json: unfinished, or not evaluated"
    try:
        headline = read_results(path).get("headline")
    except (OSError, ValueError, AttributeError) as e:
        return None, f"results.json can't be read: {e}"
    if not isinstance(headline, dict):  # absent, or null (read back as NaN)
        headline = {}
    if dataset in headline:
        numbers = headline[dataset]
    elif len(headline) == 1:
        (numbers,) = headline.values()
    else:
        return None, ("results.json has no bbox metrics" if not headline else
                      f"results.json holds {', '.join(headline)}, none of them the config's test set {dataset}")
    metrics = {k: _finite(numbers.get(k)) if isinstance(numbers, dict) else None for k in HEADLINE}
    absent = [k for k, v in metrics.items() if v is None]
    if absent:
        return metrics, f"results.json has no {', '.join(absent)} (NaN or null: no detections, or never computed)"
    return metrics, None


def _rank(run):
    """The best AP first, then runs with some metrics, then the rest."""
    ap = (run["metrics"] or {}).get("AP")
    return ap is None, -(ap or 0.0), run["metrics"] is None


def build_table(paths):
    """Every cell of Table 6 with its run, value, the paper's value and the difference; and the runs
    that fill no cell."""
    found, unidentified = {}, []
    for run in find_runs(paths):
        try:
            (method, imgs), base_lr, dataset = identify(run)
        except ValueError as e:
            unidentified.append({"run": run, "reason": str(e)})
            continue
        metrics, problem = read_metrics(run, dataset)
        found.setdefault((method, imgs), []).append(
            {"run": run, "base_lr": base_lr, "metrics": metrics, "problem": problem})
    cells, others = [], []
    for method in TABLE6_ROWS:
        for col, imgs in enumerate(IMGS_PER_GPU):
            runs = sorted(found.get((method, imgs), []), key=_rank)
            best = runs[0] if runs else None
            cell = {"method": method, "imgs_per_gpu": imgs, "run": best and best["run"],
                    "base_lr": best and best["base_lr"]}
            for k in HEADLINE:
                value = best["metrics"][k] if best and best["metrics"] else None
                paper = PAPER[method][k][col]
                diff = None if value is None else round(value - paper, 6)
                cell[k] = {"value": value, "paper": paper, "diff": diff}
            cell["problem"] = ("no run found (e.g. OUTPUT_DIR output/retinanet_"
                               f"{TABLE6_ROWS[method].name}_{imgs}img)") if best is None else best["problem"]
            cells.append(cell)
            others += [{"method": method, "imgs_per_gpu": imgs, "run": r["run"], "base_lr": r["base_lr"],
                        "AP": (r["metrics"] or {}).get("AP"), "problem": r["problem"]} for r in runs[1:]]
    return {"metrics": list(HEADLINE), "imgs_per_gpu": list(IMGS_PER_GPU), "cells": cells,
            "other_runs": others, "unidentified": unidentified}


def _cell_text(entry):
    value = "-" if entry["value"] is None else f"{entry['value']:.2f}"
    diff = "" if entry["diff"] is None else f", {entry['diff']:+.2f}"
    return f"{value} ({entry['paper']:.1f}{diff})"


def format_markdown(table):
    imgs = table["imgs_per_gpu"]
    headers = ["method", *(f"{k} @{m}" for k in table["metrics"] for m in imgs)]
    cells = {(c["method"], c["imgs_per_gpu"]): c for c in table["cells"]}
    rows = [[method, *(_cell_text(cells[method, m][k]) for k in table["metrics"] for m in imgs)]
            for method in TABLE6_ROWS]
    lines = ["Table 6, COCO bbox: each cell is this run (the paper, difference); @m: m images per GPU.", "",
             tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True)]
    incomplete = [c for c in table["cells"] if c["problem"]]
    if incomplete:
        lines += ["", "Missing or incomplete:"]
        lines += [f"- {c['method']} @{c['imgs_per_gpu']}: {c['run'] + ': ' if c['run'] else ''}{c['problem']}"
                  for c in incomplete]
    if table["other_runs"]:
        lines += ["", "Other runs of a cell (the table shows the best AP):"]
        lines += [f"- {r['method']} @{r['imgs_per_gpu']}: {r['run']}"
                  + (f" (base_lr {r['base_lr']:g})" if r["base_lr"] is not None else "")
                  + (f": AP {r['AP']:.2f}" if r["AP"] is not None else f": {r['problem']}")
                  for r in table["other_runs"]]
    if table["unidentified"]:
        lines += ["", "Not Table 6 runs:"]
        lines += [f"- {r['run']}: {r['reason']}" for r in table["unidentified"]]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", default=["output"],
                        help="run folders (OUTPUT_DIRs), or folders holding them (default: output)")
    parser.add_argument("--json", action="store_true", help="print JSON (NaN as null) instead of markdown")
    args = parser.parse_args(argv)
    try:
        table = build_table(args.paths)
    except FileNotFoundError as e:
        parser.error(str(e))
    print(json_text(table, indent=2) if args.json else format_markdown(table))
    return table
