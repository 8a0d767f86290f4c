#!/usr/bin/env python
"""FRN layer cost against GroupNorm(32)+ReLU and BatchNorm+ReLU: forward+backward time and the bytes
autograd keeps for backward, at RetinaNet-1024 feature shapes with 2 images.

Methods run round-robin (one timing of each, then the next repeat) so that load from other processes
hits all of them alike; the table gives medians. Ratios are against GN+ReLU in the same run.

    .venv/bin/python tools/benchmark_frn.py                      # writes benchmarks/frn_layer.md
    .venv/bin/python tools/benchmark_frn.py --scale 4 --repeats 3 --out /tmp/quick.md
    .venv/bin/python tools/benchmark_frn.py --models             # + RetinaNet training iterations
    python tools/benchmark_frn.py --device cuda --shapes target --dtypes fp32,bf16-autocast --compile-sizes

On CUDA the paths are compile, python and reference, times come from CUDA events, `bf16-autocast` runs
bf16 inputs under torch.autocast, and --models reports torch.cuda.max_memory_allocated (AMP: fp16).
"""
import argparse
import contextlib
import datetime
import itertools
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from frn_det.layers import FRN, dispatch, path_cpp, path_torch  # noqa: E402

# RetinaNet FPN levels P3-P7 for a 1024x1024 input, 2 images. Issue 4's targets: P3 and P6, fp32.
TARGET_SHAPES = [(2, 256, 128, 128), (2, 256, 16, 16)]
FPN_SHAPES = [(2, 256, 128, 128), (2, 256, 64, 64), (2, 256, 32, 32), (2, 256, 16, 16), (2, 256, 8, 8)]
# ResNet-50 stage outputs res2-res5 at 1024 (--backbone): large, slow on a CPU.
BACKBONE_SHAPES = [(2, 256, 256, 256), (2, 512, 128, 128), (2, 1024, 64, 64), (2, 2048, 32, 32)]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "bf16-autocast": torch.bfloat16}
AUTOCAST = {"bf16-autocast": torch.bfloat16}  # dtype name -> autocast dtype (the fn runs inside it)
# Feature sizes of R-CNN-style variable images (shorter side 800, longer up to 1333) at stride 8.
COMPILE_SIZES = [(100, 134), (100, 150), (96, 167), (84, 167), (100, 100), (75, 167)]
BASELINE = "GN+ReLU"


def frn_method(path):
    def build(c):
        layer = FRN(c)
        fn = dispatch.PATHS[path]
        return layer, lambda x: fn(x, layer.weight, layer.bias, layer.tau, layer.eps, layer.eps_l)

    return build


def module_method(make):
    def build(c):
        layer = make(c)
        return layer, layer

    return build


def methods(device="cpu"):
    """name -> build(channels) -> (module holding the parameters, callable)."""
    if device == "cpu":
        paths = (["cpp"] if path_cpp.cpp_available() else []) + ["python", "reference"]
    else:
        paths = ["compile", "python", "reference"]  # no C++ kernel off the CPU
    out = {f"FRN+TLU {path}": frn_method(path) for path in paths}
    out[BASELINE] = module_method(lambda c: nn.Sequential(nn.GroupNorm(32, c), nn.ReLU(inplace=True)))
    out["BN+ReLU"] = module_method(lambda c: nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
    return out


def saved_bytes(fn, x, params):
    """Bytes of the tensors autograd saves for backward, each storage once, parameters not counted."""
    skip = {p.untyped_storage().data_ptr() for p in params}
    seen = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in skip:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)
    del out
    return sum(seen.values())


def fwd_bwd(fn, x, params, dz):
    out = fn(x)
    torch.autograd.grad(out, [x] + params, dz)


def time_once(step, iters, device="cpu"):
    if device != "cpu":  # CUDA events: the GPU's time, not the launch time
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / iters
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    return (time.perf_counter() - t0) / iters


def bench_case(shape, dtype, builds, repeats, min_time, bar, device="cpu", autocast=None):
    """Median fwd+bwd seconds and saved bytes per method at one shape and dtype."""
    x = torch.randn(shape, dtype=dtype, device=device).requires_grad_()
    dz = torch.randn(shape, dtype=dtype, device=device)
    steps, saved = {}, {}
    for name, build in builds.items():
        layer, fn = build(shape[1])
        layer.to(device)
        if autocast is not None:
            fn = _autocast(fn, device, autocast)
        params = [p for p in layer.parameters() if p.requires_grad]
        saved[name] = saved_bytes(fn, x, params)
        steps[name] = lambda fn=fn, params=params: fwd_bwd(fn, x, params, dz)
    iters = {}
    for name, step in steps.items():  # warm up; iterations so that one timing lasts >= min_time
        if device != "cpu":
            step()  # the first call compiles and autotunes: it says nothing about the iterations
        one = time_once(step, 1, device)
        iters[name] = max(1, int(min_time / max(one, 1e-6)))
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(time_once(step, iters[name], device))
            bar.update(1)
    return {name: (statistics.median(ts), saved[name]) for name, ts in times.items()}


def _autocast(fn, device, dtype):
    def run(x):
        with torch.autocast(torch.device(device).type, dtype=dtype):
            return fn(x)

    return run


def compile_sizes(device, dtype_name, sizes=COMPILE_SIZES, channels=256):
    """torch.compile of the FRN kernels from a fresh start, fed 2 x channels feature maps of each size in
    turn: seconds of the first fwd+bwd at each size, and the graphs dynamo compiled there. Returns a
    markdown table and a summary line (recompilations = later sizes that compiled anything)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    path_torch.compiled_kernels.cache_clear()
    layer, fn = frn_method("compile")(channels)
    params = [p for p in layer.to(device).parameters() if p.requires_grad]
    if dtype_name in AUTOCAST:
        fn = _autocast(fn, device, AUTOCAST[dtype_name])
    lines = ["| size | first fwd+bwd s | graphs compiled |", "| --- | ---: | ---: |"]
    recompiles = 0
    for i, (h, w) in enumerate(sizes):
        x = torch.randn(2, channels, h, w, dtype=DTYPES[dtype_name], device=device).requires_grad_()
        before = counters["stats"]["unique_graphs"]
        t0 = time.perf_counter()
        fwd_bwd(fn, x, params, torch.randn_like(x))
        if device != "cpu":
            torch.cuda.synchronize()
        graphs = counters["stats"]["unique_graphs"] - before
        recompiles += bool(i and graphs)
        lines.append(f"| 2x{channels}x{h}x{w} | {time.perf_counter() - t0:.3g} | {graphs} |")
    fallback = path_torch.compile_fell_back()
    summary = (f"- torch.compile over {len(sizes)} sizes, {dtype_name}: {recompiles} recompilation(s) after "
               f"the first size (target: at most 1: {'met' if recompiles <= 1 else 'NOT met'})"
               + ("; compiling FAILED, the eager kernels ran (see the log)" if fallback else ""))
    return "\n".join(lines), summary


def table(results, input_bytes):
    lines = [
        "| shape | dtype | method | fwd+bwd ms | time / GN+ReLU | saved / input bytes |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for (shape, dtype), res in results.items():
        base = res[BASELINE][0]
        for name, (t, saved) in res.items():
            lines.append(
                f"| {'x'.join(map(str, shape))} | {dtype} | {name} | {t * 1e3:.3g} | {t / base:.2f}x "
                f"| {saved / input_bytes[(shape, dtype)]:.2f}x |"
            )
    return "\n".join(lines)


def target_summary(results, shapes=TARGET_SHAPES):
    """Issue 4 (and 10 on CUDA, bf16 autocast too): fastest FRN path <= 1.00x GN+ReLU time at
    TARGET_SHAPES, saved <= 1.00x input."""
    lines = []
    for dtype, shape in itertools.product(("fp32", "bf16-autocast"), shapes):
        res = results.get((shape, dtype))
        if res is None:
            continue
        name = min((n for n in res if n.startswith("FRN") and "reference" not in n), key=lambda n: res[n][0])
        ratio = res[name][0] / res[BASELINE][0]
        saved = res[name][1] / (torch.Size(shape).numel() * DTYPES[dtype].itemsize)
        ok = "met" if ratio <= 1.0 and saved <= 1.0 else "NOT met"
        lines.append(f"- {'x'.join(map(str, shape))} {dtype}: {name} {ratio:.2f}x GN+ReLU time, "
                     f"{saved:.2f}x input bytes saved: target {ok}")
    return "\n".join(lines)


MODEL_CONFIGS = {  # name -> (config, FRN_DET_IMPL for its FRN layers)
    "RetinaNet FRN cpp": ("retinanet_frn_2img.yaml", "cpp"),
    "RetinaNet FRN compile": ("retinanet_frn_2img.yaml", "compile"),
    "RetinaNet FRN python": ("retinanet_frn_2img.yaml", "python"),
    "RetinaNet FRN reference": ("retinanet_frn_2img.yaml", "reference"),
    "RetinaNet GN": ("retinanet_gn_2img.yaml", None),
    "RetinaNet BN": ("retinanet_bn_2img.yaml", None),
}


def _model_parts(args, root):
    """(names, build(name) -> model, inputs, step(models, name)) for the RetinaNet benchmark."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.structures import Boxes, Instances

    import frn_det

    device = getattr(args, "device", "cpu")
    if device == "cpu":  # the cpp path where it is built; the eager formula shows what it saves
        names = [n for n, (_, impl) in MODEL_CONFIGS.items()
                 if impl not in ("compile", "python") and (impl != "cpp" or path_cpp.cpp_available())]
    else:
        names = [n for n, (_, impl) in MODEL_CONFIGS.items() if impl != "cpp"]
    size, g = args.model_size, torch.Generator().manual_seed(0)

    def build(name):
        cfg = frn_det.add_frn_config(get_cfg())
        cfg.merge_from_file(str(root / "configs" / MODEL_CONFIGS[name][0]))
        cfg.merge_from_list(["MODEL.DEVICE", device, "MODEL.RESNETS.DEPTH", args.model_depth,
                             "MODEL.FPN.SQUARE_PAD", size] + list(getattr(args, "model_opts", None) or []))
        torch.manual_seed(0)
        return build_model(cfg).train()

    def image():
        inst = Instances((size, size))
        xy = torch.rand(4, 2, generator=g) * size * 0.6
        inst.gt_boxes = Boxes(torch.cat([xy, xy + size * 0.3], dim=1))
        inst.gt_classes = torch.randint(0, 80, (4,), generator=g)
        return {"image": torch.randint(0, 256, (3, size, size), generator=g).float(), "instances": inst}

    inputs = [image(), image()]

    def step(model, name):
        with _impl_env(MODEL_CONFIGS[name][1]):
            sum(model(inputs).values()).backward()
        model.zero_grad(set_to_none=True)

    return names, build, inputs, step


def _peak_rss_mb():
    """This process's peak resident set (VmHWM), MB. Not getrusage's ru_maxrss: that one keeps the
    forking parent's peak across exec."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def _peak_child(args, name):
    """In a fresh process: build `name`, run 2 training iterations, print the peak resident memory
    before and after them (MB)."""
    from detectron2.utils.events import EventStorage

    _, build, _, step = _model_parts(args, Path(__file__).resolve().parents[1])
    model = build(name)
    before = _peak_rss_mb()
    with EventStorage():
        for _ in range(2):
            step(model, name)
    print(f"PEAK {before:.1f} {_peak_rss_mb():.1f}")


def peak_memory(args, name):
    """(peak RSS of a process that trains `name` 2 iterations, the part of it the iterations added), MB.
    A process each: peak RSS never goes down within one."""
    import subprocess

    cmd = [sys.executable, __file__, "--peak-of", name, "--model-size", str(args.model_size),
           "--model-depth", str(args.model_depth)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.model_opts:
        cmd += ["--model-opts", *args.model_opts]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    before, after = map(float, out.split("PEAK ")[-1].split())
    return after, after - before


def benchmark_models(args):
    """RetinaNet training iterations (forward, losses, backward) with 2 images, FRN against GN and BN,
    round-robin like the layer benchmark, and each one's peak memory in a process of its own. Returns a
    markdown table."""
    from detectron2.utils.events import EventStorage

    names, build, inputs, step = _model_parts(args, Path(__file__).resolve().parents[1])
    models, saved = {}, {}
    times = {n: [] for n in names}
    with EventStorage(), tqdm(total=len(names) * (args.model_repeats + 2), desc="RetinaNet") as bar:
        for name in names:
            models[name] = build(name)
            params = list(models[name].parameters())
            with _impl_env(MODEL_CONFIGS[name][1]):
                saved[name] = saved_bytes(lambda x: sum(models[name](x).values()), inputs, params)
        for rep in range(args.model_repeats + 1):  # the first round warms up
            for name in names:
                t0 = time.perf_counter()
                step(models[name], name)
                if rep:
                    times[name].append(time.perf_counter() - t0)
                bar.update(1)
        models.clear()
        peaks = {}
        for name in names:
            peaks[name] = peak_memory(args, name)
            bar.update(1)
    base = statistics.median(times["RetinaNet GN"])
    size = args.model_size
    lines = [
        f"RetinaNet training iteration, ResNet-{args.model_depth}-FPN, 2 images of {size}x{size}, "
        f"median of {args.model_repeats} interleaved iterations; peak memory: peak resident set of a "
        "process that builds the model and trains 2 iterations, and the part the iterations added:\n",
        "| model | iteration s | time / GN | saved activations MB | peak RSS MB | added by training MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        t = statistics.median(times[name])
        lines.append(f"| {name} | {t:.2f} | {t / base:.2f}x | {saved[name] / 2**20:.0f} | "
                     f"{peaks[name][0]:.0f} | {peaks[name][1]:.0f} |")
    return "\n".join(lines)


def benchmark_models_amp(args):
    """RetinaNet training iterations like benchmark_models, with AMP off and on (autocast fp16 on CUDA,
    as detectron2's AMPTrainer; bf16 on the CPU), timed with a synchronize, and on CUDA the peak of
    torch.cuda.max_memory_allocated during an iteration (all models' weights stay allocated; "added" is
    the part above what was allocated before the iteration). Returns a markdown table."""
    from detectron2.utils.events import EventStorage

    device = args.device
    cuda = device != "cpu"
    amp_dtype = torch.float16 if cuda else torch.bfloat16
    names, build, _, step = _model_parts(args, Path(__file__).resolve().parents[1])
    modes = [m.strip() for m in args.amp_modes.split(",") if m.strip()]
    times = {(m, n): [] for m in modes for n in names}
    peaks = {}
    with EventStorage(), tqdm(total=len(times) * (args.model_repeats + 1), desc="RetinaNet") as bar:
        models = {name: build(name) for name in names}
        for mode in modes:
            for rep in range(args.model_repeats + 1):  # the first round warms up (and compiles)
                for name in names:
                    if cuda:
                        torch.cuda.synchronize()
                        torch.cuda.reset_peak_memory_stats()
                        base = torch.cuda.memory_allocated()
                    t0 = time.perf_counter()
                    with torch.autocast(torch.device(device).type, dtype=amp_dtype, enabled=mode == "on"):
                        step(models[name], name)
                    if cuda:
                        torch.cuda.synchronize()
                        peak = torch.cuda.max_memory_allocated()
                        peaks[(mode, name)] = (peak / 2**20, (peak - base) / 2**20)
                    if rep:
                        times[(mode, name)].append(time.perf_counter() - t0)
                    bar.update(1)
    size = args.model_size
    lines = [
        f"RetinaNet training iteration on {device}, ResNet-{args.model_depth}-FPN, 2 images of {size}x{size}, "
        f"median of {args.model_repeats} interleaved iterations, AMP {amp_dtype}:\n",
        "| AMP | model | iteration s | time / GN | peak allocated MB | added by the iteration MB |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for mode in modes:
        base = statistics.median(times[(mode, "RetinaNet GN")])
        for name in names:
            t = statistics.median(times[(mode, name)])
            peak, added = (f"{v:.0f}" for v in peaks[(mode, name)]) if cuda else ("n/a", "n/a")
            lines.append(f"| {mode} | {name} | {t:.3f} | {t / base:.2f}x | {peak} | {added} |")
    return "\n".join(lines)


def _device_words(device):
    if device == "cpu":
        return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s), load "
                f"average {os.getloadavg()[0]:.1f} at the end")
    return f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"


def _impl_env(impl):
    """FRN path `impl` inside the block (None: unchanged)."""
    return dispatch.force_impl(impl) if impl else contextlib.nullcontext()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1, help="divide H and W by this (quicker runs)")
    ap.add_argument("--backbone", action="store_true", help="also ResNet stage shapes res2-res5")
    ap.add_argument("--dtypes", default="fp32,bf16", help=f"comma-separated: {','.join(DTYPES)}")
    ap.add_argument("--repeats", type=int, default=7, help="timings per method, median reported")
    ap.add_argument("--min-time", type=float, default=0.1, help="seconds per timing (several iterations)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--out", default="benchmarks/frn_layer.md", help="markdown output ('' for none)")
    ap.add_argument("--models", action="store_true", help="also RetinaNet training iterations")
    ap.add_argument("--model-size", type=int, default=512, help="--models: image side (paper: 1024)")
    ap.add_argument("--model-depth", type=int, default=101, help="--models: ResNet depth (paper: 101)")
    ap.add_argument("--model-repeats", type=int, default=3, help="--models: timed iterations each")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="CUDA: compile, python and reference paths")
    ap.add_argument("--shapes", choices=["fpn", "target"], default="fpn", help="P3-P7, or the targets' P3, P6")
    ap.add_argument("--compile-sizes", action="store_true",
                    help="also torch.compile's first-call time and recompilations over 6 input sizes")
    ap.add_argument("--amp-modes", default=None,
                    help="--models with AMP off and/or on ('off,on'; CUDA: fp16) and the CUDA peak memory")
    ap.add_argument("--model-opts", nargs="*", default=None, help="--models: config KEY VALUE pairs on top")
    ap.add_argument("--skip-layers", action="store_true", help="only the sections asked for besides the layers")
    ap.add_argument("--peak-of", default=None, help=argparse.SUPPRESS)  # child of peak_memory()
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.peak_of:
        return _peak_child(args, args.peak_of)
    shapes = (TARGET_SHAPES if args.shapes == "target" else FPN_SHAPES) + (BACKBONE_SHAPES if args.backbone else [])
    shapes = [(n, c, max(1, h // args.scale), max(1, w // args.scale)) for n, c, h, w in shapes]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if not set(dtypes) <= set(DTYPES):
        ap.error(f"--dtypes {args.dtypes!r}: valid names are {', '.join(DTYPES)}")
    if args.amp_modes and not {m.strip() for m in args.amp_modes.split(",") if m.strip()} <= {"off", "on"}:
        ap.error(f"--amp-modes {args.amp_modes!r}: give off, on or off,on")
    builds = methods(args.device)
    results, input_bytes, sections = {}, {}, []
    total = 0 if args.skip_layers else len(shapes) * len(dtypes) * len(builds) * args.repeats
    with tqdm(total=total, desc="fwd+bwd") as bar:
        for dtype in dtypes if total else []:
            for shape in shapes:
                res = bench_case(shape, DTYPES[dtype], builds, args.repeats, args.min_time, bar, args.device,
                                 AUTOCAST.get(dtype))
                results[(shape, dtype)] = res
                input_bytes[(shape, dtype)] = torch.Size(shape).numel() * DTYPES[dtype].itemsize
    if total:
        sections.append(table(results, input_bytes))
    summary = target_summary(results, shapes if args.shapes == "target" else TARGET_SHAPES)
    if summary:
        sections.append(summary)
    if args.compile_sizes:
        sizes = [(max(1, h // args.scale), max(1, w // args.scale)) for h, w in COMPILE_SIZES]
        for dtype in dtypes:
            sections += compile_sizes(args.device, dtype, sizes)
    header = (
        f"# FRN layer benchmark\n\n"
        f"`{' '.join(['tools/benchmark_frn.py'] + (argv if argv is not None else sys.argv[1:]))}` on "
        f"{datetime.date.today()}: {_device_words(args.device)}, torch "
        f"{torch.__version__}, default {'CPU' if args.device == 'cpu' else 'CUDA'} FRN path "
        f"`{dispatch.active_impl(args.device)}`."
        + ("" if args.skip_layers else
           f" Forward+backward (grads of input and parameters), median of {args.repeats} interleaved timings; "
           f"saved = bytes autograd keeps for backward (each storage once, parameters not counted). ReLUs "
           f"are in place, as in detectron2.")
        + "\n\n"
    )
    if args.models:
        with_amp = args.amp_modes or args.device != "cpu"
        args.amp_modes = args.amp_modes or "off"
        sections.append(benchmark_models_amp(args) if with_amp else benchmark_models(args))
    md = "\n\n".join(sections)
    print("\n" + md)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(header + md + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
