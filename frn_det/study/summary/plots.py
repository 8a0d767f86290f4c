"""The summary's plots of Table 6's rows: AP against images per GPU at the main size (summary.png), the
gap to GN against the input side (sizes.png) and against images seen (schedule.png)."""
import statistics

from frn_det.study.summary.cells import (LOOKS, column_cell, gap_rows, gaps, look_rows, looks_of, main_size, of_methods,
                                         schedule_lines)
from frn_det.utils import write_atomic

SHORT = {"shapes": "photo-like", "real": "real-photo"}


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
    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=110), fsync=False)
    plt.close(fig)


def plot(runs, path):
    """AP against images per GPU, a panel per look, at the main size."""
    runs = of_methods(runs)
    size = main_size(runs)
    runs = [r for r in runs if r["size"] == size]
    looks = looks_of(runs)
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
    runs = of_methods(runs)
    sizes = sorted({r["size"] for r in runs})
    looks = looks_of(runs)
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


def plot_schedule(runs, path):
    """FRN - GN against images seen, a line per schedule line with two or more points; None without."""
    lines = [line for line in schedule_lines(of_methods(runs)) if len(line[-1]) > 1]
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
