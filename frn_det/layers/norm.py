"""Makes frn_det's norm names ("FRN", ...) valid everywhere detectron2 calls get_norm, and carries
FRN's options to the layers.

detectron2 modules bind get_norm at import time (`from detectron2.layers import get_norm`), so the
function is replaced in every loaded module that holds it (detectron2's and the user's), and in
detectron2.layers for modules imported later. That lookup is the only thing frn_det changes in detectron2.

get_norm passes only (name, channels), so the options (eps, learnable eps) come from the innermost
`frn_options_scope`, or are the paper's outside one: whichever builder calls get_norm with an FRN
name, frn_det's, detectron2's or a user's, gets the scope's options. An FRNNorm carries its own
options instead (detectron2's modules accept a callable of the channels as `norm`), for LazyConfig.
"""
import contextlib
import contextvars
import functools
import sys
from typing import Callable, NamedTuple

from .formula import EPS_FLOOR, GN_GROUPS
from .frn import FRN, TLU
from .group_norms import GFRN, GroupNormTLU

# Norm names detectron2's own get_norm accepts (detectron2/layers/batch_norm.py), for the error message;
# detectron2 itself decides what it accepts.
DETECTRON2_NORMS = ("BN", "SyncBN", "FrozenBN", "GN", "nnSyncBN", "naiveSyncBN", "naiveSyncBN_N", "LN")


class NormSpec(NamedTuple):
    """What an frn_det norm name builds, and which activation goes with it. The ReLU-after-TLU check,
    the optimizer's norm parameters and the FRN monitor know frn_det's layers from these entries."""

    layer: type  # the module class it builds; an instance with a `tau` ends in TLU
    build: Callable  # (channels, eps, learnable_eps) -> module
    tlu: bool  # the layer ends in TLU: it replaces "norm + ReLU", and no ReLU may follow it
    without_tlu: str  # the same norm without TLU: before a residual add, or where no activation follows
    takes_options: bool  # takes MODEL.FRN's eps and learnable eps


FRN_NORMS = {
    "FRN": NormSpec(FRN, lambda c, eps, learnable: FRN(c, eps, learnable, tlu=True), True, "FRN_NoTLU", True),
    "FRN_NoTLU": NormSpec(FRN, lambda c, eps, learnable: FRN(c, eps, learnable, tlu=False), False, "FRN_NoTLU", True),
    # Table 3's ablations: FRN with detectron2's ReLU after it; GFRN (FRN over GN's groups); GN with TLU
    "FRN_ReLU": NormSpec(FRN, lambda c, eps, learnable: FRN(c, eps, learnable, tlu=False), False, "FRN_ReLU", True),
    "GFRN": NormSpec(GFRN, lambda c, eps, learnable: GFRN(c, GN_GROUPS, eps, learnable, tlu=True), True, "GFRN_NoTLU",
                     True),
    "GFRN_NoTLU": NormSpec(GFRN, lambda c, eps, learnable: GFRN(c, GN_GROUPS, eps, learnable, tlu=False), False,
                           "GFRN_NoTLU", True),
    "GN_TLU": NormSpec(GroupNormTLU, lambda c, eps, learnable: GroupNormTLU(GN_GROUPS, c), True, "GN", False),
}


def norm_layer_types():
    """The module classes of frn_det's norm names (FRN_NORMS)."""
    return tuple(dict.fromkeys(spec.layer for spec in FRN_NORMS.values()))


def frn_layer_types():
    """The module classes of frn_det's norms and TLU: their parameters are norm parameters."""
    return (*norm_layer_types(), TLU)


def tlu_layer_types():
    """The module classes that end in TLU where an instance has a `tau`: those of FRN_NORMS' names with
    TLU, and TLU."""
    return tuple(dict.fromkeys([*(spec.layer for spec in FRN_NORMS.values() if spec.tlu), TLU]))


def name_without_tlu(layer):
    """The norm name that builds `layer`'s class without TLU ("GN" for GroupNormTLU), or None."""
    return next((spec.without_tlu for spec in FRN_NORMS.values() if spec.tlu and spec.layer is layer), None)


class FRNNorm:
    """A `norm` argument for detectron2's modules: layers of an frn_det norm name with these options.

    FRNNorm("FRN", eps=1e-5)(256) is FRN(256, eps=1e-5, learnable_eps=False, tlu=True). LazyConfig
    users put it in the config tree, e.g. `model.head.norm = L(FRNNorm)(name="FRN", learnable_eps=True)`.
    "GN_TLU" takes no options: its GroupNorm keeps detectron2's eps.
    """

    def __init__(self, name="FRN", eps=EPS_FLOOR, learnable_eps=False):
        if name not in FRN_NORMS:
            raise ValueError(f"Unknown FRN norm {name!r}; valid: {', '.join(repr(n) for n in FRN_NORMS)}")
        self.name, self.eps, self.learnable_eps = name, float(eps), bool(learnable_eps)
        if not FRN_NORMS[name].takes_options and (self.eps, self.learnable_eps) != PAPER_OPTIONS:
            takes = ", ".join(repr(n) for n, spec in FRN_NORMS.items() if spec.takes_options)
            raise ValueError(f"{name!r} takes no eps or learnable_eps (its GroupNorm has its own eps); the names "
                             f"that do: {takes}")

    @property
    def tlu(self):
        return FRN_NORMS[self.name].tlu

    def __call__(self, num_features):
        return FRN_NORMS[self.name].build(num_features, self.eps, self.learnable_eps)

    def without_tlu(self):
        """The same norm without TLU, with the same options ("GN_TLU" -> detectron2's "GN")."""
        name = FRN_NORMS[self.name].without_tlu
        return FRNNorm(name, self.eps, self.learnable_eps) if name in FRN_NORMS else name

    def __eq__(self, other):
        return isinstance(other, FRNNorm) and vars(self) == vars(other)

    def __repr__(self):
        return f"FRNNorm({self.name!r}, eps={self.eps!r}, learnable_eps={self.learnable_eps!r})"


PAPER_OPTIONS = (EPS_FLOOR, False)  # (eps, learnable_eps)
_SCOPED_OPTIONS = contextvars.ContextVar("frn_det_frn_options", default=PAPER_OPTIONS)


@contextlib.contextmanager
def frn_options_scope(eps=EPS_FLOOR, learnable_eps=False):
    """Inside it, get_norm builds every FRN norm name with these options, e.g.
    `with frn_options_scope(learnable_eps=True): stem = BasicStem(norm="FRN")`."""
    token = _SCOPED_OPTIONS.set((float(eps), bool(learnable_eps)))
    try:
        yield
    finally:
        _SCOPED_OPTIONS.reset(token)


def _scoped_options():
    """(eps, learnable_eps) that get_norm gives an FRN norm name here."""
    return _SCOPED_OPTIONS.get()


def norm_has_tlu(norm):
    """True for a norm (name or FRNNorm) whose layer ends in TLU: the activation is already there."""
    if isinstance(norm, FRNNorm):
        return norm.tlu
    return isinstance(norm, str) and norm in FRN_NORMS and FRN_NORMS[norm].tlu


def norm_without_tlu(norm):
    """The norm without TLU, with the same options ("FRN" -> "FRN_NoTLU", "GN_TLU" -> "GN"); a norm
    without TLU is returned as it is."""
    if isinstance(norm, FRNNorm):
        return norm.without_tlu()
    return FRN_NORMS[norm].without_tlu if isinstance(norm, str) and norm in FRN_NORMS else norm


def valid_norm_names():
    return ("",) + DETECTRON2_NORMS + tuple(FRN_NORMS)


def make_frn_get_norm(detectron2_get_norm):
    @functools.wraps(detectron2_get_norm)
    def get_norm(norm, out_channels):
        """detectron2's get_norm, plus frn_det's names (FRN_NORMS), with the scope's FRN options."""
        if isinstance(norm, str) and norm in FRN_NORMS:
            options = _scoped_options() if FRN_NORMS[norm].takes_options else PAPER_OPTIONS
            return FRNNorm(norm, *options)(out_channels)
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
