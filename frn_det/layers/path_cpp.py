"""The "cpp" FRN path: fused C++ kernels with their own C++ autograd (csrc/), for the CPU.
Built by `pip install --no-build-isolation`; without the build, the dispatcher takes another path.
The ops' fake kernels (shapes and dtypes only) are here, for torch.compile's fake tensors."""
import functools
import logging
from pathlib import Path

import torch

from .formula import EPS_FLOOR, effective_eps, empty_output, math_dtype

logger = logging.getLogger("frn_det")
CPP_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


@functools.lru_cache(maxsize=None)
def cpp_available():
    """Loads the C++ op; False (the reason logged once) when it is not built or out of date."""
    try:
        from . import _frn_cpu  # loading it registers torch.ops.frn_det.frn
    except (ImportError, OSError) as e:
        logger.warning("frn_det: C++ FRN kernel unavailable (%s), so FRN runs its PyTorch path; to build it "
                       "against your torch, reinstall frn_det with `pip install --no-build-isolation`", e)
        return False
    built = Path(_frn_cpu.__file__).stat().st_mtime
    sources = sorted(p for p in Path(__file__).with_name("csrc").glob("*") if p.suffix in (".cpp", ".h"))
    newer = [src for src in sources if src.stat().st_mtime > built]
    if newer:  # an editable install whose sources changed since the build
        logger.warning("frn_det: %s is newer than its build; `pip install --no-build-isolation -e .` rebuilds it",
                       newer[0])
        return False
    _register_fakes()
    return True


@functools.lru_cache(maxsize=None)
def _register_fakes():
    """The C++ kernels' outputs, as they allocate them (contiguous; statistics in math_dtype)."""

    def like(x, *shape):
        return x.new_empty(shape, dtype=math_dtype(x.dtype))

    @torch.library.register_fake("frn_det::frn")
    def _(x, weight, bias, tau, eps_l, eps):
        return x.new_empty(x.shape)

    @torch.library.register_fake("frn_det::frn_add_tlu")
    def _(x, shortcut, weight, bias, tau, eps_l, eps):
        return x.new_empty(x.shape)

    @torch.library.register_fake("frn_det::frn_backward")
    def _(dz, x, weight, bias, tau, eps):
        c = x.shape[1]
        return x.new_empty(x.shape), like(x, c), like(x, c), like(x, c), like(x)

    @torch.library.register_fake("frn_det::frn_add_tlu_forward")
    def _(x, shortcut, weight, bias, tau, eps):
        planes = x.shape[0] * x.shape[1]
        ties = x.new_empty(planes * ((x.shape[2] * x.shape[3] + 7) // 8), dtype=torch.uint8)
        return x.new_empty(x.shape), like(x, planes), ties

    @torch.library.register_fake("frn_det::frn_add_tlu_backward")
    def _(dz, x, r, z, ties, weight, bias, tau):
        c = x.shape[1]
        return x.new_empty(x.shape), x.new_empty(x.shape), like(x, c), like(x, c), like(x, c), like(x)


def frn_cpp(x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None):
    if not cpp_available():
        raise RuntimeError("frn_det: the C++ FRN kernel is not available (see the log)")
    if x.numel() == 0:
        return empty_output(x, weight, bias, tau, eps_l)
    e = eps if eps_l is None else float(effective_eps(eps, eps_l.detach()))
    return torch.ops.frn_det.frn(x, weight, bias, tau, eps_l, e)


def frn_add_tlu_cpp(x, shortcut, weight, bias, tau, eps=EPS_FLOOR, eps_l=None):
    """max(FRN(x) + shortcut, tau) in one pass (FRN without TLU), x and shortcut 4-D of the same shape
    and dtype; keeps x, N*C values, z and one bit per element for backward."""
    if not cpp_available():
        raise RuntimeError("frn_det: the C++ FRN kernel is not available (see the log)")
    if x.numel() == 0:
        return empty_output(x, shortcut, weight, bias, tau, eps_l)
    e = eps if eps_l is None else float(effective_eps(eps, eps_l.detach()))
    return torch.ops.frn_det.frn_add_tlu(x, shortcut, weight, bias, tau, eps_l, e)
