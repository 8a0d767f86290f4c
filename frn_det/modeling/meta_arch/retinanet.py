"""RetinaNet whose head towers use FRN+TLU without detectron2's ReLU behind them."""
from detectron2.config import configurable
from torch import nn
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.meta_arch.retinanet import RetinaNet, RetinaNetHead

from frn_det.config import frn_options_of
from frn_det.layers import norm_has_tlu


class RetinaNetFRNHead(RetinaNetHead):
    """detectron2's RetinaNetHead; with norm "FRN" the ReLU after each norm becomes Identity
    (the TLU inside FRN is the activation). Module indices and state names are unchanged."""

    @configurable
    def __init__(self, *, norm="", **kwargs):
        super().__init__(norm=norm, **kwargs)
        if norm_has_tlu(norm):
            for subnet in (self.cls_subnet, self.bbox_subnet):
                for i, layer in enumerate(subnet):
                    if isinstance(layer, nn.ReLU):
                        subnet[i] = nn.Identity()


@META_ARCH_REGISTRY.register()
class RetinaNetFRN(RetinaNet):
    """detectron2's RetinaNet with RetinaNetFRNHead (RetinaNet.from_config hard-codes its head)."""

    @classmethod
    def from_config(cls, cfg):
        with frn_options_of(cfg):
            ret = super().from_config(cfg)
            shapes = ret["backbone"].output_shape()
            ret["head"] = RetinaNetFRNHead(cfg, [shapes[f] for f in cfg.MODEL.RETINANET.IN_FEATURES])
        return ret
