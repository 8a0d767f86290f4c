"""Makes "FRN" a norm name everywhere detectron2 calls get_norm, and carries FRN's options to the layers.

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

from .frn import EPS_FLOOR, FRN

# Norm names detectron2's own get_norm accepts (detectron2/layers/batch_norm.py), for the error message;
# detectron2 itself decides what it accepts.
DETECTRON2_NORMS = ("BN", "SyncBN", "FrozenBN", "GN", "nnSyncBN", "naiveSyncBN", "naiveSyncBN_N", "LN")
FRN_NORMS = {
    "FRN": True,  # FRN + TLU: replaces "norm + ReLU"
    "FRN_NoTLU": False,  # FRN alone: before a residual add, or where no activation follows
}


class FRNNorm:
    """A `norm` argument for detectron2's modules: FRN layers with these constructor options.

    FRNNorm("FRN", eps=1e-5)(256) is FRN(256, eps=1e-5, learnable_eps=False, tlu=True). LazyConfig
    users put it in the config tree, e.g. `model.head.norm = L(FRNNorm)(name="FRN", learnable_eps=True)`.
    """

    def __init__(self, name="FRN", eps=EPS_FLOOR, learnable_eps=False):
        if name not in FRN_NORMS:
            raise ValueError(f"Unknown FRN norm {name!r}; valid: {', '.join(repr(n) for n in FRN_NORMS)}")
        self.name, self.eps, self.learnable_eps = name, float(eps), bool(learnable_eps)

    @property
    def tlu(self):
        return FRN_NORMS[self.name]

    def __call__(self, num_features):
        return FRN(num_features, eps=self.eps, learnable_eps=self.learnable_eps, tlu=self.tlu)

    def without_tlu(self):
        return FRNNorm("FRN_NoTLU", self.eps, self.learnable_eps)

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


def scoped_frn_options():
    """(eps, learnable_eps) that get_norm gives an FRN norm name here."""
    return _SCOPED_OPTIONS.get()


def frn_options(eps=EPS_FLOOR, learnable_eps=False):
    """The FRN+TLU norm argument with these options, FRNNorm("FRN", eps, learnable_eps), for code
    that builds detectron2 modules itself, e.g. `BasicStem(norm=frn_options(learnable_eps=True))`."""
    return FRNNorm("FRN", eps, learnable_eps)


def norm_has_tlu(norm):
    """True for a norm (name or FRNNorm) whose layer ends in TLU: the activation is already there."""
    if isinstance(norm, FRNNorm):
        return norm.tlu
    return isinstance(norm, str) and FRN_NORMS.get(norm, False)


def norm_without_tlu(norm):
    """The FRN norm without TLU, with the same options ("FRN" -> "FRN_NoTLU")."""
    return norm.without_tlu() if isinstance(norm, FRNNorm) else "FRN_NoTLU"


def valid_norm_names():
    return ("",) + DETECTRON2_NORMS + tuple(FRN_NORMS)


def make_frn_get_norm(detectron2_get_norm):
    @functools.wraps(detectron2_get_norm)
    def get_norm(norm, out_channels):
        """detectron2's get_norm, plus "FRN" (FRN+TLU) and "FRN_NoTLU" with the scope's options."""
        if isinstance(norm, str) and norm in FRN_NORMS:
            return FRNNorm(norm, *scoped_frn_options())(out_channels)
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
