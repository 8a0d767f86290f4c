"""Chooses the FRN implementation. Every path here is tested against frn.frn_reference.

Paths, each a function (x, weight, bias, tau, eps, eps_l) -> z:
  "cpp"       fused C++ kernels with C++ autograd (csrc/frn_cpu.cpp, built by `pip install --no-build-isolation`)
  "compile"   the torch-op kernels of frn_autograd.py through torch.compile, for GPUs
  "python"    the same kernels, eager
  "reference" frn_reference, whose autograd keeps 3x the input
All but the reference keep only the input for backward. Default: cpp on CPU, compile on CUDA,
python elsewhere or when the first choice is unavailable, reference while tracing or exporting to
ONNX. FRN_DET_IMPL=<path> forces a path (except while tracing).
"""
import functools
import logging
import os
from pathlib import Path

import torch

from .frn import effective_eps, frn_reference
from .frn_autograd import PYTHON, Kernels, frn_apply, frn_backward_math, frn_forward_math

logger = logging.getLogger("frn_det")
CPP_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
_logged = set()


@functools.lru_cache(maxsize=None)
def cpp_available():
    """Loads the C++ op; False (the reason logged once) when it is not built or out of date."""
    try:
        from . import _frn_cpu  # loading it registers torch.ops.frn_det.frn
    except (ImportError, OSError) as e:
        logger.warning("frn_det: C++ FRN kernel unavailable (%s), so FRN runs its PyTorch path; to build it "
                       "against your torch, reinstall frn_det with `pip install --no-build-isolation`", e)
        return False
    src = Path(__file__).with_name("csrc") / "frn_cpu.cpp"
    if src.exists() and src.stat().st_mtime > Path(_frn_cpu.__file__).stat().st_mtime:
        logger.warning("frn_det: %s is newer than its build; `pip install --no-build-isolation -e .` rebuilds it", src)
        return False
    return True


def frn_cpp(x, weight, bias, tau=None, eps=1e-6, eps_l=None):
    if not cpp_available():
        raise RuntimeError("frn_det: the C++ FRN kernel is not available (see the log)")
    e = eps if eps_l is None else float(effective_eps(eps, eps_l.detach()))
    return torch.ops.frn_det.frn(x, weight, bias, tau, eps_l, e)


class _CompiledOrEager:
    """torch.compile of a kernel function; the eager function for good if compiling fails."""

    def __init__(self, fn):
        # dynamic: one graph across image sizes (automatic dynamic recompiled at each newly varying dim);
        # dims of size 1 still get graphs of their own
        self.fn, self.compiled = fn, torch.compile(fn, dynamic=True)

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except torch.OutOfMemoryError:
                raise
            except Exception as e:  # noqa: BLE001  (no triton, compiler error: eager is still right)
                logger.warning("frn_det: torch.compile of FRN failed (%s); using eager kernels", e)
                self.compiled = None
        return self.fn(*args)


@functools.lru_cache(maxsize=None)
def _compiled_kernels():
    fwd, bwd = _CompiledOrEager(frn_forward_math), _CompiledOrEager(frn_backward_math)
    return Kernels(fwd, bwd)


def frn_compile(x, weight, bias, tau=None, eps=1e-6, eps_l=None):
    return frn_apply(_compiled_kernels(), x, weight, bias, tau, eps, eps_l)


def frn_python(x, weight, bias, tau=None, eps=1e-6, eps_l=None):
    return frn_apply(PYTHON, x, weight, bias, tau, eps, eps_l)


PATHS = {"reference": frn_reference, "python": frn_python, "cpp": frn_cpp, "compile": frn_compile}


def _has_triton():
    try:
        from torch.utils._triton import has_triton

        return has_triton()
    except ImportError:
        return False


def _choose(device_type, dtype):
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return "reference"  # plain aten ops: TorchScript and ONNX can't hold the C++ op or autograd code
    forced = os.environ.get("FRN_DET_IMPL", "").strip().lower()
    if forced:
        if forced not in PATHS:
            raise ValueError(f"FRN_DET_IMPL={forced!r}; valid values: {', '.join(PATHS)}")
        if forced == "cpp" and (device_type != "cpu" or not cpp_available()):
            raise RuntimeError(f"FRN_DET_IMPL=cpp, but the C++ kernel can't run here ({device_type})")
        return forced
    if torch.compiler.is_compiling():
        return "python"  # traceable torch ops: the caller's torch.compile fuses them
    if device_type == "cpu" and dtype in CPP_DTYPES:
        return "cpp" if cpp_available() else "python"
    if device_type == "cuda" and _has_triton():
        return "compile"
    return "python"


def active_impl(device="cpu", dtype=torch.float32):
    """Name of the FRN path used for inputs on `device` with `dtype`."""
    return _choose(torch.device(device).type, dtype)


def dispatch(x, weight, bias, tau, eps, eps_l):
    name = _choose(x.device.type, x.dtype)
    if (x.device.type, name) not in _logged:
        _logged.add((x.device.type, name))
        logger.info("frn_det: FRN runs the %r path on %s", name, x.device.type)
    return PATHS[name](x, weight, bias, tau, eps, eps_l)
