"""The study's rules from runs to numbers: which runs make a cell and at which learning rate, the rows
of Table 6's shape, Table 6's claims, the gaps to GN and the main input size. The tables and plots
show what these give."""
import statistics

from frn_det.config.protocol import PAPER_METHODS
from frn_det.study.best_lr import best_lr
from frn_det.study.summary.runs import REFERENCE_IMGS, SMALL_IMGS, sizes_of, study_budget

LOOKS = {"shapes": "photo-like shapes (shapes_train / shapes_val)", "real": "real-photo look (shapes_real_train / shapes_real_val)"}


def look_name(look):
    """A look's name in table titles, without its datasets."""
    return LOOKS[look].split(" (")[0]
# option folder suffix -> (what it is, its config key)
OPTIONS = {
    "learnable_eps": ("learnable eps, eps = 1e-6 + abs(eps_l) (the paper's, section 3.3)", "MODEL.FRN.LEARNABLE_EPS True"),
    "center": ("input centering: each image's per-channel mean removed", "MODEL.CENTER_PIXELS_PER_IMAGE True"),
    "zero_init": ("last norm's gamma of each residual branch at 0", "MODEL.RESNETS.ZERO_INIT_RESIDUAL True"),
    "norm_per_level": ("head norms per FPN level", "MODEL.RETINANET.NORM_PER_LEVEL True"),
    "wd_norm": ("weight decay 4e-4 on the norm parameters", "SOLVER.WEIGHT_DECAY_NORM 0.0004"),
}
METHODS = PAPER_METHODS  # Table 6's: every look's table has their rows
METHOD_LABELS = {"frn": "FRN (paper)", "gn": "GN", "bn": "BN"}  # their rows' names
ABLATIONS = {"gn_tlu": "GN + TLU", "gfrn": "GFRN + TLU", "frn_relu": "FRN + ReLU"}  # Table 3's: rows where run
TABLE_METHODS = (*METHODS, *ABLATIONS)  # runs of other methods are read, and shown by no table
FRN_FLAT = 1.5  # "FRN holds": FRN at 2 images within 1.5 AP of FRN at 8 (the paper's: -0.5)
# Table 6's claims, as differences of two cells (method, images per GPU): (claim, a, b, side, bound, the
# paper's a - b, from its AP at 8 / 2 images per GPU). The claim is a - b > bound (side +1) or < bound (-1).
BIG, SMALL = REFERENCE_IMGS, SMALL_IMGS
CLAIMS = (
    (f"FRN above GN at {BIG} images", ("frn", BIG), ("gn", BIG), +1, 0.0, 39.6 - 39.3),
    (f"FRN above GN at {SMALL} images", ("frn", SMALL), ("gn", SMALL), +1, 0.0, 39.1 - 38.7),
    (f"FRN holds at {SMALL} images (within {FRN_FLAT:g} AP of {BIG})", ("frn", SMALL), ("frn", BIG), +1, -FRN_FLAT,
     39.1 - 39.6),
    (f"BN falls at {SMALL} images", ("bn", SMALL), ("bn", BIG), -1, 0.0, 30.2 - 38.7),
    (f"FRN above BN at {SMALL} images", ("frn", SMALL), ("bn", SMALL), +1, 0.0, 39.1 - 30.2),
)


def of_methods(runs, methods=TABLE_METHODS):
    """The runs of some methods (by default those the tables show)."""
    return [r for r in runs if r["method"] in methods]


def select(runs, variant, method, imgs, lr=None, seeds=None):
    """The runs of one cell, at one lr and among some seeds where given."""
    return [r for r in runs if r["variant"] == variant and r["method"] == method and r["imgs"] == imgs
            and (lr is None or r["lr"] == lr) and (seeds is None or r["seed"] in seeds)]


def best_cell(runs, variant, method, imgs, lr=None, metric="AP"):
    """(reference lr, metric values over seeds) of one cell, or (None, None) when not run. Without lr:
    at the learning rate with the best mean AP over the seeds every lr ran (frn_det.study.best_lr); its
    values are then every seed's."""
    by_lr = {}
    for r in select(runs, variant, method, imgs, lr):
        by_lr.setdefault(r["lr"], []).append(r)
    lr = best_lr({lr: {r["seed"]: r["AP"] for r in at} for lr, at in by_lr.items()})
    return (None, None) if lr is None else (lr, [r[metric] for r in by_lr[lr]])


def cell(runs, variant, method, imgs, lr=None, metric="AP"):
    """Metric values over seeds of one cell at its best (or the given) lr; None when not run."""
    return best_cell(runs, variant, method, imgs, lr, metric)[1]


def column_cell(runs, variant, method, imgs, metric="AP"):
    """(reference lr, metric values) of a table cell by the study's rule: the 8-image column takes its
    best lr, every other column that same reference lr (scaled x m/8), not a best of its own; a column
    without a run at that lr gets (lr, None). Without an 8-image run, the column's own best."""
    lr8 = best_cell(runs, variant, method, REFERENCE_IMGS)[0]
    if imgs == REFERENCE_IMGS or lr8 is None:
        return best_cell(runs, variant, method, imgs, metric=metric)
    return lr8, cell(runs, variant, method, imgs, lr8, metric)


def seeds_of(runs, variant, method, imgs, lr):
    return sorted(r["seed"] for r in select(runs, variant, method, imgs, lr))


def mean(values):
    return None if values is None else statistics.mean(values)


def difference(a, b):
    """(mean(a) - mean(b), the half-width of its 95% interval, None with one seed on either side). Welch's
    t interval: t(0.975, df) sqrt(sd_a^2/n_a + sd_b^2/n_b), df by Welch-Satterthwaite; with a few seeds
    t is 3 to 12, where two standard errors would understate the spread."""
    from scipy.stats import t

    d = statistics.mean(a) - statistics.mean(b)
    if min(len(a), len(b)) < 2:
        return d, None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return d, 0.0
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return d, float(t.ppf(0.975, df)) * (va + vb) ** 0.5


def judge(d, spread, side, bound):
    """A claim a - b > bound (side +1) or < bound (side -1) on the interval d +- spread: supported when the
    whole interval lies on the claimed side, contradicted when it lies on the other, else within the spread."""
    if spread is None:
        return "one seed: no spread"
    low, high = sorted((side * (d - spread - bound), side * (d + spread - bound)))
    return "supported" if low > 0 else "contradicted" if high < 0 else "within the spread"


def claims(runs, look, options=True):
    """Table 6's claims (CLAIMS) on one look's table cells (column_cell): the paper's FRN's, then with
    options those of each FRN option run at REFERENCE_IMGS (its lr chosen there, as every cell's; a claim
    on FRN made with the option's FRN cells, where they were run). [(claim, paper's a - b, values of a,
    values of b, d, spread (difference), verdict)]; a claim of the paper's FRN not run gets None values and "not run"."""
    frn_rows = [(label.replace(" (paper)", ""), variant) for label, variant, method in look_rows(runs, look)
                if method == "frn" and (variant == look or options and best_cell(runs, variant, "frn", REFERENCE_IMGS)[1])]
    out = []
    for label, variant in frn_rows:
        for claim, (ma, ia), (mb, ib), side, bound, paper in CLAIMS:
            if variant != look and "frn" not in (ma, mb):
                continue
            if variant != look:
                claim = claim.replace("FRN", label, 1)
            a = column_cell(runs, variant if ma == "frn" else look, ma, ia)[1]
            b = column_cell(runs, variant if mb == "frn" else look, mb, ib)[1]
            if a is None or b is None:
                if variant == look:
                    out.append((claim, paper, a, b, None, None, "not run"))
                continue
            d, spread = difference(a, b)
            out.append((claim, paper, a, b, d, spread, judge(d, spread, side, bound)))
    return out


def look_rows(runs, look):
    """(label, variant, method) rows of Table 6's shape for one look: the paper's method, the
    baselines, FRN and GN with each option that has runs, and Table 3's ablations that have runs."""
    rows = []
    for method in ("frn", "gn"):
        rows.append((METHOD_LABELS[method], look, method))
        rows += [(f"{method.upper()} + {suffix} (option)", f"{look}_{suffix}", method) for suffix in OPTIONS
                 if any(r["variant"] == f"{look}_{suffix}" and r["method"] == method for r in runs)]
    rows.append((METHOD_LABELS["bn"], look, "bn"))
    rows += [(f"{label} (Table 3)", look, method) for method, label in ABLATIONS.items()
             if any(r["variant"] == look and r["method"] == method for r in runs)]
    return rows


def looks_of(runs):
    """The looks that have runs of their own (not only of an option)."""
    return [look for look in LOOKS if any(r["variant"] == look for r in runs)]


def main_size(runs):
    """The largest input size at which every look that has runs has its whole table (FRN, GN and BN at
    every images-per-GPU column): the study's main table. The smallest size when none is complete."""
    cols = {r["imgs"] for r in runs}
    for size in sizes_of(runs):
        at = [r for r in runs if r["size"] == size]
        if all(column_cell(at, look, method, m)[1] for look in looks_of(runs) for method in METHODS for m in cols):
            return size
    return min(r["size"] for r in runs)


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


def schedule_lines(runs):
    """FRN's gap to GN against images seen, REFERENCE_IMGS images per batch: [(look, label, size, FRN lr, GN lr,
    [(images seen, FRN AP, GN AP)])], one line per FRN row, input size and lr pair. The pair is each
    method's best lr at the study's schedule at that size (the tables' cells); equal lrs run at two or
    more schedules are a line of their own."""
    at8 = [r for r in runs if r["imgs"] == REFERENCE_IMGS]
    out = []
    for look in LOOKS:
        for label, variant, method in look_rows(at8, look):
            if method != "frn":
                continue
            for size in sorted({r["size"] for r in at8 if r["variant"] == variant}):
                here = [r for r in at8 if r["size"] == size]
                budget = study_budget(here)
                best = (best_cell(budget, variant, "frn", REFERENCE_IMGS)[0], best_cell(budget, look, "gn", REFERENCE_IMGS)[0])
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
