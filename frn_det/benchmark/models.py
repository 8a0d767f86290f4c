"""RetinaNet training iterations (forward, losses, backward) with 2 images: FRN on its paths against
GN and BN, AMP off and on, timed by the interleaved loop; peak memory per iteration on CUDA
(torch.cuda.max_memory_allocated), and on the CPU the peak resident set of a process of its own.

    python -m frn_det.benchmark.models --peak-of NAME ...   # the CPU peak's child process
"""
import argparse
import subprocess
import sys

import torch

from frn_det.layers import dispatch, path_cpp
from frn_det.layers.testing import saved_bytes

from .layers import frn_paths
from .timing import interleaved_times, medians, synchronize

MODEL_CONFIGS = {  # name -> (config, FRN path of its FRN layers)
    "RetinaNet FRN cpp": ("retinanet_frn_2img.yaml", "cpp"),
    "RetinaNet FRN triton": ("retinanet_frn_2img.yaml", "triton"),
    "RetinaNet FRN compile": ("retinanet_frn_2img.yaml", "compile"),
    "RetinaNet FRN python": ("retinanet_frn_2img.yaml", "python"),
    "RetinaNet FRN reference": ("retinanet_frn_2img.yaml", "reference"),
    "RetinaNet GN": ("retinanet_gn_2img.yaml", None),
    "RetinaNet BN": ("retinanet_bn_2img.yaml", None),
}
BASELINE = "RetinaNet GN"


def model_names(device):
    """CPU: the cpp path where it is built, and the eager formula, which shows what it saves; CUDA: every
    path (triton where it runs), so that the fastest can be named."""
    if device == "cpu":
        impls = (["cpp"] if path_cpp.cpp_available() else []) + ["reference"]
    else:
        impls = frn_paths(device)
    return [n for n, (_, impl) in MODEL_CONFIGS.items() if impl is None or impl in impls]


def path_of(name):
    """FRN path `name` inside the block (none forced for GN and BN)."""
    impl = MODEL_CONFIGS[name][1]
    return dispatch.force_impl(impl) if impl else dispatch.force_impl(None)


def model_parts(args):
    """(build(name) -> model, inputs, step(model, name)) for `args`' depth, size, device and options."""
    from detectron2.config import get_cfg
    from detectron2.structures import Boxes, Instances

    import frn_det
    from frn_det.model_zoo import get_config_file
    from frn_det.modeling import build_model

    device = args.device
    size, g = args.model_size, torch.Generator().manual_seed(0)

    def build(name):
        cfg = frn_det.add_frn_config(get_cfg())
        cfg.merge_from_file(get_config_file(MODEL_CONFIGS[name][0]))
        cfg.merge_from_list(["MODEL.DEVICE", device, "MODEL.RESNETS.DEPTH", args.model_depth,
                             "MODEL.FPN.SQUARE_PAD", size] + list(args.model_opts or []))
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
        with path_of(name):
            sum(model(inputs).values()).backward()
        model.zero_grad(set_to_none=True)

    return build, inputs, step


def peak_rss_mb():
    """This process's peak resident set (VmHWM), MB. Not getrusage's ru_maxrss: that one keeps the
    forking parent's peak across exec."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def child_args(args):
    out = ["--model-size", str(args.model_size), "--model-depth", str(args.model_depth)]
    if getattr(args, "threads", None):
        out += ["--threads", str(args.threads)]
    if args.model_opts:
        out += ["--model-opts", *args.model_opts]
    return out


def cpu_peak_memory(args, name):
    """(peak RSS of a process that trains `name` 2 iterations, the part of it the iterations added), MB.
    A process each: peak RSS never goes down within one."""
    cmd = [sys.executable, "-m", "frn_det.benchmark.models", "--peak-of", name] + child_args(args)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    before, after = map(float, out.split("PEAK ")[-1].split())
    return after, after - before


def benchmark_models(args, bar=None):
    """A markdown table: RetinaNet iterations for each model of model_names(args.device) and AMP mode of
    args.amp_modes ("off", "on" or "off,on"; fp16 on CUDA as detectron2's AMPTrainer, bf16 on the CPU),
    round-robin, median of args.model_repeats; saved activations; peak memory (CUDA: per iteration; CPU:
    a process each, AMP off, when cpu_peaks)."""
    from detectron2.utils.events import EventStorage

    device, cuda = args.device, args.device != "cpu"
    amp_dtype = torch.float16 if cuda else torch.bfloat16
    modes = [m.strip() for m in args.amp_modes.split(",") if m.strip()]
    names = model_names(device)
    build, inputs, step = model_parts(args)
    peaks, saved = {}, {}

    def timed_step(model, mode, name):
        def run():
            if cuda:
                synchronize(device)
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            with torch.autocast(torch.device(device).type, dtype=amp_dtype, enabled=mode == "on"):
                step(model, name)
            if cuda:
                synchronize(device)
                peak = torch.cuda.max_memory_allocated()
                peaks[(mode, name)] = (peak / 2**20, (peak - base) / 2**20)

        return run

    with EventStorage():
        models = {name: build(name) for name in names}
        steps = {}
        for mode in modes:
            for name in names:
                model = models[name]
                with path_of(name), torch.autocast(torch.device(device).type, dtype=amp_dtype, enabled=mode == "on"):
                    saved[(mode, name)] = saved_bytes(lambda x: sum(model(x).values()), inputs,
                                                      list(model.parameters()))
                steps[(mode, name)] = timed_step(model, mode, name)
        times = medians(interleaved_times(steps, args.model_repeats, device,
                                          on_timing=bar.update if bar is not None else None))
        models.clear()
    if not cuda and getattr(args, "cpu_peaks", False):
        for name in names:
            peaks[("off", name)] = cpu_peak_memory(args, name)
    size = args.model_size
    peak_words = ("peak: torch.cuda.max_memory_allocated during the iteration (every model's weights stay "
                  "allocated), added: the part above what was allocated before it" if cuda else
                  "peak: peak resident set of a process that builds the model and trains 2 iterations, added: "
                  "the part the iterations added")
    lines = [
        f"RetinaNet training iteration on {device}, ResNet-{args.model_depth}-FPN, 2 images of {size}x{size}, "
        f"median of {args.model_repeats} interleaved iterations, AMP {amp_dtype}; {peak_words}:\n",
        "| AMP | model | iteration s | time / GN | saved activations MB | peak MB | added MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for mode in modes:
        for name in names:
            t = times[(mode, name)]
            peak, added = (f"{v:.0f}" for v in peaks[(mode, name)]) if (mode, name) in peaks else ("n/a", "n/a")
            lines.append(f"| {mode} | {name} | {t:.3f} | {t / times[(mode, BASELINE)]:.2f}x | "
                         f"{saved[(mode, name)] / 2**20:.0f} | {peak} | {added} |")
    lines.append("")
    for mode in modes:
        name = fastest_frn(times, mode, names)
        t = times[(mode, name)]
        lines.append(f"- fastest FRN path, AMP {mode}: {MODEL_CONFIGS[name][1]} ({t:.3f} s, "
                     f"{t / times[(mode, BASELINE)]:.2f}x GN)")
    return "\n".join(lines)


def fastest_frn(times, mode, names):
    """The FRN model of `names` with the lowest iteration time in AMP `mode`."""
    return min((n for n in names if MODEL_CONFIGS[n][1]), key=lambda n: times[(mode, n)])


def _peak_child(argv=None):
    """Builds a model, trains it 2 iterations, prints the peak resident memory before and after (MB)."""
    from detectron2.utils.events import EventStorage

    ap = argparse.ArgumentParser()
    ap.add_argument("--peak-of", required=True, choices=list(MODEL_CONFIGS))
    ap.add_argument("--model-size", type=int, required=True)
    ap.add_argument("--model-depth", type=int, required=True)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--model-opts", nargs="*", default=None)
    args = ap.parse_args(argv)
    args.device = "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    build, _, step = model_parts(args)
    model = build(args.peak_of)
    before = peak_rss_mb()
    with EventStorage():
        for _ in range(2):
            step(model, args.peak_of)
    print(f"PEAK {before:.1f} {peak_rss_mb():.1f}")


if __name__ == "__main__":
    _peak_child()
