"""RetinaNet whose head towers use FRN+TLU (or another norm with TLU) without detectron2's ReLU behind
them, with two recipe options beyond the paper: per-image input centering and per-FPN-level head norms."""
from typing import List

import torch
from detectron2.config import configurable
from detectron2.layers import get_norm
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.meta_arch.retinanet import RetinaNet, RetinaNetHead
from torch import nn

from frn_det.layers import norm_has_tlu


class LevelNorms(nn.ModuleList):
    """One norm per FPN level at one place of a head tower; RetinaNetFRNHead picks the level's."""


class RetinaNetFRNHead(RetinaNetHead):
    """detectron2's RetinaNetHead; with a norm whose layer ends in TLU ("FRN", "GFRN", "GN_TLU") the
    ReLU after each norm becomes Identity (that TLU is the activation); other norms ("FRN_ReLU", "GN")
    keep it. Module indices and state names are unchanged.

    norm_per_level: every norm of the towers becomes a LevelNorms with one norm per input level
    (own gamma, beta, tau and statistics), the convs staying shared, as in the TPU RetinaNet head the
    paper used. detectron2 shares FRN/GN layers across levels, and for BN keeps per-level statistics
    with a shared gamma and beta (CycleBatchNormList), which this also unshares. State names gain the
    level index (cls_subnet.1.0.weight, ...)."""

    @configurable
    def __init__(self, *, input_shape, norm="", norm_per_level=False, **kwargs):
        if norm_per_level and not norm:
            raise ValueError("MODEL.RETINANET.NORM_PER_LEVEL needs a head norm (MODEL.RETINANET.NORM, e.g. "
                             "'FRN', 'GN', 'BN'); it is empty")
        super().__init__(input_shape=input_shape, norm=norm, **kwargs)
        for subnet in (self.cls_subnet, self.bbox_subnet):
            for i, layer in enumerate(subnet):
                if isinstance(layer, nn.ReLU) and norm_has_tlu(norm):
                    subnet[i] = nn.Identity()
                elif norm_per_level and not isinstance(layer, (nn.Conv2d, nn.ReLU)):
                    channels = subnet[i - 1].out_channels  # every norm follows its conv
                    subnet[i] = LevelNorms([get_norm(norm, channels) for _ in input_shape])
        self.norm_per_level = norm_per_level

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["norm_per_level"] = cfg.MODEL.RETINANET.get("NORM_PER_LEVEL", False)
        return ret

    def forward(self, features: List[torch.Tensor]):
        if not self.norm_per_level:
            return super().forward(features)
        assert len(features) == self._num_features
        logits, bbox_reg = [], []
        for level, feature in enumerate(features):
            logits.append(self.cls_score(_tower(self.cls_subnet, feature, level)))
            bbox_reg.append(self.bbox_pred(_tower(self.bbox_subnet, feature, level)))
        return logits, bbox_reg


def _tower(subnet, x, level):
    for layer in subnet:
        x = layer[level](x) if isinstance(layer, LevelNorms) else layer(x)
    return x


@META_ARCH_REGISTRY.register()
class RetinaNetFRN(RetinaNet):
    """detectron2's RetinaNet with RetinaNetFRNHead (RetinaNet.from_config hard-codes its head).

    center_pixels_per_image (MODEL.CENTER_PIXELS_PER_IMAGE, beyond the paper): after PIXEL_MEAN and
    PIXEL_STD, each image's per-channel mean over its own pixels is subtracted, before padding, so
    that training, evaluation and export see the same input."""

    @configurable
    def __init__(self, *, center_pixels_per_image=False, **kwargs):
        super().__init__(**kwargs)
        self.center_pixels_per_image = center_pixels_per_image

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        shapes = ret["backbone"].output_shape()
        ret["head"] = RetinaNetFRNHead(cfg, [shapes[f] for f in cfg.MODEL.RETINANET.IN_FEATURES])
        ret["center_pixels_per_image"] = cfg.MODEL.get("CENTER_PIXELS_PER_IMAGE", False)
        return ret

    def preprocess_image(self, batched_inputs):
        images = super().preprocess_image(batched_inputs)
        if self.center_pixels_per_image:
            for i, (h, w) in enumerate(images.image_sizes):
                own = images.tensor[i, :, :h, :w]  # a view: the padding stays 0 and is not counted
                own -= own.mean(dim=(1, 2), keepdim=True)
        return images
