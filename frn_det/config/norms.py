"""MODEL.FRN's options, carried to the layers as constructor arguments.

get_norm only receives a norm name and the channels, so the builders hand detectron2 a config whose
FRN norm names are FRNNorm objects with the options (detectron2's modules accept a callable norm).
"""
from detectron2.config import CfgNode

from frn_det.layers import FRN_NORMS, frn_norm


def frn_norm_of(cfg, norm):
    """`norm` (a name from cfg) with cfg.MODEL.FRN's options if it is an FRN norm."""
    node = cfg.MODEL.get("FRN")
    if node is None:
        return norm
    return frn_norm(norm, eps=node.EPS, learnable_eps=node.LEARNABLE_EPS)


def with_frn_options(cfg):
    """A copy of cfg in which every NORM key that names an FRN norm holds the FRNNorm with
    cfg.MODEL.FRN's options (cfg itself is unchanged). Build models from it; never save it."""
    if cfg.MODEL.get("FRN") is None or not any(True for _ in _frn_norm_keys(cfg)):
        return cfg
    out = cfg.clone()
    out.defrost()
    for node, key in _frn_norm_keys(out):
        node[key] = frn_norm_of(cfg, node[key])
    if cfg.is_frozen():
        out.freeze()
    return out


def _frn_norm_keys(node):
    for key, value in node.items():
        if isinstance(value, CfgNode):
            yield from _frn_norm_keys(value)
        elif key == "NORM" and isinstance(value, str) and value in FRN_NORMS:
            yield node, key
