#!/usr/bin/env python
"""FRN layer cost against GroupNorm(32)+ReLU and BatchNorm+ReLU: forward+backward time and the bytes
autograd keeps for backward, at RetinaNet-1024 feature shapes with 2 images (frn_det.benchmark).

Methods run round-robin (one timing of each, then the next repeat) so that load from other processes
hits all of them alike; the table gives medians. Ratios are against GN+ReLU in the same run.

    .venv/bin/python tools/benchmark_frn.py                      # writes benchmarks/frn_layer.md
    .venv/bin/python tools/benchmark_frn.py --scale 4 --repeats 3 --out /tmp/quick.md
    .venv/bin/python tools/benchmark_frn.py --models             # + RetinaNet training iterations
    TRITON_INTERPRET=1 .venv/bin/python tools/benchmark_frn.py --launches --skip-layers --out benchmarks/frn_launches.md
    OMP_NUM_THREADS=1 .venv/bin/python tools/benchmark_frn.py --threads 1 --block-end --skip-layers \
        --repeats 15 --min-time 0.2 --out benchmarks/frn_block_end.md
    python tools/benchmark_frn.py --device cuda --shapes target --dtypes fp32,bf16-autocast --compile-sizes

On CUDA the paths are triton, compile, python and reference, times come from CUDA events, the table
adds the kernels each call launches (torch profiler) and the host's time per call, `bf16-autocast`
runs bf16 inputs under torch.autocast, and --models reports torch.cuda.max_memory_allocated (AMP: fp16).
"""
import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from frn_det.benchmark import layers, models
from frn_det.layers import dispatch


def _device_words(device):
    if device == "cpu":
        return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s), load "
                f"average {os.getloadavg()[0]:.1f} at the end")
    return f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1, help="divide H and W by this (quicker runs)")
    ap.add_argument("--backbone", action="store_true", help="also ResNet stage shapes res2-res5")
    ap.add_argument("--dtypes", default="fp32,bf16", help=f"comma-separated: {','.join(layers.DTYPES)}")
    ap.add_argument("--repeats", type=int, default=7, help="timings per method, median reported")
    ap.add_argument("--min-time", type=float, default=0.1, help="seconds per timing (several iterations)")
    ap.add_argument("--host-iters", type=int, default=5, help="calls per measurement of the host's time")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--out", default="benchmarks/frn_layer.md", help="markdown output ('' for none)")
    ap.add_argument("--models", action="store_true", help="also RetinaNet training iterations")
    ap.add_argument("--model-size", type=int, default=512, help="--models: image side (paper: 1024)")
    ap.add_argument("--model-depth", type=int, default=101, help="--models: ResNet depth (paper: 101)")
    ap.add_argument("--model-repeats", type=int, default=3, help="--models: timed iterations each")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                    help="CUDA: triton, compile, python and reference paths")
    ap.add_argument("--shapes", choices=["fpn", "target"], default="fpn",
                    help="P3-P7, or the targets' P3, P6 and the stem")
    ap.add_argument("--compile-sizes", action="store_true",
                    help="also torch.compile's first-call time and recompilations over 6 input sizes")
    ap.add_argument("--amp-modes", default=None,
                    help="--models with AMP off and/or on ('off,on'; CUDA: fp16) and the CUDA peak memory")
    ap.add_argument("--model-opts", nargs="*", default=None, help="--models: config KEY VALUE pairs on top")
    ap.add_argument("--launches", action="store_true",
                    help="also the launches of one forward+backward per method (aten ops, Triton kernels)")
    ap.add_argument("--block-end", action="store_true",
                    help="also a residual block's end, max(FRN(x) + shortcut, tau), fused and unfused: fwd+bwd times")
    ap.add_argument("--skip-layers", action="store_true", help="only the sections asked for besides the layers")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = ((layers.TARGET_SHAPES if args.shapes == "target" else layers.FPN_SHAPES)
              + (layers.BACKBONE_SHAPES if args.backbone else []))
    shapes = [(n, c, max(1, h // args.scale), max(1, w // args.scale)) for n, c, h, w in shapes]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if not set(dtypes) <= set(layers.DTYPES):
        ap.error(f"--dtypes {args.dtypes!r}: valid names are {', '.join(layers.DTYPES)}")
    if args.amp_modes and not {m.strip() for m in args.amp_modes.split(",") if m.strip()} <= {"off", "on"}:
        ap.error(f"--amp-modes {args.amp_modes!r}: give off, on or off,on")
    builds = layers.methods(args.device)
    results, input_bytes, sections = {}, {}, []
    total = 0 if args.skip_layers else len(shapes) * len(dtypes) * len(builds) * args.repeats
    with tqdm(total=total, desc="fwd+bwd") as bar:
        for dtype in dtypes if total else []:
            for shape in shapes:
                results[(shape, dtype)] = layers.bench_case(
                    shape, layers.DTYPES[dtype], builds, args.repeats, args.min_time, bar, args.device,
                    layers.AUTOCAST.get(dtype), args.host_iters)
                input_bytes[(shape, dtype)] = torch.Size(shape).numel() * layers.DTYPES[dtype].itemsize
    if total:
        sections.append(layers.table(results, input_bytes))
    summary = layers.target_summary(results, shapes if args.shapes == "target" else layers.TARGET_SHAPES)
    if summary:
        sections.append(summary)
    if args.launches:
        sections.append(layers.launch_table(layers.launch_counts(args.device)))
    if args.block_end:
        sections.append(layers.block_end_times(repeats=args.repeats, min_time=args.min_time, device=args.device))
    if args.compile_sizes:
        sizes = [(max(1, h // args.scale), max(1, w // args.scale)) for h, w in layers.COMPILE_SIZES]
        for dtype in dtypes:
            sections += layers.compile_sizes(args.device, dtype, sizes)
    header = (
        f"# FRN layer benchmark\n\n"
        f"`{' '.join(['tools/benchmark_frn.py'] + (argv if argv is not None else sys.argv[1:]))}` on "
        f"{datetime.date.today()}: {_device_words(args.device)}, torch "
        f"{torch.__version__}, default {'CPU' if args.device == 'cpu' else 'CUDA'} FRN path "
        f"`{dispatch.active_impl(args.device)}`."
        + ("" if args.skip_layers else
           f" Forward+backward (grads of input and parameters), median of {args.repeats} interleaved timings; "
           f"saved = bytes autograd keeps for backward (each storage once, parameters not counted); kernels "
           f"= GPU kernels launched per call (torch profiler), host = the host's time per call. ReLUs "
           f"are in place, as in detectron2.")
        + "\n\n"
    )
    if args.models:
        args.cpu_peaks = args.amp_modes is None  # the CPU's peaks cost a process each
        args.amp_modes = args.amp_modes or "off"
        n_steps = len(models.model_names(args.device)) * len(args.amp_modes.split(",")) * args.model_repeats
        with tqdm(total=n_steps, desc="RetinaNet") as bar:
            sections.append(models.benchmark_models(args, bar))
    md = "\n\n".join(sections)
    print("\n" + md)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(header + md + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
