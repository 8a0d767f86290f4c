"""The batch-size study's own outputs: table.md in Table 6's layout and the AP plots (plot.png,
curve.png, sizes.png), from the cells that frn_det.study.batch summarizes."""
import math
import statistics

from frn_det.study.report_format import METRICS, spread


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
        if base_lrs[0] is not None:
            lrs = [cells[(method, m)]["base_lr"] if (method, m) in cells else None for m in cols]
            rows.append(f"| {method.upper()} best lr | " + " | ".join(
                "-" if lr is None else f"{lr:g}" for _ in METRICS for lr in lrs) + " |")
    note = "Images per GPU (per process) after @; mean ± std over seeds where a cell has several."
    if base_lrs[0] is not None:
        note += (f" Each cell: the best of reference lrs {', '.join(f'{lr:g}' for lr in base_lrs)} (at the"
                 " config's batch; scaled by m/batch), chosen by mean AP.")
    return "\n".join([head, rule, *rows, "", note]) + "\n"


def plot(cells, methods, imgs, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method in methods:
        xs = [m for m in sorted(imgs) if cells.get((method, m))]
        if not xs:
            continue
        means = [statistics.mean(cells[(method, m)]["AP"]) for m in xs]
        errs = [statistics.stdev(cells[(method, m)]["AP"]) if len(cells[(method, m)]["AP"]) > 1 else 0 for m in xs]
        ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=method.upper())
    _finish(fig, ax, sorted(imgs), [str(m) for m in sorted(imgs)], "images per GPU", title, path)


def _finish(fig, ax, ticks, labels, xlabel, title, path, ylabel="AP (COCO, val)"):
    import matplotlib.pyplot as plt

    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_curve(by_schedule, methods, imgs, batch, path, title):
    """AP against images seen (schedule x reference batch), a line per method and images per GPU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method in methods:
        for m in sorted(imgs, reverse=True):
            pts = [(steps * batch, statistics.mean(cells[(method, m)]["AP"]))
                   for steps, cells in sorted(by_schedule.items()) if (method, m) in cells]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"{method.upper()} {m} img")
    xs = sorted(steps * batch for steps in by_schedule)
    _finish(fig, ax, xs, [f"{x:,}" for x in xs], "images seen", title, path)


def plot_sizes(by_size, methods, imgs, path, title):
    """Each method's AP minus GN's (same images per GPU) against the input side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for method in methods:
        if method == "gn":
            continue
        for m in sorted(imgs, reverse=True):
            pts = [(size, statistics.mean(cells[(method, m)]["AP"]) - statistics.mean(cells[("gn", m)]["AP"]))
                   for size, cells in sorted(by_size.items()) if (method, m) in cells and ("gn", m) in cells]
            pts = [(x, y) for x, y in pts if math.isfinite(y)]  # a model with no detections has AP nan
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"{method.upper()} - GN, {m} img")
    ax.axhline(0, color="grey", lw=0.8)
    _finish(fig, ax, sorted(by_size), [str(s) for s in sorted(by_size)], "input side (px)", title, path,
            ylabel="AP minus GN's AP (same images per GPU)")
