"""The study's runs, read from its folders: a record per run of its cell (variant, method, images per
GPU, seed, reference lr, input size, schedule) and its headline AP, AP50 and AP75; or, for the runs
stopped by a non-finite loss, the iteration they stopped at."""
import os
import re

import yaml

from frn_det.config.protocol import IMGS_PER_GPU
from frn_det.evaluation import read_results
from frn_det.study.report_format import METRICS
from frn_det.study.run_name import DIVERGED, RunName, parse_schedule_folder

# Table 6's columns: learning rates are swept and named at its largest images per GPU, and the claims
# compare that column with its smallest
REFERENCE_IMGS, SMALL_IMGS = max(IMGS_PER_GPU), min(IMGS_PER_GPU)
# the look of a run, by its training dataset
LOOK_OF_DATASET = {"shapes_train": "shapes", "shapes_real_train": "real"}


def load_runs(study, diverged=False):
    """[{variant, name, method, imgs, seed, lr, iters, schedule, size, longer, AP, AP50, AP75}] of every finished
    run under study/: <variant>/<run> at the study's schedule, and <variant>/iters<N>/<run> at the
    reference schedule N (tools/batch_study.py --schedules; longer=True). schedule is the run's length
    in iterations of 8 images. Runs of every method are read, also of methods no table shows.
    diverged=True: the runs stopped by a non-finite loss instead, with `iteration` (where it stopped,
    None if its error line does not say) in place of the metrics."""
    runs = []
    for variant in sorted(os.listdir(study)):
        if os.path.isdir(os.path.join(study, variant)):
            runs += variant_runs(os.path.join(study, variant), variant, diverged)
    return runs


def variant_runs(folder, variant, diverged=False):
    """The finished (or diverged) runs of one variant folder (its run folders and those of its iters<N>
    folders)."""
    runs = []
    for name in sorted(os.listdir(folder)):
        if parse_schedule_folder(name) is not None and os.path.isdir(os.path.join(folder, name)):
            runs += [dict(r, longer=True) for r in variant_runs(os.path.join(folder, name), variant, diverged)]
            continue
        run = RunName.parse(name)
        path = os.path.join(folder, name)
        finished = os.path.exists(os.path.join(path, "results.json"))  # also where an earlier attempt diverged
        wanted = (not finished and os.path.exists(os.path.join(path, DIVERGED))) if diverged else finished
        if run is None or not wanted:
            continue
        runs.append((read_diverged if diverged else read_run)(path, variant, run))
    return runs


def read_run(folder, variant, run):
    """The record of one finished run folder whose name is `run` (a RunName)."""
    (headline,) = read_results(os.path.join(folder, "results.json"))["headline"].values()  # one test dataset
    return dict(_cell_of(folder, variant, run), **{k: headline[k] for k in METRICS})


def read_diverged(folder, variant, run):
    """The record of one run folder stopped by a non-finite loss: its cell and the iteration it stopped at."""
    with open(os.path.join(folder, DIVERGED)) as f:
        stopped = re.search(r"at iteration (\d+)", f.read())
    return dict(_cell_of(folder, variant, run), iteration=int(stopped.group(1)) if stopped else None)


def _cell_of(folder, variant, run):
    """What the run folder's name and config say of its cell."""
    with open(os.path.join(folder, "config.yaml")) as f:
        config = yaml.safe_load(f)
    solver = config["SOLVER"]
    lr = run.lr if run.lr is not None else round(REFERENCE_IMGS * solver["BASE_LR"] / solver["IMS_PER_BATCH"], 8)
    train = config.get("DATASETS", {}).get("TRAIN", [])
    return dict(variant=variant, look=LOOK_OF_DATASET.get(train[0]) if len(train) == 1 else None, name=os.path.basename(folder), method=run.method,
                imgs=run.imgs, seed=run.seed, lr=lr,
                iters=solver["MAX_ITER"], schedule=solver["MAX_ITER"] * run.imgs // REFERENCE_IMGS,
                size=config["INPUT"]["MAX_SIZE_TRAIN"], longer=False)


def convergence_runs(folder, runs):
    """The runs of a schedule curve (iters<N>/<run>, each of the look its config trains on) that the
    study does not hold already."""
    if not folder or not os.path.isdir(folder):
        return []
    key = lambda r: (r["variant"], r["method"], r["imgs"], r["seed"], r["lr"], r["size"], r["schedule"])  # noqa: E731
    have = {key(r) for r in runs}
    curve = [dict(r, variant=r["look"]) for r in variant_runs(folder, None)]
    return [r for r in curve if key(r) not in have]


def study_budget(runs):
    """The runs at the study's own schedule (every table but the schedule's): not those of --schedules."""
    return [r for r in runs if not r.get("longer")]


def sizes_of(runs):
    """The input sides the runs were trained at, the largest first."""
    return sorted({r["size"] for r in runs}, reverse=True)
