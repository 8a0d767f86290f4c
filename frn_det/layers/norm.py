"""Makes "FRN" a norm name everywhere detectron2 calls get_norm.

detectron2 modules bind get_norm at import time (`from detectron2.layers import get_norm`), so the
function is replaced in every loaded module that holds it (detectron2's and the user's), and in
detectron2.layers for modules imported later.
"""
import contextlib
import functools
import sys

from .frn import EPS_FLOOR, FRN

# Norm names detectron2's own get_norm accepts (detectron2/layers/batch_norm.py), for the error message;
# detectron2 itself decides what it accepts.
DETECTRON2_NORMS = ("BN", "SyncBN", "FrozenBN", "GN", "nnSyncBN", "naiveSyncBN", "naiveSyncBN_N", "LN")
FRN_NORMS = {
    "FRN": True,  # FRN + TLU: replaces "norm + ReLU"
    "FRN_NoTLU": False,  # FRN alone: before a residual add, or where no activation follows
}

# Options for FRN layers built through get_norm, which only passes (name, channels): cfg.MODEL.FRN,
# set by frn_det's builders while they build (frn_det.config.frn_options_of) and by setup_cfg.
_options = {"eps": EPS_FLOOR, "learnable_eps": False}


def set_frn_options(eps=None, learnable_eps=None):
    if eps is not None:
        _options["eps"] = float(eps)
    if learnable_eps is not None:
        _options["learnable_eps"] = bool(learnable_eps)


@contextlib.contextmanager
def frn_options(eps=None, learnable_eps=None):
    """FRN layers that get_norm builds inside the block use these options; the old ones come back after."""
    saved = dict(_options)
    set_frn_options(eps, learnable_eps)
    try:
        yield
    finally:
        _options.update(saved)


def norm_has_tlu(norm):
    """True for the norm name whose layer ends in TLU: the activation is already there."""
    return isinstance(norm, str) and FRN_NORMS.get(norm, False)


def valid_norm_names():
    return ("",) + DETECTRON2_NORMS + tuple(FRN_NORMS)


def make_frn_get_norm(detectron2_get_norm):
    @functools.wraps(detectron2_get_norm)
    def get_norm(norm, out_channels):
        """detectron2's get_norm, plus "FRN" (FRN+TLU) and "FRN_NoTLU"."""
        if isinstance(norm, str) and norm in FRN_NORMS:
            return FRN(out_channels, tlu=FRN_NORMS[norm], **_options)
        try:
            return detectron2_get_norm(norm, out_channels)
        except KeyError as e:  # detectron2 looks the name up in a dict and says only the name
            if e.args != (norm,):
                raise
            raise ValueError(
                f"Unknown norm {norm!r}. Valid names: {', '.join(repr(n) for n in valid_norm_names())}"
                " (or a callable that takes the number of channels)."
            ) from None

    get_norm._frn_det_original = detectron2_get_norm
    return get_norm


def register_frn_norm():
    """Replaces get_norm in detectron2.layers and every loaded module bound to it."""
    import detectron2.layers
    import detectron2.layers.batch_norm as bn
    import detectron2.modeling  # noqa: F401  (loads the modules that bind get_norm)

    original = getattr(bn.get_norm, "_frn_det_original", bn.get_norm)
    patched = bn.get_norm if original is not bn.get_norm else make_frn_get_norm(original)
    for module in list(sys.modules.values()):
        if getattr(module, "get_norm", None) is original:
            module.get_norm = patched
    return patched
