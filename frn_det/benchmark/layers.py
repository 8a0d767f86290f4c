"""One FRN layer, forward+backward, against GN+ReLU and BN+ReLU: time, the bytes autograd keeps for
backward, and on CUDA the kernels launched per call and the host's time per call."""
import itertools
import time

import torch
from torch import nn

from frn_det.layers import FRN, TLU, dispatch, path_cpp, path_torch, path_triton
from frn_det.layers.testing import saved_bytes

from . import launches
from .timing import device_launches, host_seconds, interleaved_times, medians, synchronize

# RetinaNet FPN levels P3-P7 for a 1024x1024 input, 2 images; the targets: P3, P6 and the stem's output.
TARGET_SHAPES = [(2, 256, 128, 128), (2, 256, 16, 16), (2, 64, 512, 512)]
FPN_SHAPES = [(2, 256, 128, 128), (2, 256, 64, 64), (2, 256, 32, 32), (2, 256, 16, 16), (2, 256, 8, 8)]
# ResNet-50 stage outputs res2-res5 at 1024 (--backbone): large, slow on a CPU.
BACKBONE_SHAPES = [(2, 256, 256, 256), (2, 512, 128, 128), (2, 1024, 64, 64), (2, 2048, 32, 32)]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "bf16-autocast": torch.bfloat16}
AUTOCAST = {"bf16-autocast": torch.bfloat16}  # dtype name -> autocast dtype (the fn runs inside it)
# Feature sizes of R-CNN-style variable images (shorter side 800, longer up to 1333) at stride 8.
COMPILE_SIZES = [(100, 134), (100, 150), (96, 167), (84, 167), (100, 100), (75, 167)]
BASELINE = "GN+ReLU"


def frn_method(path, tlu=True):
    def build(c):
        layer = FRN(c, tlu=tlu)
        fn = dispatch.PATHS[path]
        return layer, lambda x: fn(x, layer.weight, layer.bias, layer.tau, layer.eps, layer.eps_l)

    return build


def module_method(make):
    def build(c):
        layer = make(c)
        return layer, layer

    return build


def frn_paths(device="cpu"):
    """The FRN paths worth timing on `device`: the fast ones that run there, and the reference."""
    if device == "cpu":
        paths = (["cpp"] if path_cpp.cpp_available() else []) + ["python"]
    else:
        paths = ["compile", "python"]  # no C++ kernel off the CPU
    if path_triton.triton_available(torch.device(device).type):  # on the CPU: the interpreter
        paths.insert(0, "triton")
    return paths + ["reference"]


def methods(device="cpu"):
    """name -> build(channels) -> (module holding the parameters, callable)."""
    out = {f"FRN+TLU {path}": frn_method(path) for path in frn_paths(device)}
    out[BASELINE] = module_method(lambda c: nn.Sequential(nn.GroupNorm(32, c), nn.ReLU(inplace=True)))
    out["BN+ReLU"] = module_method(lambda c: nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
    return out


def fwd_bwd(fn, x, params, dz):
    out = fn(x)
    torch.autograd.grad(out, [x] + params, dz)


def autocast(fn, device, dtype):
    def run(x):
        with torch.autocast(torch.device(device).type, dtype=dtype):
            return fn(x)

    return run


def bench_case(shape, dtype, builds, repeats, min_time, bar, device="cpu", autocast_dtype=None, host_iters=5):
    """name -> (median fwd+bwd seconds, saved bytes, kernels launched per call (None on the CPU), host
    seconds per call) at one shape and dtype."""
    x = torch.randn(shape, dtype=dtype, device=device).requires_grad_()
    dz = torch.randn(shape, dtype=dtype, device=device)
    steps, saved = {}, {}
    for name, build in builds.items():
        layer, fn = build(shape[1])
        layer.to(device)
        if autocast_dtype is not None:
            fn = autocast(fn, device, autocast_dtype)
        params = [p for p in layer.parameters() if p.requires_grad]
        saved[name] = saved_bytes(fn, x, params)
        steps[name] = lambda fn=fn, params=params: fwd_bwd(fn, x, params, dz)
    times = medians(interleaved_times(steps, repeats, device, min_time, on_timing=lambda: bar.update(1)))
    return {name: (times[name], saved[name], device_launches(step, device), host_seconds(step, device, host_iters))
            for name, step in steps.items()}


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
        fn = autocast(fn, device, AUTOCAST[dtype_name])
    lines = ["| size | first fwd+bwd s | graphs compiled |", "| --- | ---: | ---: |"]
    recompiles = 0
    for i, (h, w) in enumerate(sizes):
        x = torch.randn(2, channels, h, w, dtype=DTYPES[dtype_name], device=device).requires_grad_()
        before = counters["stats"]["unique_graphs"]
        t0 = time.perf_counter()
        fwd_bwd(fn, x, params, torch.randn_like(x))
        synchronize(device)
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
        "| shape | dtype | method | fwd+bwd ms | time / GN+ReLU | saved / input bytes | kernels | host ms |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (shape, dtype), res in results.items():
        base = res[BASELINE][0]
        for name, (t, saved, kernels, host) in res.items():
            lines.append(
                f"| {'x'.join(map(str, shape))} | {dtype} | {name} | {t * 1e3:.3g} | {t / base:.2f}x "
                f"| {saved / input_bytes[(shape, dtype)]:.2f}x | {'n/a' if kernels is None else kernels} "
                f"| {host * 1e3:.3g} |"
            )
    return "\n".join(lines)


def target_summary(results, shapes=TARGET_SHAPES):
    """Fastest FRN path <= 1.00x GN+ReLU time at the target shapes, fp32 and bf16 autocast, and saved
    <= 1.00x input."""
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


LAUNCH_SHAPE = (2, 256, 16, 16)  # P6 at 1024: counts hardly depend on the shape (the stem's splits add one)


def launch_methods(device="cpu"):
    """name -> build(channels) -> (module holding the parameters, callable), for the launch counts: FRN
    with and without TLU on each path, the TLU after a residual add, and the baselines."""
    out = {}
    for path in frn_paths(device):
        out[f"FRN+TLU {path}"] = frn_method(path)
    for path in frn_paths(device):
        out[f"FRN (no TLU) {path}"] = frn_method(path, tlu=False)
    tlus = {"python": path_torch.TLUFunction.apply}
    if path_triton.triton_available(torch.device(device).type):
        tlus["triton"] = path_triton.tlu_triton
    for path, fn in tlus.items():
        out[f"TLU after add {path}"] = tlu_method(fn)
    out[BASELINE] = module_method(lambda c: nn.Sequential(nn.GroupNorm(32, c), nn.ReLU(inplace=True)))
    out["BN+ReLU"] = module_method(lambda c: nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
    return out


def tlu_method(fn):
    def build(c):
        layer = TLU(c)
        return layer, lambda x: fn(x, layer.tau)

    return build


def launch_counts(device="cpu", shape=LAUNCH_SHAPE):
    """name -> (non-view aten ops, of them allocations, Triton launches) of one forward+backward at
    `shape`, fp32."""
    x = torch.randn(shape, device=device).requires_grad_()
    dz = torch.randn(shape, device=device)
    out = {}
    for name, build in launch_methods(device).items():
        layer, fn = build(shape[1])
        params = [p for p in layer.to(device).parameters() if p.requires_grad]
        out[name] = launches.counts(lambda fn=fn, params=params: fwd_bwd(fn, x, params, dz))
    out.update(block_end_launch_counts(device, shape))
    return out


def launch_table(counts, shape=LAUNCH_SHAPE):
    lines = [f"Launches of one forward+backward at {'x'.join(map(str, shape))}, fp32, counted on the CPU: "
             "non-view aten ops (each one but an allocation is at least one kernel launch on a GPU), the "
             "allocations among them (`empty*`, no launch) and the Triton kernels launched. The cpp path's "
             "C++ kernels are ops of their own, one forward and one backward (`frn_det::frn`, "
             "`frn_backward`; `frn_add_tlu_forward`, `frn_add_tlu_backward`), their allocations inside "
             "them. FRN+add+TLU is a residual block's "
             "end, max(FRN(x) + shortcut, tau) with FRN without TLU (gradients of x, the shortcut and the "
             "parameters): fused on cpp (one C++ function) and triton (the FRN kernels with the add and TLU "
             "inside), elsewhere the path's FRN, the add and its TLU.",
             "",
             "| method | aten ops | of them allocations | Triton launches |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {ops} | {alloc} | {tri or '-'} |" for name, (ops, alloc, tri) in counts.items()]
    return "\n".join(lines)


# The end of a residual block, max(FRN(x) + shortcut, tau) with FRN without TLU: ResNet-50's res4 block
# output for 512 px, 2 images, and a res2 one for 256 px, 8 images.
BLOCK_END_SHAPES = [(2, 256, 32, 32), (8, 64, 64, 64)]


def block_end_methods(device="cpu"):
    """name -> fn(x, shortcut, frn, tlu): each path's residual block end unfused (FRN, the add, the
    TLU the path runs), and fused where a path has it (dispatch.FUSED_ADD_TLU)."""
    out = {}
    for path in frn_paths(device):
        fused = None if path == "reference" else dispatch.FUSED_ADD_TLU.get(path)  # the reference: 3 steps
        if fused is not None:
            out[f"FRN+add+TLU {path} fused"] = (
                lambda x, s, f, t, fused=fused: fused(x, s, f.weight, f.bias, t.tau, f.eps, f.eps_l))
        tlu = path_triton.tlu_triton if path == "triton" else path_torch.TLUFunction.apply
        frn = dispatch.PATHS[path]
        out[f"FRN+add+TLU {path}" + (" unfused" if fused is not None else "")] = (
            lambda x, s, f, t, frn=frn, tlu=tlu: tlu(frn(x, f.weight, f.bias, None, f.eps, f.eps_l) + s, t.tau))
    return out


def block_end_steps(shape, device="cpu", dtype=torch.float32):
    """name -> one forward+backward of the block end (grads of x, the shortcut and the parameters)."""
    x = torch.randn(shape, dtype=dtype, device=device).requires_grad_()
    s = torch.randn(shape, dtype=dtype, device=device).requires_grad_()
    dz = torch.randn(shape, dtype=dtype, device=device)
    frn, tlu = FRN(shape[1], tlu=False).to(device), TLU(shape[1]).to(device)
    leaves = [x, s, frn.weight, frn.bias, tlu.tau]
    return {name: lambda fn=fn: torch.autograd.grad(fn(x, s, frn, tlu), leaves, dz)
            for name, fn in block_end_methods(device).items()}


def block_end_launch_counts(device="cpu", shape=LAUNCH_SHAPE):
    """name -> (non-view aten ops, of them allocations, Triton launches) of one block end fwd+bwd."""
    return {name: launches.counts(step) for name, step in block_end_steps(shape, device).items()}


def block_end_times(shapes=BLOCK_END_SHAPES, repeats=15, min_time=0.2, device="cpu"):
    """Markdown: median fwd+bwd ms of each block end method at each shape, fp32, timed interleaved, and
    each against the first (the fused path where there is one)."""
    lines = [f"A residual block's end, max(FRN(x) + shortcut, tau) with FRN without TLU, fp32: forward+backward "
             f"(gradients of x, the shortcut and the parameters), median of {repeats} interleaved timings; fused: "
             "one function, else the path's FRN, the add and its TLU.", "",
             "| shape | method | fwd+bwd ms (median) | time / first |", "| --- | --- | ---: | ---: |"]
    for shape in shapes:
        steps = {n: s for n, s in block_end_steps(shape, device).items() if "reference" not in n}
        times = medians(interleaved_times(steps, repeats, device, min_time))
        first = next(iter(times.values()))
        lines += [f"| {'x'.join(map(str, shape))} | {name} | {t * 1e3:.3g} | {t / first:.2f}x |"
                  for name, t in times.items()]
    return "\n".join(lines)
