"""Frozen stages with FRN: MODEL.BACKBONE.FREEZE_AT (yacs) and a LazyConfig ResNet's freeze_at freeze what
detectron2's ResNet.freeze freezes, every parameter of the stem and the first stages, the norms and TLUs
that the FRN-aware blocks put in included, with every FRN norm name."""
import copy
import os

import pytest
import torch
from detectron2 import model_zoo
from detectron2.config import LazyConfig, instantiate

import frn_det
from frn_det.layers import FRN_NORMS
from frn_det.modeling import build_model
from test_modeling import ROOT

FREEZE_AT = [1, 2, 3, 4, 5]
LAZY_R101 = os.path.join(ROOT, "configs", "lazy", "retinanet_frn_R101_FPN.py")


def _trainable(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def _detectron2_frozen(model, resnet_of, freeze_at):
    """`model` (built unfrozen) once detectron2's ResNet.freeze(freeze_at) has frozen its ResNet: what
    frozen means in detectron2 (no parameter trains, BN becomes FrozenBatchNorm2d)."""
    reference = copy.deepcopy(model)
    resnet_of(reference).freeze(freeze_at)
    return reference


def _check(build, resnet_of):
    """Each FREEZE_AT against detectron2's freeze of the unfrozen model; the frozen stages are not empty."""
    unfrozen = build(0)
    assert _trainable(unfrozen) == {name for name, _ in unfrozen.named_parameters()}
    for freeze_at in FREEZE_AT:
        model = build(freeze_at)
        reference = _detectron2_frozen(unfrozen, resnet_of, freeze_at)
        expected = _trainable(reference)
        assert _trainable(model) == expected, (freeze_at, sorted(_trainable(model) - expected)[:5])
        assert [type(m) for m in model.modules()] == [type(m) for m in reference.modules()]
        frozen = [p for n, p in resnet_of(model).named_parameters() if n.split(".")[0] in
                  ["stem"] + [f"res{i}" for i in range(2, freeze_at + 1)]]
        assert frozen and not any(p.requires_grad for p in frozen)


@pytest.mark.parametrize("norm", list(FRN_NORMS))
@pytest.mark.parametrize("name", ["COCO-Detection/retinanet_R_50_FPN_1x.yaml",
                                  "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.yaml"])
def test_yacs_freeze_at_after_to_frn(name, norm):
    """The override after to_frn (the README: overrides win), as with keep_weights. For C4 the ROI heads'
    res5 stays trainable, as in detectron2."""
    cfg = frn_det.to_frn(frn_det.add_frn_config(model_zoo.get_config(name)), norm, keep_weights=True)
    cfg.MODEL.DEVICE = "meta"
    cfg.MODEL.FRN.LEARNABLE_EPS = FRN_NORMS[norm].takes_options  # eps_l freezes too

    def build(freeze_at):
        cfg.MODEL.BACKBONE.FREEZE_AT = freeze_at
        with torch.device("meta"):
            return build_model(cfg)

    _check(build, lambda m: getattr(m.backbone, "bottom_up", m.backbone))


@pytest.mark.parametrize("norm", list(FRN_NORMS))
def test_lazy_freeze_at_in_frn_det_config(norm):
    """configs/lazy: detectron2's ResNet made FRN-aware by make_frn_aware after it froze its stages."""
    cfg = LazyConfig.load(LAZY_R101)
    wrapper = cfg.model.backbone.bottom_up
    wrapper.resnet.stem.norm = wrapper.resnet.stages.norm = norm
    wrapper.resnet.stages.depth = 50

    def build(freeze_at):
        wrapper.resnet.freeze_at = freeze_at
        with torch.device("meta"):
            return instantiate(cfg.model)

    _check(build, lambda m: m.backbone.bottom_up)


@pytest.mark.parametrize("norm", list(FRN_NORMS))
def test_lazy_freeze_at_after_to_frn(norm):
    cfg = frn_det.to_frn(model_zoo.get_config("COCO-Detection/retinanet_R_50_FPN_1x.py"), norm)

    def build(freeze_at):
        cfg.model.backbone.bottom_up.freeze_at = freeze_at
        with torch.device("meta"):
            return instantiate(cfg.model)

    _check(build, lambda m: m.backbone.bottom_up)


def test_frozen_frn_stages_run_and_train_the_rest():
    """A frozen FRN stage (the fused block end included) runs forward and backward, its parameters get
    no gradient, the unfrozen ones do."""
    cfg = frn_det.to_frn(model_zoo.get_config("COCO-Detection/retinanet_R_50_FPN_1x.yaml"))
    cfg.MODEL.DEVICE, cfg.MODEL.BACKBONE.FREEZE_AT, cfg.MODEL.RESNETS.DEPTH = "cpu", 2, 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    resnet = build_model(cfg).backbone.bottom_up
    resnet(torch.randn(2, 3, 64, 64))["res5"].square().mean().backward()
    for name, p in resnet.named_parameters():
        assert (p.grad is None) == name.startswith(("stem.", "res2.")), name


@pytest.mark.parametrize("norm", ["BN", "FrozenBN", "GN"])
def test_detectron2_norms_freeze_as_in_detectron2s_own_backbone(norm):
    """With detectron2's norms frn_det's backbone is detectron2's, frozen stages included."""
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.backbone.resnet import build_resnet_backbone

    from frn_det.modeling.backbone import build_resnet_frn_backbone
    from frn_det.modeling.backbone.resnet import _FRN_CLASSES

    cfg = frn_det.add_frn_config(model_zoo.get_config("COCO-Detection/faster_rcnn_R_50_C4_1x.yaml"))
    cfg.MODEL.RESNETS.NORM = norm
    for freeze_at in FREEZE_AT:
        cfg.MODEL.BACKBONE.FREEZE_AT = freeze_at
        with torch.device("meta"):
            ours, stock = (build(cfg, ShapeSpec(channels=3)) for build in (build_resnet_frn_backbone,
                                                                           build_resnet_backbone))
        assert _trainable(ours) == _trainable(stock)
        stock_class = {ours: theirs for theirs, ours in _FRN_CLASSES.items()}  # the FRN-aware ones' bases
        assert [stock_class.get(type(m), type(m)) for m in ours.modules()] == [type(m) for m in stock.modules()]
