"""The summary's plots of Table 6's rows: AP against images per GPU at the main size (summary.png), the
gap to GN against the input side (sizes.png) and against images seen (schedule.png); each returns the
figure (frn_det.study.report_plots.draw), or None where it has nothing to draw."""

from frn_det.study.report_format import mean_sd
from frn_det.study.report_plots import AP_LABEL, GAP_LABEL, IMGS_LABEL, SIDE_LABEL, Series, draw
from frn_det.study.summary.cells import (LOOKS, column_cell, gap_rows, gaps, look_rows, looks_of, main_size, of_methods,
                                         schedule_lines)

SHORT = {"shapes": "photo-like", "real": "real-photo"}


def _dashed(label):
    return "option" in label


def plot(runs, path):
    """AP against images per GPU, a panel per look, at the main size."""
    runs = of_methods(runs)
    size = main_size(runs)
    runs = [r for r in runs if r["size"] == size]
    cols = sorted({r["imgs"] for r in runs})
    figure = []
    for look in looks_of(runs):
        series = []
        for label, variant, method in look_rows(runs, look):
            pts = [(m, column_cell(runs, variant, method, m)[1]) for m in cols]
            pts = [(m, *mean_sd(a)) for m, a in pts if a]
            if pts:
                xs, ys, es = zip(*pts)
                series.append(Series(label, xs, ys, es, _dashed(label)))
        figure.append((f"{LOOKS[look]}, {size} px", series))
    return draw(path, figure, cols, IMGS_LABEL, AP_LABEL)


def plot_sizes(runs, path):
    """Each FRN and BN row's AP minus GN's against the input side, a panel per look; None with one size."""
    runs = of_methods(runs)
    sizes = sorted({r["size"] for r in runs})
    looks = looks_of(runs)
    if len(sizes) < 2 or not looks:
        return None
    figure = []
    for look in looks:
        series = []
        for row_look, label, variant, method, m in gap_rows(runs):
            if row_look != look:
                continue
            pts = [(s, *gaps(runs, look, variant, method, m, s)) for s in sizes]
            pts = [(s, ap - gn) for s, ap, gn in pts if ap is not None and gn is not None]
            if len(pts) > 1 or (pts and pts[0][0] != sizes[0]):
                series.append(Series(f"{label}, {m} img", *zip(*pts), dashed=_dashed(label)))
        figure.append((LOOKS[look], series))
    return draw(path, figure, sizes, SIDE_LABEL, GAP_LABEL, zero_line=True)


def plot_schedule(runs, path):
    """FRN - GN against images seen, a line per schedule line with two or more points; None without."""
    lines = [line for line in schedule_lines(of_methods(runs)) if len(line[-1]) > 1]
    if not lines:
        return None
    series = [Series(f"{size} px, {SHORT[look]}: {label} (lr {lf:g}) - GN (lr {lg:g})",
                     [n for n, _, _ in points], [f - g for _, f, g in points], dashed=_dashed(label))
              for look, label, size, lf, lg, points in lines]
    seen = sorted({n for *_, points in lines for n, _, _ in points})
    return draw(path, [("FRN's gap to GN against the schedule, by input size", series)], seen,
                "images seen (8 images per batch)", "AP minus GN's AP", [f"{n / 1000:g}k" for n in seen],
                zero_line=True)
