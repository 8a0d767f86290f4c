"""The "cpp" FRN path: fused C++ kernels with their own C++ autograd (csrc/), for the CPU.
Built by `pip install --no-build-isolation`; without the build, the dispatcher takes another path."""
import functools
import logging
from pathlib import Path

import torch

from .formula import EPS_FLOOR, effective_eps

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
    return True


def frn_cpp(x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None):
    if not cpp_available():
        raise RuntimeError("frn_det: the C++ FRN kernel is not available (see the log)")
    e = eps if eps_l is None else float(effective_eps(eps, eps_l.detach()))
    return torch.ops.frn_det.frn(x, weight, bias, tau, eps_l, e)


def frn_add_tlu_cpp(x, shortcut, weight, bias, tau, eps=EPS_FLOOR, eps_l=None):
    """max(FRN(x) + shortcut, tau) in one pass (FRN without TLU), x and shortcut 4-D of the same shape
    and dtype; keeps x, N*C values, z and one bit per element for backward."""
    if not cpp_available():
        raise RuntimeError("frn_det: the C++ FRN kernel is not available (see the log)")
    e = eps if eps_l is None else float(effective_eps(eps, eps_l.detach()))
    return torch.ops.frn_det.frn_add_tlu(x, shortcut, weight, bias, tau, eps_l, e)
