"""FPN backbones over the FRN-aware ResNet, with detectron2's FPN and top blocks.

detectron2's FPN has no activation after its norms (use "FRN_NoTLU", "GFRN_NoTLU" or "GN" there), and
P6/P7 apply ReLU to the output of a conv, never to a TLU's.
"""
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone.fpn import build_resnet_fpn_backbone, build_retinanet_resnet_fpn_backbone

from .resnet import finish_resnet


@BACKBONE_REGISTRY.register()
def build_resnet_frn_fpn_backbone(cfg, input_shape):
    """R-CNN family: res2-res5 + max-pool top block (P2-P6)."""
    return _frn_fpn(build_resnet_fpn_backbone, cfg, input_shape)


@BACKBONE_REGISTRY.register()
def build_retinanet_resnet_frn_fpn_backbone(cfg, input_shape):
    """RetinaNet: res3-res5 + P6/P7 from res5 (P3-P7)."""
    return _frn_fpn(build_retinanet_resnet_fpn_backbone, cfg, input_shape)


def _frn_fpn(build_fpn_backbone, cfg, input_shape):
    backbone = build_fpn_backbone(cfg, input_shape)
    finish_resnet(backbone.bottom_up, cfg)
    # detectron2's FPN takes square_pad but its yacs builders do not pass it
    backbone._square_pad = cfg.MODEL.FPN.get("SQUARE_PAD", 0)
    return backbone
