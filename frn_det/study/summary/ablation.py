"""Table 3 of the paper in detection: FRN's parts (TLU, mean subtraction, grouped statistics) measured
one at a time at 8 images, and the attribution of FRN's gap to GN to them. Each row is its method's
cell at its own best lr of those run (cells.best_cell), as Table 6 takes the best of its lrs."""
from frn_det.study.summary.cells import ABLATIONS, best_cell, cell, mean, select, seeds_of
from frn_det.study.summary.runs import REFERENCE_IMGS

# (row, method, the paper's ImageNet P@1 for ResnetV2-50 in Table 3)
TABLE3_ROWS = (
    ("GN + ReLU", "gn", 75.67),
    ("GN + TLU", "gn_tlu", 76.59),
    ("GFRN + TLU", "gfrn", 76.44),
    ("FRN + ReLU", "frn_relu", 75.24),
    ("FRN + TLU (paper)", "frn", 77.21),
)
PAPER_P1 = {method: p1 for _, method, p1 in TABLE3_ROWS}
# FRN - GN as three steps that add up to it, each (what it measures, method with it, method without)
GAP_STEPS = (
    ("TLU in place of ReLU, on GN", "gn_tlu", "gn"),
    ("no mean subtraction (GFRN + TLU - GN + TLU)", "gfrn", "gn_tlu"),
    ("per-channel instead of grouped statistics (FRN + TLU - GFRN + TLU)", "frn", "gfrn"),
)
TLU_ON_FRN = ("TLU in place of ReLU, on FRN (FRN + TLU - FRN + ReLU)", "frn", "frn_relu")
CENTER = "center"  # the input-centering option's folder suffix (cells.OPTIONS)


def row(runs, variant, method, lr=None, seeds=None):
    """A method's 8-image cell at lr or at its best lr, among some seeds where given: {lr, lrs (those
    run), AP, AP50, AP75 (means over seeds), runs (the run folders behind it, <variant>/<name>)}, None
    values where not run."""
    runs = [r for r in runs if seeds is None or r["seed"] in seeds]
    best, aps = best_cell(runs, variant, method, REFERENCE_IMGS, lr)
    out = dict(lr=best, lrs=sorted({r["lr"] for r in select(runs, variant, method, REFERENCE_IMGS)}),
               AP=mean(aps), runs=[])
    for metric in ("AP50", "AP75"):
        out[metric] = None if best is None else mean(cell(runs, variant, method, REFERENCE_IMGS, best, metric))
    if best is not None:
        out["runs"] = [f"{variant}/{r['name']}" for r in select(runs, variant, method, REFERENCE_IMGS, best)]
    return out


def has_ablations(runs, look):
    """Whether any of Table 3's methods other than FRN and GN ran at 8 images on the look."""
    return any(select(runs, look, method, REFERENCE_IMGS) for method in ABLATIONS)


def table3(runs, look):
    """[(row label, method, row)] in Table 3's order."""
    return [(label, method, row(runs, look, method)) for label, method, _ in TABLE3_ROWS]


def step(what, a, b, runs_a=(), runs_b=()):
    """(what, a - b or None, the runs behind both)."""
    return what, (None if a is None or b is None else a - b), [*runs_a, *runs_b]


def attribution(runs, look):
    """FRN - GN at 8 images, each at its best lr, then the steps it splits into (GAP_STEPS, which add up
    to it when all are run), TLU's worth on FRN, and input centering (an option: FRN with it against FRN
    at the same lr and seeds, and against GN): [(what, AP difference or None, [runs])]."""
    rows = {method: row(runs, look, method) for _, method, _ in TABLE3_ROWS}

    def between(what, a, b):
        return step(what, rows[a]["AP"], rows[b]["AP"], rows[a]["runs"], rows[b]["runs"])

    out = [between("FRN - GN, each at its best lr", "frn", "gn")]
    out += [between(what, a, b) for what, a, b in GAP_STEPS]
    out.append(between(*TLU_ON_FRN))
    centered = row(runs, f"{look}_{CENTER}", "frn")
    if centered["lr"] is not None:
        plain = row(runs, look, "frn", centered["lr"], seeds_of(runs, f"{look}_{CENTER}", "frn", REFERENCE_IMGS, centered["lr"]))
        out.append(step(f"input centering on FRN (option), both at lr {centered['lr']:g}", centered["AP"], plain["AP"],
                        centered["runs"], plain["runs"]))
        out.append(step("FRN + input centering - GN, each at its best lr", centered["AP"], rows["gn"]["AP"],
                        centered["runs"], rows["gn"]["runs"]))
    return out
