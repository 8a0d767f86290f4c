"""FRN-aware R-CNN heads (box, mask, semantic FPN), the refusal of a ReLU after TLU, and the Mask R-CNN
configs: the demo trains, evaluates bbox and segm, and predicts masks."""
import math
import os

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead
from detectron2.modeling.roi_heads.box_head import FastRCNNConvFCHead
from detectron2.modeling.roi_heads.mask_head import MaskRCNNConvUpsampleHead
from same_as_detectron2 import assert_same_as_detectron2

import frn_det
from frn_det import model_zoo
from frn_det.config import build_cfg
from frn_det.layers import FRN
from frn_det.modeling import (FastRCNNConvFCHeadFRN, MaskRCNNConvUpsampleHeadFRN, SemSegFPNHeadFRN, build_model,
                              find_relu_after_tlu)

DEMO = "demo/mask_rcnn_frn_R18_shapes.yaml"


def _head_cfg(norm, dim):
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.MODEL.ROI_BOX_HEAD.merge_from_list(["NUM_CONV", 2, "CONV_DIM", dim, "NUM_FC", 1, "FC_DIM", 16, "NORM", norm])
    cfg.MODEL.ROI_MASK_HEAD.merge_from_list(["NUM_CONV", 2, "CONV_DIM", dim, "NORM", norm])
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.SEM_SEG_HEAD.merge_from_list(["IN_FEATURES", ["p2", "p3"], "CONVS_DIM", dim, "COMMON_STRIDE", 4,
                                            "NUM_CLASSES", 3, "NORM", norm])
    return cfg


# (detectron2's head, frn_det's, input shape, input, function that runs the layers)
HEADS = {
    "box": (FastRCNNConvFCHead, FastRCNNConvFCHeadFRN, ShapeSpec(channels=8, height=7, width=7),
            lambda: torch.randn(6, 8, 7, 7), lambda head, x: head(x)),
    "mask": (MaskRCNNConvUpsampleHead, MaskRCNNConvUpsampleHeadFRN, ShapeSpec(channels=8, height=14, width=14),
             lambda: torch.randn(6, 8, 14, 14), lambda head, x: head.layers(x)),
    "sem_seg": (SemSegFPNHead, SemSegFPNHeadFRN,
                {"p2": ShapeSpec(channels=8, stride=4), "p3": ShapeSpec(channels=8, stride=8)},
                lambda: {"p2": torch.randn(2, 8, 16, 16), "p3": torch.randn(2, 8, 8, 8)},
                lambda head, x: head.layers(x)),
}


def _build_pair(kind, norm, dim):
    stock_cls, frn_cls, shape, make_input, run = HEADS[kind]
    cfg = _head_cfg(norm, dim)
    torch.manual_seed(0)
    stock = stock_cls(cfg, shape)
    torch.manual_seed(0)
    ours = frn_cls(cfg, shape)
    torch.manual_seed(1)
    return stock, ours, make_input(), run


def _norm_conv_outputs(head, x, run):
    """Output of every conv that has a norm, in order."""
    convs = [m for m in head.modules() if getattr(m, "norm", None) is not None]
    outputs = []
    handles = [c.register_forward_hook(lambda m, i, o: outputs.append(o)) for c in convs]
    try:
        with torch.no_grad():
            run(head, x)
    finally:
        for h in handles:
            h.remove()
    assert len(outputs) == len(convs) >= 2
    return outputs


@pytest.mark.parametrize("norm", ["FRN", "GFRN", "GN_TLU"])
@pytest.mark.parametrize("kind", list(HEADS))
def test_frn_head_keeps_negative_tau(kind, norm):
    """Every tau at -1: the FRN-aware head's conv features go below 0 and stop at -1 (TLU, no ReLU);
    detectron2's head, with the same state dict (same names), clips them at 0. So for every norm name
    that ends in TLU."""
    stock, ours, x, run = _build_pair(kind, norm, 32)
    with torch.no_grad():
        for m in ours.modules():
            if getattr(m, "tau", None) is not None:
                m.tau.fill_(-1.0)
    stock.load_state_dict(ours.state_dict())  # strict: the same names
    for out in _norm_conv_outputs(ours, x, run):
        assert out.min() < -0.5 and out.min() >= -1.0
    for out in _norm_conv_outputs(stock, x, run):
        assert out.min() >= 0
    assert find_relu_after_tlu(ours) == [] and find_relu_after_tlu(stock)


@pytest.mark.parametrize("kind", list(HEADS))
def test_gn_head_is_detectron2s(kind):
    """With GN: the same initial weights under the same seed, the same state dict keys, the same outputs."""
    assert_same_as_detectron2(*_build_pair(kind, "GN", 32))


def _small_rcnn(*opts):
    cfg = build_cfg(model_zoo.get_config_file(DEMO), [
        "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.ROI_BOX_HEAD.CONV_DIM", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "32",
        "MODEL.ROI_MASK_HEAD.CONV_DIM", "32", *opts])
    return cfg


BACKBONE_FIX = 'MODEL.BACKBONE.NAME "build_resnet_frn_backbone"'


@pytest.mark.parametrize("opts, module, fix", [
    (["MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead"], "roi_heads.box_head.conv1",
     'MODEL.ROI_BOX_HEAD.NAME "FastRCNNConvFCHeadFRN"'),
    (["MODEL.ROI_MASK_HEAD.NAME", "MaskRCNNConvUpsampleHead"], "roi_heads.mask_head.mask_fcn1",
     'MODEL.ROI_MASK_HEAD.NAME "MaskRCNNConvUpsampleHeadFRN"'),
    (["MODEL.META_ARCHITECTURE", "PanopticFPN", "MODEL.SEM_SEG_HEAD.NAME", "SemSegFPNHead",
      "MODEL.SEM_SEG_HEAD.NORM", "FRN", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32"], "sem_seg_head.p2.0",
     'MODEL.SEM_SEG_HEAD.NAME "SemSegFPNHeadFRN"'),
    (["MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone"], "backbone.bottom_up.stem.conv1", BACKBONE_FIX),
    (["MODEL.META_ARCHITECTURE", "RetinaNet", "MODEL.RETINANET.NORM", "FRN", "MODEL.RETINANET.NUM_CONVS", "1",
      "MODEL.RETINANET.IN_FEATURES", "['p3', 'p4']", "MODEL.ANCHOR_GENERATOR.SIZES", "[[32], [64]]"],
     "head.cls_subnet.2", 'MODEL.META_ARCHITECTURE "RetinaNetFRN"'),
])
def test_relu_after_tlu_is_refused_naming_module_and_fix(opts, module, fix):
    with pytest.raises(ValueError) as e:
        build_model(_small_rcnn(*opts))
    message = str(e.value)
    assert "max(max(y, tau), 0)" in message and module in message and fix in message and '"FRN_NoTLU"' in message


@pytest.mark.parametrize("norm, layer, plain", [("GN_TLU", "GroupNormTLU", '"GN"'), ("GFRN", "GFRN", '"GFRN_NoTLU"')])
def test_refusal_names_the_norms_own_form_without_tlu(norm, layer, plain):
    """A stock box head with another norm that ends in TLU: the message names that layer and its no-TLU name."""
    with pytest.raises(ValueError) as e:
        build_model(_small_rcnn("MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead", "MODEL.ROI_BOX_HEAD.NORM", norm))
    message = str(e.value)
    assert f"output of {layer} with TLU" in message and plain in message and '"FRN_NoTLU"' not in message


def test_relu_after_tlu_in_a_users_module_is_refused():
    from detectron2.layers import Conv2d

    from frn_det.modeling import check_no_relu_after_tlu

    tower = torch.nn.Sequential(Conv2d(4, 4, 3, norm=FRN(4)), torch.nn.ReLU(),
                                Conv2d(4, 4, 3, norm=FRN(4, tlu=False)), torch.nn.ReLU())
    with pytest.raises(ValueError, match=r"  1 \(Sequential\): use a module that applies no ReLU after a norm"):
        check_no_relu_after_tlu(tower)  # the second ReLU follows FRN without TLU
    tower[0].activation = torch.nn.functional.relu  # inside the conv: the nn.ReLU after it then follows a ReLU
    assert find_relu_after_tlu(tower) == ["0"]
    conv_after_tlu = torch.nn.Sequential(Conv2d(4, 4, 3, norm=FRN(4)), torch.nn.Conv2d(4, 4, 1))
    assert check_no_relu_after_tlu(conv_after_tlu) is conv_after_tlu


@pytest.mark.parametrize("opts", [
    [],  # the demo: every TLU feeds a conv, an add, or the output
    ["MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead", "MODEL.ROI_BOX_HEAD.NORM", "FRN_NoTLU"],
    ["MODEL.META_ARCHITECTURE", "PanopticFPN", "MODEL.SEM_SEG_HEAD.NAME", "SemSegFPNHeadFRN",
     "MODEL.SEM_SEG_HEAD.NORM", "FRN", "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32"],
    ["MODEL.META_ARCHITECTURE", "RetinaNetFRN", "MODEL.RETINANET.NORM", "FRN", "MODEL.RETINANET.NUM_CONVS", "1",
     "MODEL.RETINANET.IN_FEATURES", "['p3', 'p4']", "MODEL.ANCHOR_GENERATOR.SIZES", "[[32], [64]]"],
])
def test_models_without_relu_after_tlu_build(opts):
    model = build_model(_small_rcnn(*opts))
    assert sum(isinstance(m, FRN) and m.tau is not None for m in model.modules()) > 10


@pytest.mark.parametrize("name", ["mask_rcnn_frn_R_50_FPN_scratch_9x.yaml", DEMO, "demo/mask_rcnn_gn_R18_shapes.yaml"])
def test_mask_rcnn_configs_build(name):
    assert name in model_zoo.list_configs()
    cfg = model_zoo.get_config(name)
    assert cfg.MODEL.MASK_ON and cfg.MODEL.WEIGHTS == "" and cfg.MODEL.BACKBONE.FREEZE_AT == 0
    assert cfg.MODEL.ROI_BOX_HEAD.NUM_CONV == 4 and cfg.MODEL.ROI_BOX_HEAD.NUM_FC == 1
    model = model_zoo.get(name, device="cpu")
    norms = {part: {type(m).__name__ for n, m in model.named_modules() if n.startswith(part) and
                    isinstance(m, (FRN, torch.nn.GroupNorm))} for part in
             ("backbone.bottom_up", "backbone.fpn", "roi_heads.box_head", "roi_heads.mask_head")}
    want = "GroupNorm" if "_gn_" in name else "FRN"
    assert all(found == {want} for found in norms.values()), norms
    if want == "FRN":
        fpn = [m for n, m in model.named_modules() if n.startswith("backbone.fpn") and isinstance(m, FRN)]
        assert all(m.tau is None for m in fpn)
        assert not any(isinstance(m, torch.nn.ReLU) or getattr(m, "activation", None) is not None
                       for n, m in model.named_modules() if n.startswith("roi_heads.box_head.conv"))
    if name.startswith("mask_rcnn_frn_R_50"):  # detectron2's scratch 9x GN recipe
        assert cfg.MODEL.RESNETS.DEPTH == 50 and not cfg.MODEL.RESNETS.STRIDE_IN_1X1
        assert (cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR, cfg.SOLVER.MAX_ITER) == (64, 0.08, 202500)
        assert tuple(cfg.SOLVER.STEPS) == (187500, 197500)


def test_demo_trains_evaluates_bbox_and_segm_and_predicts_masks(tiny_shapes, tmp_path):
    import cv2
    from detectron2.data import DatasetCatalog

    from frn_det.engine import Trainer
    from frn_det.predict import Predictor

    cfg = _small_rcnn("DATASETS.TRAIN", f"('{tiny_shapes}',)", "DATASETS.TEST", f"('{tiny_shapes}',)",
                      "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.WARMUP_ITERS", "1",
                      "TEST.DETECTIONS_PER_IMAGE", "10",
                      "SOLVER.CHECKPOINT_PERIOD", "1000", "DATALOADER.NUM_WORKERS", "0",
                      "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0", "OUTPUT_DIR", str(tmp_path))
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    results = Trainer.test(cfg, trainer.model)
    assert set(results) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        assert all(math.isfinite(results[task][k]) and 0 <= results[task][k] <= 100 for k in ("AP", "AP50", "AP75"))

    cfg.MODEL.WEIGHTS = os.path.join(tmp_path, "model_final.pth")
    image = cv2.imread(DatasetCatalog.get(tiny_shapes)[0]["file_name"])
    instances = Predictor(cfg)(image)["instances"]
    assert len(instances) > 0 and instances.pred_masks.shape == (len(instances), *image.shape[:2])
    assert instances.pred_masks.dtype == torch.bool and np.isfinite(instances.scores.numpy()).all()
