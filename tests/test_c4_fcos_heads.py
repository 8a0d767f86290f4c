"""FRN-aware C4 ROI heads (res5 runs on every region) and FCOS head: detectron2's with BN/GN (equal
weights, equal outputs), with FRN no ReLU after TLU; and the FRN-aware deformable block."""
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.meta_arch.fcos import FCOSHead
from detectron2.modeling.roi_heads import Res5ROIHeads
from same_as_detectron2 import assert_same_as_detectron2

import frn_det
from frn_det.modeling import FCOSHeadFRN, Res5ROIHeadsFRN, find_relu_after_tlu


def _c4_pair(norm):
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.MODEL.RESNETS.merge_from_list(["RES2_OUT_CHANNELS", 16, "WIDTH_PER_GROUP", 4, "NORM", norm])
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    shape = {"res4": ShapeSpec(channels=64, stride=16)}
    torch.manual_seed(0)
    stock = Res5ROIHeads(cfg, shape)
    torch.manual_seed(0)
    cfg.MODEL.ROI_HEADS.NAME = "Res5ROIHeadsFRN"
    ours = ROI_HEADS_REGISTRY.get(cfg.MODEL.ROI_HEADS.NAME)(cfg, shape)
    assert type(ours) is Res5ROIHeadsFRN
    return stock, ours, torch.randn(6, 64, 8, 8), lambda head, x: head.res5(x)


def _fcos_pair(norm):
    kwargs = dict(input_shape=[ShapeSpec(channels=8)] * 2, conv_dims=[32, 32], num_classes=3, norm=norm)
    torch.manual_seed(0)
    stock = FCOSHead(**kwargs)
    torch.manual_seed(0)
    ours = FCOSHeadFRN(**kwargs)
    x = [torch.randn(2, 8, 12, 12), torch.randn(2, 8, 6, 6)]
    return stock, ours, x, lambda head, x: torch.cat([torch.cat([head.cls_subnet(f), head.bbox_subnet(f)]).flatten()
                                                      for f in x])


PAIRS = {"c4": _c4_pair, "fcos": _fcos_pair}


@pytest.mark.parametrize("norm", ["BN", "GN"])
@pytest.mark.parametrize("kind", list(PAIRS))
def test_with_bn_or_gn_the_head_is_detectron2s(kind, norm):
    stock, ours, x, run = PAIRS[kind](norm)
    assert_same_as_detectron2(stock, ours, x, run)
    if kind == "fcos":  # and the whole head: logits, boxes, centerness
        with torch.no_grad():
            assert all(torch.equal(a, b) for theirs, mine in zip(stock(x), ours(x)) for a, b in zip(theirs, mine))
    assert find_relu_after_tlu(ours) == find_relu_after_tlu(stock) == []


@pytest.mark.parametrize("norm", ["FRN", "GN_TLU"])
@pytest.mark.parametrize("kind", list(PAIRS))
def test_with_frn_no_relu_follows_a_tlu(kind, norm):
    """Every tau at -1: the FRN-aware head's features go below 0 and stop at -1; detectron2's clips them."""
    stock, ours, x, run = PAIRS[kind](norm)
    assert find_relu_after_tlu(ours) == [] and find_relu_after_tlu(stock)
    with torch.no_grad():
        for m in ours.modules():
            if getattr(m, "tau", None) is not None:
                m.tau.fill_(-1.0)
        out = run(ours, x)
    assert -1.0 <= out.min() < -0.5
    stock.load_state_dict(ours.state_dict(), strict=False)  # detectron2's has no block-level tlu.tau
    with torch.no_grad():
        assert run(stock, x).min() >= 0


class _FakeDeformConv(torch.nn.Conv2d):
    """A plain conv in place of detectron2's compiled deformable conv: the block's activations are tested."""

    def __init__(self, *args, deformable_groups=1, norm=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm, self.activation = norm, None

    def forward(self, x, offset, mask=None):
        out = super().forward(x) + offset[:, :1].mean() * 0 + (0 if mask is None else mask[:, :1].mean() * 0)
        return self.norm(out) if self.norm is not None else out


@pytest.mark.parametrize("modulated", [False, True])
@pytest.mark.parametrize("norm", ["GN", "FRN"])
def test_deformable_block(monkeypatch, norm, modulated):
    import detectron2.modeling.backbone.resnet as d2_resnet

    from frn_det.modeling.backbone import FRNDeformBottleneckBlock, make_frn_aware

    monkeypatch.setattr(d2_resnet, "DeformConv", _FakeDeformConv)
    monkeypatch.setattr(d2_resnet, "ModulatedDeformConv", _FakeDeformConv)
    torch.manual_seed(0)
    stock = d2_resnet.DeformBottleneckBlock(32, 64, bottleneck_channels=32, stride=1, norm=norm,
                                            deform_modulated=modulated)
    ours = make_frn_aware(torch.nn.Sequential(d2_resnet.DeformBottleneckBlock(
        32, 64, bottleneck_channels=32, stride=1, norm=norm, deform_modulated=modulated)), norm)[0]
    assert type(ours) is FRNDeformBottleneckBlock
    ours.load_state_dict(stock.state_dict(), strict=norm == "GN")
    x = torch.randn(2, 32, 10, 10)
    with torch.no_grad():
        if norm == "GN":
            assert torch.equal(stock(x), ours(x))
            return
        assert find_relu_after_tlu(ours) == [] and find_relu_after_tlu(stock)
        for m in ours.modules():
            if getattr(m, "tau", None) is not None:
                m.tau.fill_(-1.0)
        assert -1.0 <= ours(x).min() < -0.5
