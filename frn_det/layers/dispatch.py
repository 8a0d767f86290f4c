"""Chooses the FRN path for each input and calls it. Every path is tested against frn_reference.

Paths, each a function (x, weight, bias, tau, eps, eps_l) -> z:
  "cpp"       fused C++ kernels with C++ autograd (path_cpp), for the CPU
  "triton"    hand-written Triton kernels (path_triton), for GPUs; on CPU tensors under TRITON_INTERPRET=1
  "compile"   the torch-op kernels (path_torch) through torch.compile, for GPUs
  "python"    the same torch-op kernels, eager
  "reference" frn_reference, whose autograd keeps 3x the input
All but the reference keep only the input (and N*C values) for backward. Default: cpp on CPU (python
when it is not built), python on CUDA (the path that trained RetinaNet R101-FPN fastest on an H200,
AMP off and on) and elsewhere; python inside a caller's torch.compile (traceable ops it can fuse);
reference while tracing or exporting to ONNX. FRN_DET_IMPL=<path> forces a path (except while
tracing); `force_impl` does so inside a block; `configure` sets the run's path (MODEL.FRN.IMPL, or the
one chosen by frn_det.engine.frn_path), taken wherever it can run when nothing forces one.
`tlu_function` runs the TLU after a residual add through the Triton kernels where FRN runs the triton
path; `frn_add_tlu_function` runs a residual block's end (FRN without TLU, the add, TLU) in one
function where the path has one (cpp, triton).

The choice per (device type, dtype) is made once and cached, and FRN_DET_IMPL is read once: a call
costs a dict lookup and the tracing checks.
"""
import contextlib
import logging
import os

import torch

from . import path_cpp, path_torch, path_triton
from .formula import EPS_FLOOR, frn_add_tlu_reference, frn_reference, is_exporting, tlu_reference

logger = logging.getLogger("frn_det")

PATHS = {
    "reference": frn_reference,
    "python": path_torch.frn_python,
    "cpp": path_cpp.frn_cpp,
    "compile": path_torch.frn_compile,
    "triton": path_triton.frn_triton,
}
_UNREAD = object()
_forced = _UNREAD  # FRN_DET_IMPL, or what force_impl set; None: no path forced
_chosen = {}  # (device type, dtype) -> path name
_configured = None  # the run's path (configure), where it can run


def _forced_name():
    global _forced
    if _forced is _UNREAD:
        _forced = _check_name(os.environ.get("FRN_DET_IMPL", "").strip().lower() or None, "FRN_DET_IMPL")
    return _forced


def _check_name(name, what):
    if name is not None and name not in PATHS:
        raise ValueError(f"{what} names the FRN path {name!r}; valid paths: {', '.join(PATHS)}")
    return name


def can_run(name, device_type, dtype):
    """Whether path `name` runs on inputs of this device type and dtype here."""
    if name == "cpp":
        return device_type == "cpu" and dtype in path_cpp.CPP_DTYPES and path_cpp.cpp_available()
    if name == "triton":
        return path_triton.triton_available(device_type)
    return True


def default_path(device_type, dtype):
    """The static default: cpp on the CPU where it is built, python elsewhere."""
    return "cpp" if can_run("cpp", device_type, dtype) else "python"


def _choose_uncached(device_type, dtype):
    forced = _forced_name()
    if forced == "cpp" and (device_type != "cpu" or not path_cpp.cpp_available()):
        raise RuntimeError(f"FRN path 'cpp' forced, but the C++ kernel can't run here ({device_type})")
    if forced == "triton" and not path_triton.triton_available(device_type):
        raise RuntimeError(f"FRN path 'triton' forced, but Triton can't run on {device_type} here: "
                           f"{path_triton.unavailable_reason(device_type)}")
    if forced:
        return forced
    if _configured is not None and can_run(_configured, device_type, dtype):
        return _configured
    return default_path(device_type, dtype)


def choose(device_type, dtype):
    """Name of the path for inputs of this device type and dtype, in the current context."""
    if is_exporting():
        return "reference"  # plain aten ops: TorchScript and ONNX can't hold the C++ op or autograd code
    if torch.compiler.is_compiling() and not _forced_name():
        return "python"  # traceable torch ops: the caller's torch.compile fuses them
    name = _chosen.get((device_type, dtype))
    if name is None:
        name = _chosen[(device_type, dtype)] = _choose_uncached(device_type, dtype)
        logger.info("frn_det: FRN runs the %r path on %s (%s)", name, device_type, dtype)
    return name


def active_impl(device="cpu", dtype=torch.float32):
    """Name of the FRN path used for inputs on `device` with `dtype`."""
    return choose(torch.device(device).type, dtype)


def frn_function(x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None):
    """FRN (+TLU when tau is given) through the path chosen for x."""
    return PATHS[choose(x.device.type, x.dtype)](x, weight, bias, tau, eps, eps_l)


def tlu_function(y, tau):
    """TLU z = max(y, tau): the Triton kernels where FRN runs the triton path, else torch ops that keep
    z and one bit per element; tlu_reference's plain aten ops while tracing or exporting."""
    if is_exporting():
        return tlu_reference(y, tau)  # TorchScript and ONNX hold no autograd code
    if choose(y.device.type, y.dtype) == "triton":
        return path_triton.tlu_triton(y, tau)
    return path_torch.TLUFunction.apply(y, tau)


# Paths with a fused residual block end, (x, shortcut, weight, bias, tau, eps, eps_l) -> z, for 4-D x and
# a shortcut of its shape and dtype; the others run FRN, the add and TLU. python has none: one eager
# function written out (its TLU mask packed, dy unpacked from it) dispatches 28 aten ops per
# forward+backward, as FRN, add and TLU do (benchmarks/frn_launches.md).
FUSED_ADD_TLU = {"reference": frn_add_tlu_reference, "cpp": path_cpp.frn_add_tlu_cpp,
                 "triton": path_triton.frn_add_tlu_triton}


def frn_add_tlu_function(x, shortcut, weight, bias, tau, eps=EPS_FLOOR, eps_l=None):
    """z = max(FRN(x) + shortcut, tau), FRN without TLU: the end of a residual block, through the path
    chosen for x, fused where the path has it (FUSED_ADD_TLU), else FRN, the add and TLU."""
    if is_exporting():
        return frn_add_tlu_reference(x, shortcut, weight, bias, tau, eps, eps_l)  # plain aten ops, no shape checks
    name = choose(x.device.type, x.dtype)
    fused = FUSED_ADD_TLU.get(name)
    if fused is not None and x.dim() == 4 and shortcut.shape == x.shape and shortcut.dtype == x.dtype:
        return fused(x, shortcut, weight, bias, tau, eps, eps_l)
    return tlu_function(PATHS[name](x, weight, bias, None, eps, eps_l) + shortcut, tau)


def forced_path():
    """The path FRN_DET_IMPL forces, None when it forces none."""
    return _forced_name()


def configure(name):
    """Makes `name` the run's path wherever it can run (None: the static default); FRN_DET_IMPL and
    force_impl still take precedence."""
    global _configured
    _configured = _check_name(name, "the configured FRN path")
    _chosen.clear()


def configured():
    return _configured


def reset():
    """Forgets the cached choices and the configured path, and reads FRN_DET_IMPL again at the next call."""
    global _forced, _configured
    _forced = _UNREAD
    _configured = None
    _chosen.clear()


@contextlib.contextmanager
def force_impl(name):
    """Inside the block FRN runs path `name` (None: the default choice), whatever FRN_DET_IMPL says."""
    global _forced
    _check_name(name, "force_impl")
    saved, saved_chosen = _forced_name(), dict(_chosen)
    _forced = name
    _chosen.clear()
    try:
        yield
    finally:
        _forced = saved
        _chosen.clear()
        _chosen.update(saved_chosen)
