"""The FRN health monitor's statistics (frn_det.engine.record_norm_stats) of trained models, on images
of their test dataset: how uncentred each group's norm inputs are, how much of their batch variance
lies between the images, how often TLU passes its input,
tau, the output RMS and, for a learnable eps, eps itself, per ResNet stage, FPN and head, side by side for several runs.

  python tools/norm_health.py --run FRN=output/batch_study/frn_8img_seed0 --run GN=output/batch_study/gn_8img_seed0 \
      --output benchmarks/norm_health

Each run folder holds the config.yaml and model_final.pth that tools/train_net.py wrote. Writes
stats.json, table.md and stats.png to --output.

  python tools/norm_health.py --training --run FRN=benchmarks/study/shapes/frn_2img_seed0 ... --output DIR

plots instead what the monitor (FRN_MONITOR.ENABLED) recorded while the runs trained, against images
seen: training_<stat>.png, one panel per group, from each run's metrics.json and config.yaml.
"""
import argparse
import json
import math
import os
import sys

import torch

from frn_det.study.report_plots import panels, save
from frn_det.utils import write_json

STATS = ("uncentred", "between_images", "tlu_active", "tau_mean", "tau_std", "out_rms", "eps_mean")
GROUP_ORDER = ("stem", "res2", "res3", "res4", "res5", "fpn", "head")


def run_stats(run_dir, num_images, dataset=None):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import DatasetCatalog, DatasetMapper

    from frn_det.config import build_cfg
    from frn_det.engine import prepare_datasets, record_norm_stats
    from frn_det.modeling import build_model

    cfg = build_cfg(os.path.join(run_dir, "config.yaml"), ["MODEL.DEVICE", "cpu"])
    dataset = dataset or cfg.DATASETS.TEST[0]
    prepare_datasets([dataset])
    mapper = DatasetMapper(cfg, is_train=False)
    images = [mapper(d) for d in DatasetCatalog.get(dataset)[:num_images]]
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(os.path.join(run_dir, "model_final.pth"))
    with record_norm_stats(model) as stats, torch.no_grad():
        model(images)
    return stats


def _fmt(value):
    """3 decimals, or 3 significant digits for small values such as a learned eps (1e-4)."""
    return f"{value:.3f}" if value == 0 or abs(value) >= 0.01 else f"{value:.3g}"


def markdown(all_stats):
    lines = []
    for stat in STATS:
        groups = [g for g in GROUP_ORDER if any(stat in s.get(g, {}) for s in all_stats.values())]
        if not groups:
            continue
        lines += [f"**{stat}**", "", "| run | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
        for label, s in all_stats.items():
            lines.append(f"| {label} | " + " | ".join(
                _fmt(s[g][stat]) if stat in s.get(g, {}) else "-" for g in groups) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(all_stats, path, title):
    shown = ("uncentred", "between_images", "tlu_active", "out_rms")
    fig, (axes,) = panels(len(shown), 4.2, 3.6)
    groups = [g for g in GROUP_ORDER if any(g in s for s in all_stats.values())]
    width = 0.8 / max(1, len(all_stats))
    for ax, stat in zip(axes, shown):
        for i, (label, s) in enumerate(all_stats.items()):
            xs = [j + i * width for j, g in enumerate(groups) if stat in s.get(g, {})]
            ys = [s[g][stat] for g in groups if stat in s.get(g, {})]
            ax.bar(xs, ys, width, label=label)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(groups))], groups, rotation=30)
        ax.set_title(stat)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    rows = -(-len(labels) // 4)
    if labels:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07 * rows, 1, 1))
    save(fig, path)


def training_records(run_dir, stat):
    """{group: [(images seen, value)]} of one monitor statistic from a run's metrics.json, in order of
    iteration; a resumed run appends the iterations after its checkpoint again, and the last record of
    an iteration wins."""
    import yaml

    batch = yaml.safe_load(open(os.path.join(run_dir, "config.yaml")))["SOLVER"]["IMS_PER_BATCH"]
    prefix, curves = "frn_monitor/", {}
    with open(os.path.join(run_dir, "metrics.json")) as f:
        for line in f:
            row = json.loads(line)
            for key, value in row.items():
                if key.startswith(prefix) and key.endswith("/" + stat):
                    value = math.nan if value is None else value  # NaN is written as null
                    curves.setdefault(key[len(prefix):-len(stat) - 1], {})[row["iteration"]] = value
    return {group: [((it + 1) * batch, v) for it, v in sorted(points.items())] for group, points in curves.items()}


def _rolling_mean(points, k):
    """The mean of each point's last k values (one record is one batch: noisy at 2 images)."""
    xs, ys = zip(*points)
    windows = (ys[max(0, i - k + 1): i + 1] for i in range(len(ys)))
    return xs, [sum(w) / len(w) for w in windows]


def plot_training(runs, stat, path, title, smooth=1):
    curves = {label: training_records(folder, stat) for label, folder in runs.items()}
    groups = [g for g in GROUP_ORDER if any(g in c for c in curves.values())]
    if not groups:
        return None  # e.g. tlu_active of GN and BN runs
    fig, axes = panels(len(groups), 2.6, 3.0, sharey=True)
    for ax, group in zip(axes[0], groups):
        for label, c in curves.items():
            if group in c:
                ax.plot(*_rolling_mean(c[group], smooth), label=label, lw=1)
        ax.set_title(group)
        ax.set_xlabel("images seen")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(stat)
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, path)
    return curves


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True, metavar="LABEL=DIR",
                    help="a trained run: its label and its OUTPUT_DIR (config.yaml, model_final.pth)")
    ap.add_argument("--images", type=int, default=16, help="test images to run (default: %(default)s)")
    ap.add_argument("--dataset", default=None, help="default: each run's first DATASETS.TEST")
    ap.add_argument("--output", default=os.path.join("output", "norm_health"))
    ap.add_argument("--training", action="store_true",
                    help="plot the monitor's records of training (metrics.json) instead of running the models")
    ap.add_argument("--smooth", type=int, default=10, help="with --training: mean of the last N records")
    ap.add_argument("--stats", nargs="+", default=["uncentred", "tlu_active"], choices=STATS,
                    help="with --training: the statistics to plot, one figure each")
    args = ap.parse_args(argv)
    needed = "metrics.json" if args.training else "model_final.pth"
    runs = {}
    for item in args.run:
        label, sep, folder = item.partition("=")
        if not sep or not all(os.path.exists(os.path.join(folder, f)) for f in (needed, "config.yaml")):
            raise SystemExit(f"--run takes LABEL=DIR with DIR/{needed} and DIR/config.yaml; got {item!r}")
        runs[label] = folder
    os.makedirs(args.output, exist_ok=True)
    if args.training:
        curves = {stat: plot_training(runs, stat, os.path.join(args.output, f"training_{stat}.png"),
                                      f"{stat} while training (FRN health monitor, mean of {args.smooth} records)",
                                      args.smooth) for stat in args.stats}
        if not any(curves.values()):
            raise SystemExit(f"no frn_monitor/<group>/{{{','.join(args.stats)}}} in the runs' metrics.json: were "
                             "they trained with FRN_MONITOR.ENABLED True?")
        write_json(os.path.join(args.output, "training.json"),
                   {"command": ["python", "tools/norm_health.py", *(argv if argv is not None else sys.argv[1:])],
                    "curves": curves})
        return curves
    all_stats = {label: run_stats(folder, args.images, args.dataset) for label, folder in runs.items()}
    write_json(os.path.join(args.output, "stats.json"),
               {"command": ["python", "tools/norm_health.py", *(argv if argv is not None else sys.argv[1:])],
                "images": args.images, "stats": all_stats}, indent=2)
    table = markdown(all_stats)
    with open(os.path.join(args.output, "table.md"), "w") as f:
        f.write(table)
    plot(all_stats, os.path.join(args.output, "stats.png"), f"norm statistics on {args.images} test images")
    print(table)
    return all_stats
