"""The batch-size study's summary (benchmarks/study/): Table 6's shape on each look, with and without
the recipe options, each option's effect, the learning-rate sweep, and the study's targets checked.

  python tools/study_summary.py                          # reads and writes benchmarks/study
  python tools/study_summary.py --study output/study --output /tmp/summary

The study folder holds one folder per variant, as benchmarks/study/commands.sh writes them: `shapes`
(the paper's method and the baselines on the photo-like look), `real` (the real-photo look),
`<look>_<option>` (the same runs with a recipe option on). Each run folder (`frn_2img_seed1`,
`gn_8img_seed0_lr0.05`) holds the results.json and config.yaml that tools/train_net.py wrote. Where a
cell was run at several learning rates, it shows the best (by mean AP over seeds) and names it.
Runs at another input size than 128 px (`..._256px`, tools/batch_study.py --sizes) get tables of their
own, and a table and sizes.png show each row's gap to GN by size; summary.png shows the main size (the
largest with a complete table). Writes summary.md and summary.png; with --readme, also puts the tables
between the lines `<!-- study summary -->` and `<!-- /study summary -->` of benchmarks/study/README.md
(or of --readme FILE).
"""
import argparse
import os
import re
import statistics

import yaml

from frn_det.evaluation import read_results
from frn_det.utils import REPO_ROOT as ROOT
LOOKS = {"shapes": "photo-like shapes (shapes_train / shapes_val)", "real": "real-photo look (shapes_real_train / shapes_real_val)"}
SHORT = {"shapes": "photo-like", "real": "real-photo"}
# option folder suffix -> (what it is, its config key)
OPTIONS = {
    "learnable_eps": ("learnable eps, eps = 1e-6 + abs(eps_l) (the paper's, section 3.3)", "MODEL.FRN.LEARNABLE_EPS True"),
    "center": ("input centering: each image's per-channel mean removed", "MODEL.CENTER_PIXELS_PER_IMAGE True"),
    "zero_init": ("last norm's gamma of each residual branch at 0", "MODEL.RESNETS.ZERO_INIT_RESIDUAL True"),
    "norm_per_level": ("head norms per FPN level", "MODEL.RETINANET.NORM_PER_LEVEL True"),
    "wd_norm": ("weight decay 4e-4 on the norm parameters", "SOLVER.WEIGHT_DECAY_NORM 0.0004"),
}
METHODS = ("frn", "gn", "bn")
REFERENCE_IMGS = 8  # the study config's batch: learning rates are swept and named at it
RUN_NAME = re.compile(r"^(frn|gn|bn)_(\d+)img_seed(\d+)(?:_lr([0-9.e-]+))?(?:_(\d+)px)?$")
SCHEDULE_DIR = re.compile(r"^iters(\d+)$")
# the 128 px schedule curve (photo-like shapes, FRN and GN at lr 0.02), read beside the study
CONVERGENCE = os.path.join(ROOT, "benchmarks", "convergence")
# the study's targets: what FRN should show at small scale if it behaves as in the paper's Table 6
FRN_VS_GN = 1.0  # FRN within 1 AP of GN (or above) at every column
FRN_FLAT = 1.5  # FRN at 2 images within 1.5 AP of FRN at 8
BN_DROP = 3.0  # BN at 2 images at least 3 AP below BN at 8


def load_runs(study):
    """[{variant, method, imgs, seed, lr, iters, schedule, size, longer, AP, AP50, AP75}] of every finished
    run under study/: <variant>/<run> at the study's schedule, and <variant>/iters<N>/<run> at the
    reference schedule N (tools/batch_study.py --schedules; longer=True). schedule is the run's length
    in iterations of 8 images."""
    runs = []
    for variant in sorted(os.listdir(study)):
        if os.path.isdir(os.path.join(study, variant)):
            runs += variant_runs(os.path.join(study, variant), variant)
    return runs


def variant_runs(folder, variant):
    """The finished runs of one variant folder (its run folders and those of its iters<N> folders)."""
    runs = []
    for name in sorted(os.listdir(folder)):
        if SCHEDULE_DIR.match(name) and os.path.isdir(os.path.join(folder, name)):
            runs += [dict(r, longer=True) for r in variant_runs(os.path.join(folder, name), variant)]
            continue
        match = RUN_NAME.match(name)
        results = os.path.join(folder, name, "results.json")
        if not match or not os.path.exists(results):
            continue
        (headline,) = read_results(results)["headline"].values()  # one test dataset
        config = yaml.safe_load(open(os.path.join(folder, name, "config.yaml")))
        solver = config["SOLVER"]
        method, imgs, seed, lr, _ = match.groups()
        runs.append(dict(variant=variant, method=method, imgs=int(imgs), seed=int(seed),
                         lr=float(lr) if lr else round(REFERENCE_IMGS * solver["BASE_LR"] / solver["IMS_PER_BATCH"], 8),
                         iters=solver["MAX_ITER"], schedule=solver["MAX_ITER"] * int(imgs) // REFERENCE_IMGS,
                         size=config["INPUT"]["MAX_SIZE_TRAIN"], longer=False,
                         **{k: headline[k] for k in ("AP", "AP50", "AP75")}))
    return runs


def study_budget(runs):
    """The runs at the study's own schedule (every table but the schedule's): not those of --schedules."""
    return [r for r in runs if not r.get("longer")]


def select(runs, variant, method, imgs, lr=None, seeds=None):
    """The runs of one cell, at one lr and among some seeds where given."""
    return [r for r in runs if r["variant"] == variant and r["method"] == method and r["imgs"] == imgs
            and (lr is None or r["lr"] == lr) and (seeds is None or r["seed"] in seeds)]


def best_lr(runs, variant, method, imgs, lr=None):
    """(reference lr, AP values over seeds) of one cell, or (None, None) when not run. Without lr: the
    learning rate with the best mean AP, as the paper reports the best of its three per cell."""
    by_lr = {}
    for r in select(runs, variant, method, imgs, lr):
        by_lr.setdefault(r["lr"], []).append(r["AP"])
    return max(by_lr.items(), key=lambda item: statistics.mean(item[1])) if by_lr else (None, None)


def cell(runs, variant, method, imgs, lr=None):
    """AP values over seeds of one cell at its best (or the given) lr; None when not run."""
    return best_lr(runs, variant, method, imgs, lr)[1]


def column_cell(runs, variant, method, imgs):
    """(reference lr, AP values) of a table cell by the study's rule: the 8-image column takes its best
    lr, every other column that same reference lr (scaled x m/8), not a best of its own; a column
    without a run at that lr gets (lr, None). Without an 8-image run, the column's own best."""
    lr8 = best_lr(runs, variant, method, REFERENCE_IMGS)[0]
    if imgs == REFERENCE_IMGS or lr8 is None:
        return best_lr(runs, variant, method, imgs)
    return lr8, cell(runs, variant, method, imgs, lr8)


def seeds_of(runs, variant, method, imgs, lr):
    return sorted(r["seed"] for r in select(runs, variant, method, imgs, lr))


def fmt(aps):
    if aps is None:
        return "-"
    if len(aps) == 1:
        return f"{aps[0]:.1f}"
    return (f"{statistics.mean(aps):.1f} ± {statistics.stdev(aps):.1f} ({len(aps)} seeds: "
            + ", ".join(f"{a:.1f}" for a in aps) + ")")


def mean(aps):
    return None if aps is None else statistics.mean(aps)


def diff(a, b):
    return "-" if a is None or b is None else f"{a - b:+.1f}"


def look_rows(runs, look):
    """(label, variant, method) rows of Table 6's shape for one look: the paper's method, the
    baselines, and FRN and GN with each option that has runs."""
    rows = []
    for method, label in (("frn", "FRN (paper)"), ("gn", "GN")):
        rows.append((label, look, method))
        rows += [(f"{method.upper()} + {suffix} (option)", f"{look}_{suffix}", method) for suffix in OPTIONS
                 if any(r["variant"] == f"{look}_{suffix}" and r["method"] == method for r in runs)]
    rows.append(("BN", look, "bn"))
    return rows


def targets(runs, look, cols):
    """The study's targets on one look, each as (target, met or None when not run, what was measured),
    on the table's cells (column_cell). A comparison across columns with one seed at 2 images is
    marked provisional: a comparison needs two."""
    out = []
    gn = {m: mean(column_cell(runs, look, "gn", m)[1]) for m in cols}
    frn_rows = [(label.replace(" (option)", ""), variant) for label, variant, method in look_rows(runs, look)
                if method == "frn"]
    for m in cols:  # one verdict per row: the paper's method's, and each option's of its own
        for label, variant in frn_rows:
            frn = mean(column_cell(runs, variant, "frn", m)[1])
            d = None if frn is None or gn[m] is None else frn - gn[m]
            if d is not None or variant == look:
                out.append((f"{label} within {FRN_VS_GN:g} AP of GN or above at {m} images",
                            None if d is None else d >= -FRN_VS_GN, "not run" if d is None else f"{d:+.1f}"))
    if REFERENCE_IMGS in cols and 2 in cols:
        checks = [(f"{label} at 2 images within {FRN_FLAT:g} AP of 8", variant, "frn", lambda d: d >= -FRN_FLAT)
                  for label, variant in frn_rows]
        checks.append((f"BN at 2 images at least {BN_DROP:g} AP below 8", look, "bn", lambda d: d <= -BN_DROP))
        for target, variant, method, ok in checks:
            lr, at2 = column_cell(runs, variant, method, 2)
            at8 = cell(runs, variant, method, REFERENCE_IMGS, lr)
            if at2 is None or at8 is None:
                out.append((target, None, "-"))
                continue
            d = mean(at2) - mean(at8)
            n = len(seeds_of(runs, variant, method, 2, lr))
            out.append((target, ok(d), f"{d:+.1f}" + (" (1 seed at 2 images: provisional)" if n < 2 else "")))
    return out


def sizes_of(runs):
    """The input sides the runs were trained at, the largest first."""
    return sorted({r["size"] for r in runs}, reverse=True)


def markdown(runs, curve_runs=None):
    """The tables of every input size, the largest first, at the study's schedule, then FRN's and BN's
    gaps to GN by size, and FRN's gap to GN against images seen (from curve_runs: runs and the
    convergence curve's)."""
    lines = budget_markdown(study_budget(runs))
    return "\n".join(lines + schedule_table(runs if curve_runs is None else curve_runs))


def budget_markdown(runs):
    iters = sorted({r["iters"] * r["imgs"] // REFERENCE_IMGS for r in runs})
    lines = [f"Reference schedule: {', '.join(map(str, iters))} iterations of 8 images (steps x 8/m at m images "
             "per batch, lr x m/8); seed 0, plus seed 1 where a cell says 2 seeds; AP on the look's val set; "
             "(lr) is the reference learning rate at 8 images: the 8-image column's best of those run, which the "
             "2-image column takes too (x 2/8); @2 - @8 is at that same lr. Input sizes: the images (128 px on "
             "disk) resized at load time, anchors scaled alike (tools/batch_study.py --sizes).", ""]
    sizes = sizes_of(runs)
    for size in sizes:
        if len(sizes) > 1:
            lines += [f"### {size} px", ""]
        lines += size_tables([r for r in runs if r["size"] == size])
    if len(sizes) > 1:
        lines += gap_by_size(runs)
    return lines


def schedule_lines(runs):
    """FRN's gap to GN against images seen, 8 images per batch: [(look, label, size, FRN lr, GN lr,
    [(images seen, FRN AP, GN AP)])], one line per FRN row, input size and lr pair. The pair is each
    method's best lr at the study's schedule at that size (the tables' cells); equal lrs run at two or
    more schedules (benchmarks/convergence: both at 0.02) are a line of their own."""
    at8 = [r for r in runs if r["imgs"] == REFERENCE_IMGS]
    out = []
    for look in LOOKS:
        for label, variant, method in look_rows(at8, look):
            if method != "frn":
                continue
            for size in sorted({r["size"] for r in at8 if r["variant"] == variant}):
                here = [r for r in at8 if r["size"] == size]
                budget = study_budget(here)
                best = (best_lr(budget, variant, "frn", REFERENCE_IMGS)[0], best_lr(budget, look, "gn", REFERENCE_IMGS)[0])
                pairs = [best] + [(lr, lr) for lr in sorted({r["lr"] for r in select(here, variant, "frn", REFERENCE_IMGS)})
                                  if (lr, lr) != best]
                for lf, lg in pairs:
                    points = []
                    for schedule in sorted({r["schedule"] for r in here}):
                        f = [r["AP"] for r in select(here, variant, "frn", REFERENCE_IMGS, lf) if r["schedule"] == schedule]
                        g = [r["AP"] for r in select(here, look, "gn", REFERENCE_IMGS, lg) if r["schedule"] == schedule]
                        if f and g:
                            points.append((schedule * REFERENCE_IMGS, statistics.mean(f), statistics.mean(g)))
                    if points and ((lf, lg) == best or len(points) > 1):
                        out.append((look, label, size, lf, lg, points))
    return out


def schedule_table(runs):
    """The schedule lines as a table: FRN - GN (FRN AP / GN AP) per images seen."""
    lines = schedule_lines(runs)
    if not any(len(points) > 1 for *_, points in lines):
        return []
    seen = sorted({n for *_, points in lines for n, _, _ in points})
    table = ["### FRN - GN against images seen (8 images per batch)", "",
             "Each method at its best lr of the study's schedule at that size (the tables' cells), and both at one "
             "lr where that was run at several lengths; 128 px, photo-like, lr 0.02 / 0.02: "
             "`benchmarks/convergence/`. Cells: FRN - GN (FRN AP / GN AP).", "",
             "| look | row | size | lr FRN / GN | " + " | ".join(f"{n:,} images" for n in seen) + " |",
             "|---|---|---:|---|" + "---:|" * len(seen)]
    for look, label, size, lf, lg, points in lines:
        at = {n: (f, g) for n, f, g in points}
        table.append(f"| {look} | {label} | {size} px | {lf:g} / {lg:g} | " + " | ".join(
            f"{at[n][0] - at[n][1]:+.1f} ({at[n][0]:.1f} / {at[n][1]:.1f})" if n in at else "-" for n in seen) + " |")
    return table + [""]


def plot_schedule(runs, path):
    """FRN - GN against images seen, a line per schedule line with two or more points; None without."""
    lines = [line for line in schedule_lines(runs) if len(line[-1]) > 1]
    if not lines:
        return None
    fig, axes = _look_panels(["all"])
    ax = axes[0][0]
    for look, label, size, lf, lg, points in lines:
        xs = [n for n, _, _ in points]
        ax.plot(xs, [f - g for _, f, g in points], marker="o", ls="--" if "option" in label else "-",
                label=f"{size} px, {SHORT[look]}: {label} (lr {lf:g}) - GN (lr {lg:g})")
    seen = sorted({n for *_, points in lines for n, _, _ in points})
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(seen, [f"{n / 1000:g}k" for n in seen])
    ax.set_xlabel("images seen (8 images per batch)")
    ax.set_title("FRN's gap to GN against the schedule, by input size", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save_panels(fig, axes, "AP minus GN's AP", path)
    return path


def convergence_runs(folder, runs):
    """The convergence curve's runs (photo-like shapes, iters<N>/<run>) that the study does not hold
    already (its 1600-iteration runs are the study's own)."""
    if not folder or not os.path.isdir(folder):
        return []
    key = lambda r: (r["variant"], r["method"], r["imgs"], r["seed"], r["lr"], r["size"], r["schedule"])  # noqa: E731
    have = {key(r) for r in runs}
    return [r for r in variant_runs(folder, "shapes") if key(r) not in have]


def gap_rows(runs):
    """(look, label, variant, method, imgs) of every FRN / BN row that has a GN row to compare with."""
    rows = []
    for look in LOOKS:
        for label, variant, method in look_rows(runs, look):
            if method == "gn":
                continue
            for m in sorted({r["imgs"] for r in runs}, reverse=True):
                rows.append((look, label, variant, method, m))
    return rows


def gaps(runs, look, variant, method, imgs, size):
    """(AP, GN's AP) of one row and column at one size, on the table's cells; None where not run."""
    at = [r for r in runs if r["size"] == size]
    return mean(column_cell(at, variant, method, imgs)[1]), mean(column_cell(at, look, "gn", imgs)[1])


def gap_by_size(runs):
    """Each FRN and BN row's AP minus GN's (same look, images per GPU, table rule) at every size."""
    sizes = sorted({r["size"] for r in runs})
    lines = ["### The gap to GN by input size", "",
             "| look | row | images | " + " | ".join(f"{s} px: AP (- GN)" for s in sizes) + " |",
             "|---|---|---:|" + "---:|" * len(sizes)]
    for look, label, variant, method, m in gap_rows(runs):
        cells = []
        for s in sizes:
            ap, gn = gaps(runs, look, variant, method, m, s)
            cells.append("-" if ap is None else f"{ap:.1f} ({diff(ap, gn)})")
        if any(c != "-" for c in cells[1:]):  # rows run at another size than the first only
            lines.append(f"| {look} | {label} | {m} | " + " | ".join(cells) + " |")
    return lines + [""]


def size_tables(runs):
    """Table 6's shape per look, its targets, the options' effects and the lr sweep, for runs of one size."""
    cols = sorted({r["imgs"] for r in runs}, reverse=True)
    lines = []
    for look, what in LOOKS.items():
        if not any(r["variant"] == look for r in runs):
            continue
        lines += [f"#### {what}", "", "| | " + " | ".join(f"AP @{m}" for m in cols) + " | @2 - @8 |",
                  "|---|" + "---:|" * (len(cols) + 1)]
        for label, variant, method in look_rows(runs, look):
            cells = {m: column_cell(runs, variant, method, m) for m in cols}
            lines.append(f"| {label} | " + " | ".join(
                "-" if lr is None else (f"{fmt(aps)} (lr {lr:g})" if aps else f"- (not run at lr {lr:g})")
                for lr, aps in cells.values()) + f" | {diff(*(mean(cells[m][1]) if m in cells else None for m in (2, REFERENCE_IMGS)))} |")
        lines += ["", "| target | met | measured (AP) |", "|---|---|---|"]
        for target, met, measured in targets(runs, look, cols):
            lines.append(f"| {target} | {'-' if met is None else ('yes' if met else 'no')} | {measured} |")
        lines.append("")
    option_rows = []
    for look in LOOKS:
        for suffix, (what, key) in OPTIONS.items():
            variant = f"{look}_{suffix}"
            for method in METHODS:
                for m in cols:
                    lr, with_ = column_cell(runs, variant, method, m)
                    if with_ is None:
                        continue
                    seeds = seeds_of(runs, variant, method, m, lr)  # without: the same lr and seeds
                    without = [r["AP"] for r in select(runs, look, method, m, lr, seeds)] or None
                    option_rows.append(f"| {look} | {what} (`{key}`) | {method.upper()} | {m} | {lr:g} | {fmt(without)} | "
                                       f"{fmt(with_)} | {diff(mean(with_), mean(without))} |")
    if option_rows:
        lines += ["#### Recipe options (beyond the paper)", "",
                  "| look | option | method | images | lr | AP without | AP with | change |", "|---|---|---|---:|---:|---:|---:|---:|",
                  *option_rows, ""]
    lrs = sorted({r["lr"] for r in runs if r["variant"] == "shapes" and r["imgs"] == REFERENCE_IMGS})
    if len(lrs) > 1:
        lines += ["#### Learning rate at 8 images (photo-like shapes, reference lr at 8 images)", "",
                  "| method | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " | best |", "|---|" + "---:|" * (len(lrs) + 1)]
        for method in METHODS:
            aps = {lr: mean(cell(runs, "shapes", method, REFERENCE_IMGS, lr)) for lr in lrs}
            best = best_lr(runs, "shapes", method, REFERENCE_IMGS)[0]
            best = "-" if best is None else f"{best:g}"
            lines.append(f"| {method.upper()} | " + " | ".join("-" if aps[lr] is None else f"{aps[lr]:.1f}" for lr in lrs)
                         + f" | {best} |")
        lines.append("")
    return lines


def main_size(runs):
    """The largest input size at which every look that has runs has its whole table (FRN, GN and BN at
    every images-per-GPU column): the study's main table. The smallest size when none is complete."""
    cols = {r["imgs"] for r in runs}
    for size in sizes_of(runs):
        at = [r for r in runs if r["size"] == size]
        looks = [look for look in LOOKS if any(r["variant"] == look for r in runs)]
        if all(column_cell(at, look, method, m)[1] for look in looks for method in METHODS for m in cols):
            return size
    return min(r["size"] for r in runs)


def _look_panels(looks):
    """A figure with one panel per look, sharing the y axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, len(looks), figsize=(5.2 * len(looks), 4), squeeze=False, sharey=True)


def _save_panels(fig, axes, ylabel, path):
    import matplotlib.pyplot as plt

    axes[0][0].set_ylabel(ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(runs, path):
    """AP against images per GPU, a panel per look, at the main size."""
    size = main_size(runs)
    runs = [r for r in runs if r["size"] == size]
    looks = [look for look in LOOKS if any(r["variant"] == look for r in runs)]
    cols = sorted({r["imgs"] for r in runs})
    fig, axes = _look_panels(looks)
    for ax, look in zip(axes[0], looks):
        for label, variant, method in look_rows(runs, look):
            pts = [(m, column_cell(runs, variant, method, m)[1]) for m in cols]
            pts = [(m, statistics.mean(a), statistics.stdev(a) if len(a) > 1 else 0) for m, a in pts if a]
            if pts:
                xs, ys, es = zip(*pts)
                ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=label,
                            ls="--" if "option" in label else "-")
        ax.set_xscale("log", base=2)
        ax.set_xticks(cols, [str(m) for m in cols])
        ax.set_xlabel("images per GPU")
        ax.set_title(f"{LOOKS[look]}, {size} px", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save_panels(fig, axes, "AP (COCO, val)", path)


def plot_sizes(runs, path):
    """Each FRN and BN row's AP minus GN's against the input side, a panel per look; None with one size."""
    sizes = sorted({r["size"] for r in runs})
    looks = [look for look in LOOKS if any(r["variant"] == look for r in runs)]
    if len(sizes) < 2 or not looks:
        return None
    fig, axes = _look_panels(looks)
    for ax, look in zip(axes[0], looks):
        for row_look, label, variant, method, m in gap_rows(runs):
            if row_look != look:
                continue
            pts = [(s, *gaps(runs, look, variant, method, m, s)) for s in sizes]
            pts = [(s, ap - gn) for s, ap, gn in pts if ap is not None and gn is not None]
            if len(pts) > 1 or (pts and pts[0][0] != sizes[0]):
                ax.plot(*zip(*pts), marker="o", label=f"{label}, {m} img",
                        ls="--" if "option" in label else "-")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.set_xlabel("input side (px)")
        ax.set_title(LOOKS[look], fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _save_panels(fig, axes, "AP minus GN's AP (same images per GPU)", path)
    return path


README_BEGIN, README_END = "<!-- study summary -->", "<!-- /study summary -->"
STUDY_README = os.path.join(ROOT, "benchmarks", "study", "README.md")


def update_readme(path, text):
    """Replaces what lies between the README's markers with text."""
    readme = open(path).read()
    start, end = readme.find(README_BEGIN), readme.find(README_END)
    if start < 0 or end < start:
        raise SystemExit(f"{path} has no '{README_BEGIN}' ... '{README_END}' lines to put the summary between")
    with open(path, "w") as f:
        f.write(readme[: start + len(README_BEGIN)] + "\n" + text.rstrip() + "\n" + readme[end:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", default=os.path.join(ROOT, "benchmarks", "study"))
    ap.add_argument("--output", default=None, help="default: the study folder")
    ap.add_argument("--convergence", default=CONVERGENCE,
                    help="the 128 px schedule curve's runs (iters<N>/<run>) for the schedule table; '' for none")
    ap.add_argument("--readme", nargs="?", const=STUDY_README, default=None, metavar="FILE",
                    help="a markdown file to put the tables in, between markers (without FILE: the study's README)")
    args = ap.parse_args(argv)
    runs = load_runs(args.study)
    if not runs:
        raise SystemExit(f"no finished runs under {args.study} (<variant>/<method>_<m>img_seed<s>/results.json)")
    out = args.output or args.study
    os.makedirs(out, exist_ok=True)
    curve = runs + convergence_runs(args.convergence, runs)
    text = markdown(runs, curve)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    plot(study_budget(runs), os.path.join(out, "summary.png"))
    plot_sizes(study_budget(runs), os.path.join(out, "sizes.png"))
    plot_schedule(curve, os.path.join(out, "schedule.png"))
    if args.readme:
        update_readme(args.readme, text)
    print(text)
    return runs
