"""frn_det.to_frn with detectron2's own model zoo as the client: every ResNet-based config it ships (yaml
and LazyConfig) converts and builds with FRN in every norm and no ReLU on a TLU's output; a converted
model is checked by plain detectron2 (build_model for yacs, through the FRNChecked meta-architecture;
config.instantiate for LazyConfig); refusals name the fix in the user's config system."""
import logging
import os

import pytest
import torch
from detectron2 import model_zoo
from detectron2.config import CfgNode, instantiate
from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling import build_model as detectron2_build_model
from detectron2.modeling.backbone import BasicStem, BottleneckBlock
from detectron2.modeling.roi_heads import FastRCNNConvFCHead
from omegaconf import DictConfig
from torch import nn

import frn_det
from frn_det.layers import FRN, FRN_NORMS, GFRN, TLU, GroupNormTLU
from frn_det.modeling import build_lazy_model, build_model, find_relu_after_tlu

ZOO = os.path.dirname(model_zoo.get_config_file("Base-RCNN-FPN.yaml"))
# every config but the quick schedules (tests of detectron2's own), and of common/ the models
ZOO_CONFIGS = sorted(
    name for name in (os.path.relpath(os.path.join(d, f), ZOO) for d, _, files in os.walk(ZOO) for f in files
                      if f.endswith((".yaml", ".py")))
    if not name.startswith("quick_schedules/") and (not name.startswith("common/") or name.startswith("common/models/")))
# built on another backbone than detectron2's ResNet: to_frn refuses them
NOT_RESNET = ("regnet", "mmdet", "torchvision", "vitdet")


def _compiled_ops():
    try:
        from detectron2 import _C  # noqa: F401
    except ImportError:
        return False
    return True


def _load(name):
    cfg = model_zoo.get_config(name)
    if isinstance(cfg, CfgNode):
        cfg.MODEL.DEVICE = "meta"
    return cfg


def _build(cfg, build=build_model):
    """yacs: `build` (frn_det's build_model, or detectron2's); LazyConfig: detectron2's own instantiate.
    On the meta device: the modules are real, their tensors take no memory or init time."""
    with torch.device("meta"):
        return build(cfg) if isinstance(cfg, CfgNode) else instantiate(cfg.model)


def _norms(model):
    return [m for m in model.modules() if isinstance(m, (FRN, GFRN, GroupNormTLU, nn.GroupNorm, nn.modules.batchnorm
                                                         ._BatchNorm, FrozenBatchNorm2d))]


@pytest.mark.parametrize("name", ZOO_CONFIGS)
def test_every_zoo_config_converts_and_builds(name):
    if any(k in name for k in NOT_RESNET):
        with pytest.raises(ValueError, match="to_frn converts models built on detectron2's ResNet"):
            frn_det.to_frn(_load(name))
        return
    if "dconv" in name and not _compiled_ops():
        pytest.skip("deformable conv needs detectron2's compiled ops (detectron2._C), missing here")
    cfg = frn_det.to_frn(_load(name))
    models = [_build(cfg)]
    if isinstance(cfg, CfgNode):  # a project's DefaultTrainer builds with detectron2's own build_model
        models.append(_build(cfg, detectron2_build_model))
        assert cfg.MODEL.META_ARCHITECTURE == "FRNChecked"
        assert {type(m) for m in models} == {META_ARCH_REGISTRY.get(cfg.MODEL.FRN.META_ARCHITECTURE)}
    for model in models:
        assert find_relu_after_tlu(model) == []
        norms = _norms(model)
        assert norms and all(isinstance(m, FRN) for m in norms), {type(m).__name__ for m in norms}
        assert any(m.tau is not None for m in norms)
        fpn = [m for n, m in model.named_modules() if n.startswith("backbone.fpn") and isinstance(m, FRN)]
        assert all(m.tau is None for m in fpn)  # no activation follows the FPN's convs


# what each norm name builds where an activation follows (backbone, heads) and in the FPN
LAYERS = {"FRN": (FRN, FRN), "FRN_NoTLU": (FRN, FRN), "FRN_ReLU": (FRN, FRN), "GFRN": (GFRN, GFRN),
          "GFRN_NoTLU": (GFRN, GFRN), "GN_TLU": (GroupNormTLU, nn.GroupNorm)}


@pytest.mark.parametrize("norm", list(FRN_NORMS))
@pytest.mark.parametrize("name", ["COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.yaml",
                                  "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.py"])
def test_every_frn_norm_name(name, norm):
    assert set(LAYERS) == set(FRN_NORMS)
    model = _build(frn_det.to_frn(_load(name), norm))
    assert find_relu_after_tlu(model) == []
    with_activation, without_tlu = LAYERS[norm]  # without TLU: the FPN, and before each residual add
    norms = {n: type(m) for n, m in model.named_modules()
             if isinstance(m, (*LAYERS[norm], FrozenBatchNorm2d, nn.modules.batchnorm._BatchNorm))}
    assert with_activation in norms.values() and set(norms.values()) <= {with_activation, without_tlu}
    assert all(cls is without_tlu for n, cls in norms.items() if n.startswith("backbone.fpn"))
    tlu = FRN_NORMS[norm].tlu
    assert any(getattr(m, "tau", None) is not None or isinstance(m, TLU) for m in model.modules()) == tlu


def test_unknown_norm_or_config_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown FRN norm 'BN'; valid: 'FRN', 'FRN_NoTLU'"):
        frn_det.to_frn(_load("Base-RetinaNet.yaml"), "BN")
    with pytest.raises(TypeError, match="to_frn takes a yacs CfgNode or a LazyConfig .* got str"):
        frn_det.to_frn("COCO-Detection/retinanet_R_50_FPN_1x.yaml")


def test_yacs_changes_are_returned_logged_and_stable(caplog):
    cfg = _load("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.yaml")
    cfg.freeze()
    with caplog.at_level(logging.INFO, logger="frn_det"):
        new, changes = frn_det.to_frn(cfg, return_changes=True)
    assert type(new) is CfgNode and cfg.MODEL.RESNETS.NORM == "FrozenBN"  # a copy, the input untouched
    assert changes == [
        'MODEL.BACKBONE.NAME: "build_resnet_backbone" -> "build_resnet_frn_backbone"',
        "MODEL.BACKBONE.FREEZE_AT: 2 -> 0",
        'MODEL.RESNETS.NORM: "FrozenBN" -> "FRN"',
        'MODEL.META_ARCHITECTURE: "GeneralizedRCNN" -> "FRNChecked"',
        'MODEL.FRN.META_ARCHITECTURE: None -> "GeneralizedRCNN"',
        'MODEL.ROI_HEADS.NAME: "Res5ROIHeads" -> "Res5ROIHeadsFRN"',
        'MODEL.ROI_MASK_HEAD.NAME: "MaskRCNNConvUpsampleHead" -> "MaskRCNNConvUpsampleHeadFRN"',
        'MODEL.ROI_MASK_HEAD.NORM: "" -> "FRN"',
        'MODEL.WEIGHTS: "detectron2://ImageNetPretrained/MSRA/R-50.pkl" -> ""',
        "MODEL.PIXEL_STD: [1.0, 1.0, 1.0] -> [57.375, 57.12, 58.395]",
    ]
    assert all(change in caplog.text for change in changes)
    assert frn_det.to_frn(new, return_changes=True)[1] == []
    kept = frn_det.to_frn(cfg, keep_weights=True)
    assert kept.MODEL.WEIGHTS == cfg.MODEL.WEIGHTS and list(kept.MODEL.PIXEL_STD) == [1.0, 1.0, 1.0]


def test_lazy_config_and_its_model_node():
    cfg = model_zoo.get_config("COCO-Detection/fcos_R_50_FPN_1x.py")
    new, changes = frn_det.to_frn(cfg, "GN_TLU", return_changes=True)
    assert 'model.head.norm: "GN" -> "GN_TLU"' in changes and 'model.backbone.norm: None -> "GN"' in changes
    assert new.train.init_checkpoint == "" and cfg.train.init_checkpoint  # a copy
    assert new.model._target_ is build_lazy_model and new.model.model_class == "detectron2.modeling.meta_arch.fcos.FCOS"
    node = frn_det.to_frn(cfg.model)
    assert isinstance(node, DictConfig) and node._target_ is build_lazy_model
    assert node.backbone.bottom_up.freeze_at == 0 and cfg.model.backbone.bottom_up.freeze_at == 2
    assert frn_det.to_frn(new, "GN_TLU", return_changes=True)[1] == []


def test_converted_lazy_config_saves_as_yaml_and_stays_checked(tmp_path):
    from detectron2.config import LazyConfig

    cfg = frn_det.to_frn(model_zoo.get_config("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.py"))
    LazyConfig.save(cfg, str(tmp_path / "config.yaml"))
    loaded = LazyConfig.load(str(tmp_path / "config.yaml"))
    assert loaded.model._target_ == "frn_det.modeling.build_lazy_model"
    assert frn_det.to_frn(loaded, return_changes=True)[1] == []
    assert find_relu_after_tlu(_build(loaded)) == []
    loaded.model.roi_heads.res5.block_class = BottleneckBlock
    assert "model.roi_heads.res5.block_class" in _refusal(loaded)


def test_not_a_resnet_is_refused():
    cfg = _load("Base-RetinaNet.yaml")
    cfg.MODEL.BACKBONE.NAME = "build_vit_backbone"
    with pytest.raises(ValueError, match="MODEL.BACKBONE.NAME is 'build_vit_backbone'"):
        frn_det.to_frn(cfg)


def _refusal(cfg, build=build_model):
    with pytest.raises(ValueError) as e:
        _build(cfg, build)
    return str(e.value)


def test_lazy_model_built_by_detectron2s_instantiate_is_checked():
    """A user's edit after to_frn that puts a ReLU after TLU back: detectron2's instantiate refuses it,
    naming the LazyConfig target to use, and for C4 the ROI heads' res5."""
    cfg = frn_det.to_frn(model_zoo.get_config("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.py"))
    cfg.model.roi_heads.res5.block_class = BottleneckBlock
    message = _refusal(cfg)
    assert "roi_heads.res5.0.conv1" in message and "(BottleneckBlock)" in message
    assert "model.roi_heads.res5.block_class = frn_det.modeling.backbone.FRNBottleneckBlock" in message
    assert "MODEL." not in message and "frn_det.to_frn(cfg)" in message

    cfg = frn_det.to_frn(model_zoo.get_config("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.py"))
    cfg.model.roi_heads.box_head.update(_target_=FastRCNNConvFCHead, conv_dims=[16])
    cfg.model.backbone.bottom_up.stem._target_ = BasicStem
    message = _refusal(cfg)
    assert "model.roi_heads.box_head._target_ = frn_det.modeling.FastRCNNConvFCHeadFRN" in message
    assert "model.backbone.bottom_up.stem._target_ = FRNStem" in message


BUILDERS = {"frn_det": build_model, "detectron2": detectron2_build_model}


@pytest.mark.parametrize("builder", BUILDERS)
def test_yacs_refusal_for_c4_names_the_roi_heads(builder):
    cfg = frn_det.to_frn(_load("COCO-Detection/faster_rcnn_R_50_C4_1x.yaml"))
    cfg.MODEL.ROI_HEADS.NAME = "Res5ROIHeads"
    message = _refusal(cfg, BUILDERS[builder])
    assert "roi_heads.res5.0.conv1" in message and 'use MODEL.ROI_HEADS.NAME "Res5ROIHeadsFRN"' in message
    assert "MODEL.BACKBONE.NAME" not in message


@pytest.mark.parametrize("builder", BUILDERS)
@pytest.mark.parametrize("name, opts, fix", [
    ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
     ["MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead", "MODEL.ROI_BOX_HEAD.NUM_CONV", "2"],
     '  roi_heads.box_head.conv1, roi_heads.box_head.conv2 (FastRCNNConvFCHead): use MODEL.ROI_BOX_HEAD.NAME '
     '"FastRCNNConvFCHeadFRN"'),
    ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml", ["MODEL.ROI_MASK_HEAD.NAME", "MaskRCNNConvUpsampleHead"],
     '(MaskRCNNConvUpsampleHead): use MODEL.ROI_MASK_HEAD.NAME "MaskRCNNConvUpsampleHeadFRN"'),
    ("COCO-Detection/retinanet_R_50_FPN_1x.yaml", ["MODEL.FRN.META_ARCHITECTURE", "RetinaNet"],
     '(RetinaNetHead): use MODEL.FRN.META_ARCHITECTURE "RetinaNetFRN"'),
    ("COCO-Detection/retinanet_R_50_FPN_1x.yaml", ["MODEL.BACKBONE.NAME", "build_retinanet_resnet_fpn_backbone"],
     '(BasicStem, BottleneckBlock): use MODEL.BACKBONE.NAME "build_resnet_frn_backbone"'),
], ids=["box_head", "mask_head", "retinanet_head", "backbone"])
def test_stock_module_put_back_after_to_frn_is_refused(name, opts, fix, builder):
    """A user's edit after to_frn that puts detectron2's module back: refused by detectron2's own
    build_model (a project's DefaultTrainer) as by frn_det's, naming the yacs key that fixes it."""
    cfg = frn_det.to_frn(_load(name))
    cfg.merge_from_list(opts)
    message = _refusal(cfg, BUILDERS[builder])
    assert fix in message and "frn_det.to_frn(cfg)" in message, message
    assert "_target_" not in message


def test_checked_model_is_the_architectures_own_and_their_checkpoints_load_both_ways(tmp_path):
    """FRNChecked returns the model of MODEL.FRN.META_ARCHITECTURE itself: the same type and state names,
    so a checkpoint of detectron2's build of that name loads into the checked build, and back."""
    from detectron2.checkpoint import DetectionCheckpointer

    checked = frn_det.to_frn(model_zoo.get_config("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml"))
    checked.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS",
                             "64", "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "32",
                             "MODEL.ROI_MASK_HEAD.CONV_DIM", "32"])
    plain = checked.clone()
    plain.MODEL.META_ARCHITECTURE = checked.MODEL.FRN.META_ARCHITECTURE
    assert checked.MODEL.META_ARCHITECTURE == "FRNChecked" and plain.MODEL.META_ARCHITECTURE == "GeneralizedRCNN"
    for source_cfg, target_cfg in [(plain, checked), (checked, plain)]:
        source, target = detectron2_build_model(source_cfg), detectron2_build_model(target_cfg)
        assert type(source) is type(target) and source.state_dict().keys() == target.state_dict().keys()
        DetectionCheckpointer(source, save_dir=str(tmp_path)).save("source")
        DetectionCheckpointer(target).load(str(tmp_path / "source.pth"))
        trained, loaded = source.state_dict(), target.state_dict()
        assert "backbone.bottom_up.res5.1.tlu.tau" in loaded
        assert all(torch.equal(trained[k], loaded[k]) for k in trained)


def test_converted_yacs_config_dumps_reloads_and_stays_checked(tmp_path):
    """The config.yaml a project's DefaultTrainer writes: it reloads into get_cfg() with add_frn_config
    (MODEL.FRN is frn_det's node) and builds checked; add_frn_config after to_frn keeps the architecture."""
    from detectron2.config import get_cfg

    cfg = frn_det.to_frn(_load("COCO-Detection/retinanet_R_50_FPN_1x.yaml"))
    (tmp_path / "config.yaml").write_text(cfg.dump())
    assert 'META_ARCHITECTURE: RetinaNetFRN' in cfg.MODEL.FRN.dump() and set(cfg.MODEL.FRN) == {"META_ARCHITECTURE"}
    loaded = frn_det.add_frn_config(get_cfg())
    loaded.merge_from_file(str(tmp_path / "config.yaml"))
    assert frn_det.to_frn(loaded, return_changes=True)[1] == []
    for again in (loaded, frn_det.add_frn_config(cfg.clone())):
        assert (again.MODEL.META_ARCHITECTURE, again.MODEL.FRN.META_ARCHITECTURE) == ("FRNChecked", "RetinaNetFRN")
        assert type(_build(again, detectron2_build_model)).__name__ == "RetinaNetFRN"
    loaded.MODEL.FRN.META_ARCHITECTURE = ""
    with pytest.raises(ValueError, match='MODEL.META_ARCHITECTURE "FRNChecked" builds the architecture named by '
                                         "MODEL.FRN.META_ARCHITECTURE and checks it; MODEL.FRN.META_ARCHITECTURE is "
                                         "'not set'"):
        _build(loaded, detectron2_build_model)


def test_frn_options_reach_a_model_built_by_detectron2():
    """MODEL.FRN's options: FRNChecked builds inside their scope, as frn_det's build_model."""
    from detectron2.config import get_cfg

    cfg = frn_det.add_frn_config(get_cfg())
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Detection/retinanet_R_50_FPN_1x.yaml"))
    cfg.MODEL.DEVICE = "meta"
    cfg = frn_det.to_frn(cfg)
    cfg.MODEL.FRN.EPS, cfg.MODEL.FRN.LEARNABLE_EPS = 1e-4, True
    frns = [m for m in _build(cfg, detectron2_build_model).modules() if isinstance(m, FRN)]
    assert frns and all(m.eps == 1e-4 and m.eps_l is not None for m in frns)


@pytest.mark.parametrize("name", ["COCO-Detection/retinanet_R_50_FPN_1x.yaml",
                                  "COCO-Detection/retinanet_R_50_FPN_1x.py"])
def test_converted_configs_share_no_list(name):
    """Editing one converted config's pixel std in place changes no later conversion."""
    def std(cfg):
        return cfg.MODEL.PIXEL_STD if isinstance(cfg, CfgNode) else cfg.model.pixel_std

    first = frn_det.to_frn(_load(name))
    expected = list(std(first))
    std(first)[0] = 1.0
    assert list(std(frn_det.to_frn(_load(name)))) == expected


@pytest.mark.parametrize("norm, error, words", [
    (frn_det.layers.FRNNorm("FRN"), TypeError, r"to_frn's norm is a norm name \('FRN', .*; got FRNNorm"),
    (["FRN"], TypeError, r"to_frn's norm is a norm name \('FRN', .*; got list \['FRN'\]"),
    (None, TypeError, r"to_frn's norm is a norm name \('FRN', .*; got NoneType None"),
], ids=["FRNNorm", "list", "None"])
def test_norm_that_is_not_a_name_is_a_clear_error(norm, error, words):
    with pytest.raises(error, match=words):
        frn_det.to_frn(_load("Base-RetinaNet.yaml"), norm)


def test_lazy_config_without_a_model_node_is_a_clear_error():
    cfg = model_zoo.get_config("COCO-Detection/fcos_R_50_FPN_1x.py")
    for model, shown in [(None, "None"), (3, "3"), ({"backbone": {}}, r"\{'backbone': \{\}\}")]:
        cfg.model = model
        with pytest.raises(ValueError, match=r"to_frn takes a LazyConfig whose `model` is a LazyCall node \(with a "
                                             rf"_target_\), .*; this one's `model` is {shown}"):
            frn_det.to_frn(cfg)


def test_lazy_config_without_optimizer_or_train_converts_its_model():
    cfg = model_zoo.get_config("COCO-Detection/fcos_R_50_FPN_1x.py")
    cfg.optimizer, cfg.train = None, None  # e.g. a config for inference only
    new = frn_det.to_frn(cfg)
    assert new.model._target_ is build_lazy_model and new.optimizer is None and new.train is None


def test_cfgnode_that_is_not_a_detectron2_config_is_a_clear_error():
    with pytest.raises(ValueError, match=r"to_frn takes a detectron2 config \(detectron2.config.get_cfg\(\) with your "
                                         r"file merged\); this CfgNode has no MODEL.BACKBONE.NAME, .* \(its keys: A\)"):
        frn_det.to_frn(CfgNode({"A": 1}))
    # a yaml file read alone, without get_cfg's defaults
    partial = CfgNode({"MODEL": {"META_ARCHITECTURE": "RetinaNet", "BACKBONE": {"NAME": "build_resnet_backbone"}}})
    with pytest.raises(ValueError, match=r"this CfgNode has no MODEL.RESNETS, MODEL.PIXEL_STD, INPUT.FORMAT "):
        frn_det.to_frn(partial)
    with pytest.raises(ValueError, match=r"with your file merged, the whole config, not its MODEL node\); this "):
        frn_det.to_frn(_load("Base-RetinaNet.yaml").MODEL)
