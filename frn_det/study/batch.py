"""The shape of the paper's Table 6 at small scale: {BN, GN, FRN} x images per GPU, trained from
scratch with the same number of images seen, evaluated with COCO AP / AP50 / AP75. --methods also
takes Table 3's ablations of FRN's parts (gn_tlu, gfrn, frn_relu: frn_det.config.protocol).

  python tools/batch_study.py                                  # the default study (embedded data, CPU)
  python -m frn_det.study.batch ...  (or frn-det-study ...)    # the same, installed
  python tools/batch_study.py --methods frn gn --imgs 2 8      # a subset
  python tools/batch_study.py --base-lrs 0.02 0.05 0.1         # best of three lrs per cell, as the paper
  python tools/batch_study.py --base-lrs frn=0.2 gn=0.1 --jobs 2
                                                               # each method at its own lr, two runs at once
  python tools/batch_study.py --config configs/retinanet_frn_8img.yaml --num-gpus 8 --device cuda \
      --launcher slurm --slurm-partition gpu --slurm-gpus-per-node 8 --slurm-timeout-min 4320
                                                               # every run a SLURM job
  python tools/batch_study.py --config configs/retinanet_frn_8img.yaml --num-gpus 8 --device cuda
                                                               # the same study on COCO
  python tools/batch_study.py --methods frn gn --imgs 8 --extra-seeds --schedules 400 800 1600 3200
                                                               # convergence: AP against images seen
  python tools/batch_study.py --methods frn gn bn --imgs 8 --sizes 128 256
                                                               # input size: the same images scaled
  python tools/batch_study.py --methods frn gn_tlu gfrn frn_relu --imgs 8
                                                               # Table 3's ablations of FRN's parts

Each run follows the rule of the config generator relative to the config's own solver (its
IMS_PER_BATCH, MAX_ITER, BASE_LR, WARMUP_ITERS): lr in proportion to the batch, steps in inverse
proportion. With --base-lrs, every method and column is trained at each of those reference learning
rates (the config's batch; scaled by the same rule) and each cell reports the best one, as the paper
reports the best of three base_lr values. With --schedules, every cell is trained at each of those
reference lengths (iterations at the config's batch; warmup and checkpoints scaled alike), each in
OUTPUT/iters<N>/, and curve.png plots AP against images seen. With --sizes, every cell is trained at each
of those input sides: the images are resized at load time (INPUT.*_SIZE_*; nothing is regenerated on
disk) and the anchors (and MODEL.FPN.SQUARE_PAD) scale with them, so that each object lands on the same
pyramid level as at the config's own size; a run at another size than the config's is named
..._<side>px, and sizes.png plots each method's AP minus GN's against the input side.

--config is a path or a frn_det.model_zoo name. Runs go through the installed trainer (`python -m
frn_det.train_net`), one process each, with --resume: a run whose results.json exists is skipped and an
interrupted one continues from its last checkpoint, so the study resumes where it stopped. --launcher
local (the default) runs --jobs of them at once on this machine, the CPU threads (or the GPUs) shared out
among them; --launcher slurm makes every run a SLURM job through submitit (--slurm-*; frn_det.study.jobs),
and a rerun follows the jobs still queued or running and resubmits failed ones. The progress bar counts
training images of all runs (its ETA holds across runs of different lengths). Writes results.json (paths
relative to the current directory where they lie in it), table.md and plot.png to --output (default:
output/batch_study in the current directory); --keep-in DIR also copies them and each run's
results.json, metrics.json and config.yaml to DIR, for committing.
"""
import argparse
import os
import shutil
import sys
import time

from tqdm import tqdm

from frn_det.config.files import config_file_argument
from frn_det.config.protocol import (
    METHOD_NORMS,
    PAPER_METHODS,
    method_opts,
    scaled_solver,
)
from frn_det.engine.slurm import add_slurm_arguments
from frn_det.study.batch_report import (
    lrs_text,
    markdown_table,
    plot,
    plot_curve,
    plot_sizes,
)
from frn_det.study.batch_runs import checkpointed_iterations, relative, run_all
from frn_det.study.best_lr import best_lr
from frn_det.study.jobs import LocalJobs, SlurmJobs
from frn_det.study.report_format import METRICS
from frn_det.study.run_name import DIVERGED, RunName, schedule_folder
from frn_det.utils import write_json

STUDY_CONFIG = "demo/batch_study_R18_shapes.yaml"  # a model-zoo name


def reference_config(config_file, opts):
    """The config the study scales from (a path or a model-zoo name), after its _BASE_ chain and the
    overrides."""
    from frn_det.config import command_cfg

    return command_cfg(config_file, opts)[0]


def reference_solver(config_file, opts, cfg=None):
    """The solver the study scales from: the config's, after its _BASE_ chain and the overrides."""
    s = (cfg or reference_config(config_file, opts)).SOLVER
    return dict(batch=s.IMS_PER_BATCH, steps=s.MAX_ITER, lr=s.BASE_LR, warmup=s.WARMUP_ITERS,
                checkpoint=s.CHECKPOINT_PERIOD)


def plan_runs(methods, imgs, seeds, extra_seeds, base_lrs=(None,), schedules=(None,), sizes=(None,),
              own_size=None):
    """One run per size, schedule, reference lr, images per GPU, seed and method (None: the
    config's). base_lrs is a list for every method, or {method: lrs} (parse_base_lrs). A run at a size
    other than own_size (the config's) is named ..._<size>px."""
    lrs_of = base_lrs if isinstance(base_lrs, dict) else {method: list(base_lrs) for method in methods}
    all_lrs = list(dict.fromkeys(lr for method in methods for lr in lrs_of.get(method, [None])))
    runs = []
    for size in sizes:
        for steps in schedules:
            for lr in all_lrs:
                for m in imgs:
                    for seed in sorted(set(seeds) | set(extra_seeds.get(m, []))):
                        for method in (x for x in methods if lr in lrs_of.get(x, [None])):
                            name = str(RunName(method, m, seed, lr, None if size in (None, own_size) else size))
                            folder = name if steps is None else os.path.join(schedule_folder(steps), name)
                            runs.append(dict(method=method, imgs=m, seed=seed, base_lr=lr, schedule=steps,
                                             size=size or own_size, name=name, dir=folder))
    return runs


def config_size(cfg):
    """The input side a config trains at: its longest training side (the study's images are square)."""
    return cfg.INPUT.MAX_SIZE_TRAIN


def size_opts(size, cfg):
    """Overrides that train and test at input side `size` instead of the config's own: the images are
    resized at load time and the anchors (and square padding) scale with them, so that each object
    keeps its pyramid level. Nothing when size is the config's."""
    if cfg is None or size is None or size == config_size(cfg):
        return []
    base = config_size(cfg)
    scale = size / base
    anchors = [[round(a * scale, 2) for a in level] for level in cfg.MODEL.ANCHOR_GENERATOR.SIZES]
    opts = ["INPUT.MIN_SIZE_TRAIN", f"({size},)", "INPUT.MAX_SIZE_TRAIN", str(size),
            "INPUT.MIN_SIZE_TEST", str(size), "INPUT.MAX_SIZE_TEST", str(size),
            "MODEL.ANCHOR_GENERATOR.SIZES", str(anchors)]
    if cfg.MODEL.FPN.get("SQUARE_PAD", 0):
        opts += ["MODEL.FPN.SQUARE_PAD", str(round(cfg.MODEL.FPN.SQUARE_PAD * scale))]
    return opts


def run_solver(run, ref, num_gpus):
    """SOLVER keys of one run: the reference solver at the run's schedule, scaled to its batch."""
    steps = ref["steps"] if run.get("schedule") is None else run["schedule"]
    stretch = steps / ref["steps"]
    lr = ref["lr"] if run["base_lr"] is None else run["base_lr"]
    return scaled_solver(run["imgs"], num_gpus, ref["batch"], steps, lr, round(ref["warmup"] * stretch),
                         max(1, round(ref["checkpoint"] * stretch)))


def config_record(given, config_file):
    """The study's config as results.json names it: relative to the current directory when it lies in
    it, else the model-zoo name it was given as, else as given."""
    rel = relative(config_file)
    return rel if rel != config_file else given


def invocation():
    """The command that started the study, for results.json: the checkout's tools/batch_study.py as
    given, else the installed module."""
    if os.path.basename(sys.argv[0]) == "batch_study.py":
        return ["python", relative(sys.argv[0])]
    return ["python", "-m", "frn_det.study.batch"]


def train_argv(run, args, ref, cfg=None):
    """frn_det.train_net's arguments for one run (--resume: an interrupted run continues)."""
    solver = run_solver(run, ref, args.num_gpus)
    # the study's own keys come last and win
    opts = [*args.opts, *method_opts(run["method"]), *size_opts(run.get("size"), cfg)]
    for key, value in solver.items():
        opts += [f"SOLVER.{key}", str(value)]
    opts += ["SEED", str(run["seed"]), "OUTPUT_DIR", os.path.join(args.output, run["dir"]), "MODEL.DEVICE", args.device]
    return ["--config-file", args.config, "--num-gpus", str(args.num_gpus), "--resume", *opts]


def summarize(records, schedule=None, size=None):
    """{(method, imgs): {metric: [values over seeds], "base_lr": lr}} from the finished runs of one
    schedule (and input size, where given); where several learning rates were run, the one with the
    best mean AP (frn_det.study.best_lr)."""
    by_cell = {}  # (method, imgs) -> {lr: {metric: [values over seeds], "seeds": [...]}}
    for r in records:
        if "failed" in r["result"] or r.get("schedule") != schedule:
            continue
        if size is not None and r.get("size") != size:
            continue
        (values,) = r["result"].values()  # one test dataset
        cell = by_cell.setdefault((r["method"], r["imgs"]), {}).setdefault(r["base_lr"], {k: [] for k in (*METRICS, "seeds")})
        for k in METRICS:
            cell[k].append(values[k])
        cell["seeds"].append(r["seed"])
    cells = {}
    for key, by_lr in by_cell.items():
        lr = best_lr({lr: dict(zip(cell["seeds"], cell["AP"])) for lr, cell in by_lr.items()})
        cells[key] = {k: v for k, v in by_lr[lr].items() if k != "seeds"} | {"base_lr": lr}
    return cells


def keep_results(output, records, dest):
    """Copies the study's summary and each finished run's small files to dest (for committing)."""
    for r in records:
        for name in ("results.json", "metrics.json", "config.yaml", DIVERGED):
            src = os.path.join(output, r["dir"], name)
            if os.path.exists(src):
                os.makedirs(os.path.join(dest, r["dir"]), exist_ok=True)
                shutil.copy2(src, os.path.join(dest, r["dir"], name))
    for name in ("results.json", "table.md", "plot.png", "curve.png", "sizes.png"):
        if os.path.exists(os.path.join(output, name)):
            shutil.copy2(os.path.join(output, name), os.path.join(dest, name))


def parse_base_lrs(items, methods):
    """--base-lrs: ["0.02", "0.1"] -> [0.02, 0.1] for every method; ["frn=0.2", "gn=0.1,0.05"] ->
    {"frn": [0.2], "gn": [0.1, 0.05]} (a method given none of its own: the plain values, else the config's);
    None -> [None]."""
    if not items:
        return [None]
    every, own = [], {}
    for item in items:
        method, sep, values = item.rpartition("=")
        try:
            lrs = [float(x) for x in values.split(",")]
        except ValueError:
            raise SystemExit(f"--base-lrs takes LR ... or METHOD=LR[,LR] ... (e.g. 0.1 or frn=0.2 gn=0.1); got {item!r}")
        if not sep:
            every += lrs
        elif method not in methods:
            raise SystemExit(f"--base-lrs {item}: {method!r} is not among --methods ({', '.join(methods)})")
        else:
            own.setdefault(method, []).extend(lrs)
    if not own:
        return every
    return {method: own.get(method, every or [None]) for method in methods}


def make_jobs(args):
    """Where the runs execute: --launcher local (--jobs at once) or slurm (frn_det.study.jobs)."""
    if args.launcher == "slurm":
        return SlurmJobs(args, args.slurm_folder or os.path.join(args.output, "slurm"), args.num_gpus, args.device)
    return LocalJobs(args.jobs, args.device, args.num_gpus)


def parse_extra_seeds(items):
    """["2=1,2"] -> {2: [1, 2]}"""
    extra = {}
    for item in items:
        try:
            m, seeds = item.split("=")
            extra[int(m)] = [int(x) for x in seeds.split(",")]
        except ValueError:
            raise SystemExit(f"--extra-seeds takes IMGS=SEED,SEED... (e.g. 2=1,2); got {item!r}")
    return extra


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=STUDY_CONFIG,
                        help="the reference config whose solver every run scales from: a path or a "
                             "frn_det.model_zoo name (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", default=list(PAPER_METHODS), choices=list(METHOD_NORMS),
                        help="norms to compare (frn_det.config.protocol.METHOD_NORMS): " + "; ".join(
                            f"{m}: {'/'.join(n.values())}" for m, n in METHOD_NORMS.items())
                        + f" (RESNETS/FPN/RETINANET); default: {' '.join(PAPER_METHODS)}")
    parser.add_argument("--imgs", nargs="+", type=int, default=[8, 2], help="images per GPU (default: the committed study's columns)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds for every column")
    parser.add_argument("--extra-seeds", nargs="*", default=["2=1"],
                        help="more seeds for some columns, as IMGS=SEED,SEED (default: 2=1)")
    parser.add_argument("--base-lrs", nargs="+", default=None, metavar="LR | METHOD=LR[,LR]",
                        help="reference learning rates (at the config's batch) to run for every cell, or "
                             "for one method as METHOD=LR,LR (e.g. frn=0.2 gn=0.1); the table reports each "
                             "cell's best (default: the config's SOLVER.BASE_LR only)")
    parser.add_argument("--schedules", nargs="+", type=int, default=None,
                        help="reference schedule lengths (iterations at the config's batch) to run every cell "
                             "at; each goes to OUTPUT/iters<N> (default: the config's SOLVER.MAX_ITER only)")
    parser.add_argument("--sizes", nargs="+", type=int, default=None,
                        help="input sides (px) to run every cell at: images resized at load time, anchors "
                             "scaled alike; runs at another size than the config's are named _<side>px "
                             "(default: the config's size only)")
    parser.add_argument("--keep-in", default=None,
                        help="also copy the summary and each run's results.json, metrics.json, config.yaml here")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", default=os.path.join("output", "batch_study"))
    parser.add_argument("--launcher", choices=["local", "slurm"], default="local",
                        help="local: the runs on this machine, --jobs at once; slurm: every run a SLURM job "
                             "through submitit (--slurm-*), all queued at once (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="with --launcher local: runs at once, the CPU threads (or GPUs) shared out among "
                             "them (default: %(default)s)")
    add_slurm_arguments(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides for every run (KEY VALUE ...)")
    args = parser.parse_args(argv)
    given = args.config
    args.config = os.path.abspath(config_file_argument(given, "--config"))
    os.makedirs(args.output, exist_ok=True)

    cfg = reference_config(args.config, args.opts)
    ref = reference_solver(args.config, args.opts, cfg)
    base_lrs = parse_base_lrs(args.base_lrs, args.methods)
    schedules = args.schedules or [None]
    sizes = args.sizes or [config_size(cfg)]
    runs = plan_runs(args.methods, args.imgs, args.seeds, parse_extra_seeds(args.extra_seeds), base_lrs, schedules,
                     sizes, config_size(cfg))
    jobs = make_jobs(args)
    print(f"batch study: {len(runs)} runs, {jobs.describe()}")
    records = []
    start = time.time()
    # The bar counts training images still to go: a run's cost is about its images (an iteration of
    # 2 images costs about a quarter of one of 8), finished runs are skipped and a resumed run's
    # earlier iterations are done, so none of them count and the ETA stays true.
    solvers = [run_solver(r, ref, args.num_gpus) for r in runs]
    before = [min(checkpointed_iterations(os.path.join(args.output, r["dir"])), s["MAX_ITER"]) for r, s in zip(runs, solvers)]
    unfinished = [not os.path.exists(os.path.join(args.output, r["dir"], "results.json")) for r in runs]
    bar = tqdm(total=sum((s["MAX_ITER"] - b) * s["IMS_PER_BATCH"] for s, b, u in zip(solvers, before, unfinished) if u),
               desc="batch study", unit="img", unit_scale=True, smoothing=0.05)
    argvs = [train_argv(r, args, ref, cfg) for r in runs]
    for run, (result, skipped) in zip(runs, run_all(runs, args.output, argvs, jobs, bar, before, solvers)):
        records.append({**run, "result": result, "skipped": skipped})
    bar.close()
    minutes = (time.time() - start) / 60

    lrs_note = "\nbest of lr " + lrs_text(base_lrs) if lrs_text(base_lrs) else ""
    last_size = sizes[-1]
    by_schedule = {steps: summarize(records, steps, last_size) for steps in schedules}
    tables = []
    for size in sizes:
        for steps in schedules:
            table = markdown_table(summarize(records, steps, size), args.methods, args.imgs, base_lrs)
            seen = (ref["steps"] if steps is None else steps) * ref["batch"]
            heads = ([] if steps is None else [f"{steps} iterations of {ref['batch']} images ({seen:,} images seen)"]) + \
                ([] if len(sizes) == 1 else [f"{size} px"])
            tables.append(f"### {', '.join(heads)}\n\n{table}" if heads else table)
    table = "\n".join(tables)
    write_json(os.path.join(args.output, "results.json"),
               {"config": config_record(given, args.config), "reference_solver": ref, "sizes": sizes, "num_gpus": args.num_gpus,
                "command": [*invocation(),
                            *(relative(a) if os.path.exists(a) else a for a in (sys.argv[1:] if argv is None else argv))],
                "minutes_this_invocation": minutes, "runs": records}, indent=2)
    with open(os.path.join(args.output, "table.md"), "w") as f:
        f.write(table)
    last = max(schedules, key=lambda s: -1 if s is None else s)
    seen = (ref["steps"] if last is None else last) * ref["batch"]
    plot(by_schedule[last], args.methods, args.imgs, os.path.join(args.output, "plot.png"),
         f"{os.path.basename(args.config)}: {seen:,} images seen" + lrs_note)
    if len(sizes) > 1:
        plot_sizes({size: summarize(records, last, size) for size in sizes}, args.methods, args.imgs,
                   os.path.join(args.output, "sizes.png"), f"{os.path.basename(args.config)}: AP against input size" + lrs_note)
    if len(schedules) > 1:
        plot_curve(by_schedule, args.methods, args.imgs, ref["batch"], os.path.join(args.output, "curve.png"),
                   f"{os.path.basename(args.config)}: AP against images seen" + lrs_note)
    if args.keep_in:
        keep_results(args.output, records, args.keep_in)
    print(table)
    print(f"{len(runs)} runs ({sum(r['skipped'] for r in records)} skipped) in {minutes:.1f} min; "
          f"results, table.md and plot.png in {args.output}")
    return records


def cli(argv=None):
    """main(), then the exit status: a failed run fails the study, so that scripts (and queues of
    studies) see it."""
    failed = [r["dir"] for r in main(argv) if "failed" in r["result"]]
    return f"batch study: {len(failed)} run(s) failed: {', '.join(failed)}" if failed else 0


if __name__ == "__main__":
    sys.exit(cli())
