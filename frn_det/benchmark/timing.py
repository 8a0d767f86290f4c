"""The one timing loop: steps run round-robin, so that load from other processes hits all alike."""
import statistics
import time

import torch


def synchronize(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_once(step, iters, device="cpu"):
    """Seconds per call of `iters` calls; on CUDA from events: the GPU's time, not the launch time."""
    if torch.device(device).type == "cuda":
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


def interleaved_times(steps, repeats, device="cpu", min_time=0.0, on_timing=None):
    """{name: [seconds per call] * repeats} for each step of `steps` ({name: callable}): each step runs
    once to warm up (compile, autotune, allocate), then every repeat times each step in turn, with as
    many calls per timing as last min_time seconds. on_timing() is called after each timing."""
    iters = {}
    for name, step in steps.items():
        step()
        synchronize(device)
        iters[name] = max(1, int(min_time / max(time_once(step, 1, device), 1e-6))) if min_time else 1
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(time_once(step, iters[name], device))
            if on_timing:
                on_timing()
    return times


def medians(times):
    return {name: statistics.median(ts) for name, ts in times.items()}


def host_seconds(step, device="cpu", iters=5):
    """Seconds the host spends per call, not waiting for the device: what launches and Python cost."""
    step()
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    host = (time.perf_counter() - t0) / iters
    synchronize(device)
    return host


def device_launches(step, device):
    """Kernels (and memsets/copies) one call puts on the GPU, from torch.profiler; None on the CPU."""
    if torch.device(device).type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    step()
    synchronize(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        synchronize(device)
    return sum(1 for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA)
