"""The batch-size study's own outputs: table.md in Table 6's layout and the AP plots (plot.png,
curve.png, sizes.png), from the cells that frn_det.study.batch summarizes."""
import math
import statistics

from frn_det.study.report_format import METRICS, mean_sd, spread
from frn_det.study.report_plots import AP_LABEL, GAP_LABEL, IMGS_LABEL, SIDE_LABEL, Series, draw


def lrs_text(base_lrs):
    """The reference lrs a study swept, as text ("0.02, 0.1"; "FRN 0.2; GN 0.1" where each method has its
    own); "" when it ran the config's only."""
    if isinstance(base_lrs, dict):
        return "; ".join(f"{m.upper()} {', '.join(f'{lr:g}' for lr in lrs)}" for m, lrs in base_lrs.items()
                         if lrs != [None])
    return "" if base_lrs[0] is None else ", ".join(f"{lr:g}" for lr in base_lrs)


def markdown_table(cells, methods, imgs, base_lrs=(None,)):
    """Table 6's layout: a row per method, AP / AP50 / AP75 for each images-per-GPU column, and with
    --base-lrs, a row of the best learning rate per column."""
    cols = sorted(imgs, reverse=True)
    head = "| method | " + " | ".join(f"{k} @{m}" for k in METRICS for m in cols) + " |"
    rule = "|---|" + "---|" * (len(METRICS) * len(cols))
    rows = []
    for method in methods:
        rows.append(f"| {method.upper()} | " + " | ".join(
            spread(cells.get((method, m), {}).get(k, [])) for k in METRICS for m in cols) + " |")
        if lrs_text(base_lrs):
            lrs = [cells[(method, m)]["base_lr"] if (method, m) in cells else None for m in cols]
            rows.append(f"| {method.upper()} best lr | " + " | ".join(
                "-" if lr is None else f"{lr:g}" for _ in METRICS for lr in lrs) + " |")
    note = "Images per GPU (per process) after @; mean ± std over seeds where a cell has several."
    if lrs_text(base_lrs):
        note += (f" Each cell: the best of reference lrs {lrs_text(base_lrs)} (at the"
                 " config's batch; scaled by m/batch), chosen by mean AP.")
    return "\n".join([head, rule, *rows, "", note]) + "\n"


def _ap(cell):
    """A cell's mean AP over seeds."""
    return statistics.mean(cell["AP"])


def plot(cells, methods, imgs, path, title):
    """AP against images per GPU, a line per method with its spread over seeds; returns the figure."""
    series = []
    for method in methods:
        xs = [m for m in sorted(imgs) if cells.get((method, m))]
        if xs:
            means, sds = zip(*(mean_sd(cells[(method, m)]["AP"]) for m in xs))
            series.append(Series(method.upper(), xs, means, sds))
    return draw(path, [(title, series)], sorted(imgs), IMGS_LABEL, AP_LABEL)


def plot_curve(by_schedule, methods, imgs, batch, path, title):
    """AP against images seen (schedule x reference batch), a line per method and images per GPU."""
    series = []
    for method in methods:
        for m in sorted(imgs, reverse=True):
            pts = [(steps * batch, _ap(cells[(method, m)]))
                   for steps, cells in sorted(by_schedule.items()) if (method, m) in cells]
            if pts:
                series.append(Series(f"{method.upper()} {m} img", *zip(*pts)))
    xs = sorted(steps * batch for steps in by_schedule)
    return draw(path, [(title, series)], xs, "images seen", AP_LABEL, [f"{x:,}" for x in xs])


def plot_sizes(by_size, methods, imgs, path, title):
    """Each method's AP minus GN's (same images per GPU) against the input side; returns the figure."""
    series = []
    for method in methods:
        if method == "gn":
            continue
        for m in sorted(imgs, reverse=True):
            pts = [(size, _ap(cells[(method, m)]) - _ap(cells[("gn", m)]))
                   for size, cells in sorted(by_size.items()) if (method, m) in cells and ("gn", m) in cells]
            pts = [(x, y) for x, y in pts if math.isfinite(y)]  # a model with no detections has AP nan
            if pts:
                series.append(Series(f"{method.upper()} - GN, {m} img", *zip(*pts)))
    return draw(path, [(title, series)], sorted(by_size), SIDE_LABEL, GAP_LABEL, zero_line=True)
