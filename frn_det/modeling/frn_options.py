"""MODEL.FRN's options, carried to the FRN layers through get_norm's options scope.

build_model (frn_det.modeling) builds every model inside `frn_options_scope(*frn_options_of(cfg))`, so each
FRN layer that get_norm makes from a norm name gets them, whichever builder asks for it.
"""
from detectron2.config import CfgNode

from frn_det.layers import FRN_NORMS
from frn_det.layers.norm import _scoped_options


def frn_options_of(cfg):
    """(eps, learnable_eps) of cfg.MODEL.FRN; where the cfg has no MODEL.FRN (or one with only to_frn's
    META_ARCHITECTURE, in a config without add_frn_config), those of the options scope around the call (the
    paper's outside one)."""
    scoped = _scoped_options()
    node = cfg.MODEL.get("FRN")
    if node is None:
        return scoped
    return float(node.get("EPS", scoped[0])), bool(node.get("LEARNABLE_EPS", scoped[1]))


def check_frn_options_apply(cfg):
    """Raises where cfg.MODEL.FRN's options would not reach the layers being built: a model with a norm
    name that takes them, built by detectron2's build_model(cfg) instead of frn_det.modeling.build_model(cfg)."""
    wanted, scoped = frn_options_of(cfg), _scoped_options()
    if wanted != scoped and any(True for _ in _names_taking_options(cfg)):
        raise ValueError(
            f"MODEL.FRN.EPS {wanted[0]:g} and MODEL.FRN.LEARNABLE_EPS {wanted[1]} reach the FRN layers only in a "
            "model built by frn_det.modeling.build_model(cfg) (frn_det's Trainer, Predictor, export and "
            "model_zoo.get use it), or inside `with frn_options_scope(*frn_options_of(cfg)):` (frn_det.layers, "
            "frn_det.modeling); detectron2's "
            f"build_model(cfg) alone would build them with eps {scoped[0]:g}, learnable {scoped[1]}")


def _names_taking_options(node):
    """The cfg's NORM values that name a norm taking MODEL.FRN's options."""
    for key, value in node.items():
        if isinstance(value, CfgNode):
            yield from _names_taking_options(value)
        elif key == "NORM" and isinstance(value, str) and value in FRN_NORMS and FRN_NORMS[value].takes_options:
            yield value
