"""How every report of the study draws its figures: panels of lines against a log2 x axis (draw), and
the Agg figure and whole-file save that norm_health's own charts use too."""
from dataclasses import dataclass
from typing import Optional, Sequence

from frn_det.utils import write_atomic

AP_LABEL = "AP (COCO, val)"
GAP_LABEL = "AP minus GN's AP (same images per GPU)"
IMGS_LABEL = "images per GPU"
SIDE_LABEL = "input side (px)"


@dataclass
class Series:
    """One line of a panel: its legend label, its points and, optionally, an error bar per point."""
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    errs: Optional[Sequence[float]] = None
    dashed: bool = False


def panels(n, width, height, **kwargs):
    """(figure, axes) of n panels side by side on the Agg backend; axes is 1 x n."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, n, figsize=(width * n, height), squeeze=False, **kwargs)


def save(fig, path, dpi=110):
    """Writes fig as a PNG to path whole or not at all, and closes it."""
    import matplotlib.pyplot as plt

    write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=dpi), fsync=False)
    plt.close(fig)


def draw(path, figure, xticks, xlabel, ylabel, xtick_labels=None, zero_line=False):
    """figure: [(title, [Series])], a panel each, side by side and sharing the y axis; every panel has
    a log2 x axis with ticks at xticks (labelled xtick_labels, str by default), a legend and a grid, and
    with zero_line a grey line at y = 0. Writes path; returns the (closed) figure."""
    fig, axes = panels(len(figure), 5.2, 4, sharey=True)
    labels = xtick_labels or [str(x) for x in xticks]
    for ax, (title, series) in zip(axes[0], figure):
        for s in series:
            style = dict(marker="o", label=s.label, ls="--" if s.dashed else "-")
            if s.errs is None:
                ax.plot(s.xs, s.ys, **style)
            else:
                ax.errorbar(s.xs, s.ys, yerr=s.errs, capsize=3, **style)
        if zero_line:
            ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(xticks, labels)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(ylabel)
    fig.tight_layout()
    save(fig, path)
    return fig
