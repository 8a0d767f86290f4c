"""frn_det.to_frn: a detectron2 config (yacs or LazyConfig) of a ResNet-based model, switched to FRN.

Every place that has a norm takes FRN's placement: the ResNet (backbone, or the C4 ROI heads' res5)
and the heads that apply an activation after their norm get `norm` with frn_det's FRN-aware builders
(no ReLU after TLU); the FPN, whose convs have no activation after their norm, gets its form without
TLU. The RPN and keypoint heads have no norm. FRN trains from scratch: nothing is frozen, and the
ImageNet weights (made for BN) are dropped unless kept.
"""
import copy
import logging

from detectron2.config import CfgNode

from frn_det.layers import FRN_NORMS, norm_without_tlu
from frn_det.modeling.meta_arch.checked import ARCH_KEY, CHECKED, meta_architecture_of

logger = logging.getLogger("frn_det")

# the ImageNet pixel std that detectron2's from-scratch configs use, where a config's std is detectron2's
# [1, 1, 1] for the MSRA ImageNet weights (their conv1 absorbed it)
IMAGENET_STD = {"BGR": (57.375, 57.120, 58.395), "RGB": (58.395, 57.120, 57.375)}
_YACS_BACKBONES = {
    "build_resnet_backbone": "build_resnet_frn_backbone",  # plain, C4 and DC5
    "build_resnet_fpn_backbone": "build_resnet_frn_fpn_backbone",  # P2-P6
    "build_retinanet_resnet_fpn_backbone": "build_retinanet_resnet_frn_fpn_backbone",  # P3-P7
}
# (config node, detectron2's head name, frn_det's) of the R-CNN heads that have a norm
_YACS_ROI_HEADS = (("ROI_BOX_HEAD", "FastRCNNConvFCHead", "FastRCNNConvFCHeadFRN"),
                   ("ROI_MASK_HEAD", "MaskRCNNConvUpsampleHead", "MaskRCNNConvUpsampleHeadFRN"))


def to_frn(cfg, norm="FRN", *, keep_weights=False, return_changes=False):
    """`cfg` switched to FRN: a copy of the same kind (a yacs CfgNode, a LazyConfig as LazyConfig.load or
    detectron2's model_zoo.get_config return it, or a LazyConfig's `model` node).

    norm: any name of frn_det.layers.FRN_NORMS ("FRN", or Table 3's "GN_TLU", "GFRN", "FRN_ReLU", ...).
    keep_weights: keep MODEL.WEIGHTS / train.init_checkpoint (ImageNet weights are dropped by default).
    The changes ("KEY: old -> new") are logged, and returned as (cfg, changes) with return_changes.

    A yacs config's MODEL.META_ARCHITECTURE becomes "FRNChecked" (its architecture goes to
    MODEL.FRN.META_ARCHITECTURE), and a LazyConfig model's top node frn_det.modeling.build_lazy_model, so
    that detectron2's build_model and instantiate refuse the model if a ReLU still follows a TLU (e.g. a
    user's head)."""
    valid = ", ".join(repr(n) for n in FRN_NORMS)
    if not isinstance(norm, str):  # a name, as a yacs config holds
        raise TypeError(f"to_frn's norm is a norm name ({valid}; FRN's options go in MODEL.FRN, or after to_frn in "
                        f"a LazyConfig as L(FRNNorm)(name=..., eps=...)); got {type(norm).__name__} {norm!r}")
    if norm not in FRN_NORMS:
        raise ValueError(f"Unknown FRN norm {norm!r}; valid: {valid}")
    changes = []
    if isinstance(cfg, CfgNode):
        cfg = cfg.clone()
        cfg.defrost()
        _yacs_to_frn(cfg, norm, keep_weights, _Recorder(cfg, changes))
    elif _is_container(cfg) and hasattr(cfg, "keys"):
        cfg = copy.deepcopy(cfg)
        _lazy_to_frn(cfg, norm, keep_weights, _Recorder(cfg, changes))
    else:
        raise TypeError(f"to_frn takes a yacs CfgNode or a LazyConfig (an omegaconf DictConfig), or its `model` "
                        f"node; got {type(cfg).__name__}")
    logger.info("to_frn(norm=%r) changed:\n  %s", norm, "\n  ".join(changes) if changes else "nothing")
    return (cfg, changes) if return_changes else cfg


class _Recorder:
    """Sets `path` (dotted) in the config and records "path: old -> new" when the value changes."""

    def __init__(self, root, changes):
        self.root, self.changes = root, changes

    def __call__(self, path, value):
        *parents, leaf = path.split(".")
        node = self.root
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        old = _raw(node, leaf)
        if _same(old, value):
            return
        if isinstance(node, CfgNode):
            node[leaf] = value
        else:
            node[int(leaf) if leaf.isdigit() else leaf] = value
        self.changes.append(f"{path}: {_show(old)} -> {_show(value)}")


def _raw(node, key):
    """The value at `key`, an interpolation left unresolved; None where missing."""
    if isinstance(node, CfgNode):
        return node.get(key)
    if key not in node:
        return None
    child = node._get_node(key)
    return child._value() if hasattr(child, "_value") and not _is_container(child) else node[key]


def _same(a, b):
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a is b or (type(a) is type(b) and a == b)


def _show(value):
    if value is None or isinstance(value, (int, float, bool)):
        return repr(value)
    if isinstance(value, str):
        return f'"{value}"'
    if callable(value) and hasattr(value, "__qualname__"):
        return value.__qualname__
    return repr(list(value)) if isinstance(value, (list, tuple)) else repr(value)


# ---- yacs ----------------------------------------------------------------------------------------

# the keys to_frn reads from a yacs config: those of detectron2's get_cfg()
_YACS_KEYS = ("MODEL.BACKBONE.NAME", "MODEL.META_ARCHITECTURE", "MODEL.RESNETS", "MODEL.PIXEL_STD", "INPUT.FORMAT")


def _yacs_to_frn(cfg, norm, keep_weights, set_):
    missing = [key for key in _YACS_KEYS if not _has_key(cfg, key)]
    if missing:
        hint = ", the whole config, not its MODEL node" if "META_ARCHITECTURE" in cfg else ""
        raise ValueError(f"to_frn takes a detectron2 config (detectron2.config.get_cfg() with your file merged{hint}); "
                         f"this CfgNode has no {', '.join(missing)} (its keys: {', '.join(cfg.keys()) or 'none'})")
    model = cfg.MODEL
    backbone = model.BACKBONE.NAME
    if backbone in _YACS_BACKBONES:
        set_("MODEL.BACKBONE.NAME", _YACS_BACKBONES[backbone])
    elif backbone not in _YACS_BACKBONES.values():
        raise ValueError(f"to_frn converts detectron2's ResNet backbones ({', '.join(_YACS_BACKBONES)}) and "
                         f"frn_det's; MODEL.BACKBONE.NAME is {backbone!r}")
    set_("MODEL.BACKBONE.FREEZE_AT", 0)
    set_("MODEL.RESNETS.NORM", norm)
    if "fpn" in model.BACKBONE.NAME:
        set_("MODEL.FPN.NORM", norm_without_tlu(norm))
    arch = meta_architecture_of(cfg)  # a converted config's is under FRNChecked
    if arch == "RetinaNet":
        arch = "RetinaNetFRN"
    _yacs_checked(cfg, arch, set_)
    if arch == "RetinaNetFRN":
        set_("MODEL.RETINANET.NORM", norm)
    if arch in ("GeneralizedRCNN", "PanopticFPN"):
        if model.ROI_HEADS.NAME == "Res5ROIHeads":
            set_("MODEL.ROI_HEADS.NAME", "Res5ROIHeadsFRN")
        heads = _YACS_ROI_HEADS if model.MASK_ON else _YACS_ROI_HEADS[:1]
        if model.ROI_HEADS.NAME == "Res5ROIHeadsFRN":  # res5 is the box head
            heads = _YACS_ROI_HEADS[1:] if model.MASK_ON else ()
        for node, stock, ours in heads:
            _yacs_head(cfg, node, stock, ours, norm, set_)
    if arch in ("PanopticFPN", "SemanticSegmentor"):
        _yacs_head(cfg, "SEM_SEG_HEAD", "SemSegFPNHead", "SemSegFPNHeadFRN", norm, set_)
    if not keep_weights:
        set_("MODEL.WEIGHTS", "")
        _from_scratch_pixel_std(model.PIXEL_STD, cfg.INPUT.FORMAT, "MODEL.PIXEL_STD", set_)


def _yacs_checked(cfg, arch, set_):
    """MODEL.META_ARCHITECTURE becomes FRNChecked, which builds `arch` (MODEL.FRN.META_ARCHITECTURE) and
    refuses it with a ReLU after TLU: detectron2's own build_model (a project's DefaultTrainer) checks it."""
    if "FRN" not in cfg.MODEL:  # a config without add_frn_config gets MODEL.FRN with this one key
        cfg.MODEL.FRN = CfgNode()
    set_("MODEL.META_ARCHITECTURE", CHECKED)
    set_(ARCH_KEY, arch)


def _has_key(cfg, dotted):
    node = cfg
    for key in dotted.split("."):
        if not isinstance(node, CfgNode) or key not in node:
            return False
        node = node[key]
    return True


def _yacs_head(cfg, node, stock, ours, norm, set_):
    """detectron2's head becomes frn_det's, with `norm`; another (a user's) is left as it is (the build
    refuses it if it applies ReLU after TLU)."""
    if cfg.MODEL[node].NAME == stock:
        set_(f"MODEL.{node}.NAME", ours)
    if cfg.MODEL[node].NAME == ours:
        set_(f"MODEL.{node}.NORM", norm)


def _from_scratch_pixel_std(std, input_format, path, set_):
    if std is not None and list(std) == [1.0, 1.0, 1.0] and input_format in IMAGENET_STD:
        set_(path, list(IMAGENET_STD[input_format]))  # the config's own list: editing it changes no other


# ---- LazyConfig ----------------------------------------------------------------------------------

def _lazy_to_frn(cfg, norm, keep_weights, set_):
    if "_target_" in cfg:  # the model node
        _lazy_model(cfg, "", norm, keep_weights, set_)
        return
    if "model" not in cfg:
        raise ValueError("to_frn takes a yacs CfgNode, a LazyConfig with a `model`, or a LazyConfig's `model` "
                         f"node (with a _target_); got a config with keys {list(cfg.keys())}")
    model = cfg._get_node("model")
    if not (_is_container(model) and hasattr(model, "keys") and "_target_" in model):
        raise ValueError("to_frn takes a LazyConfig whose `model` is a LazyCall node (with a _target_), e.g. "
                         f"model_zoo.get_config's; this one's `model` is {_show(_raw(cfg, 'model'))}")
    _lazy_model(cfg.model, "model.", norm, keep_weights, set_)
    optimizer_params = _child(cfg, "optimizer").get("params")
    if optimizer_params is not None:
        from detectron2.solver.build import get_default_optimizer_params

        from frn_det.solver import get_frn_optimizer_params

        if _target(optimizer_params) is get_default_optimizer_params:  # FRN's parameters are norm parameters
            set_("optimizer.params._target_", get_frn_optimizer_params)
    if not keep_weights and _child(cfg, "train").get("init_checkpoint"):
        set_("train.init_checkpoint", "")


def _child(cfg, key):
    """cfg[key] where it is a config node; {} where it is missing or not a node (e.g. `optimizer = None`)."""
    child = cfg.get(key)
    return child if _is_container(child) and hasattr(child, "keys") else {}


def _lazy_model(model, prefix, norm, keep_weights, set_):
    from detectron2.utils.registry import locate

    from frn_det.modeling import build_lazy_model

    top = _target(model)
    if top is build_lazy_model:  # converted before: convert what it wraps again
        top = locate(model.model_class) if isinstance(model.model_class, str) else model.model_class
    converted = _lazy_node(model, prefix.rstrip("."), norm, set_)
    if not converted:
        raise ValueError(f"to_frn converts models built on detectron2's ResNet; {prefix.rstrip('.') or 'the model'} "
                         f"({_show(top)}) has none")
    if _target(model) is not build_lazy_model:
        # by name, as LazyConfig.save writes targets: the config stays a yaml file
        set_(f"{prefix}model_class", f"{top.__module__}.{top.__qualname__}")
        set_(f"{prefix}_target_", build_lazy_model)
    if "pixel_std" in model and not keep_weights:
        _from_scratch_pixel_std(_raw(model, "pixel_std"), model.get("input_format", "BGR"), f"{prefix}pixel_std",
                                set_)


def _lazy_node(node, path, norm, set_):
    """Converts `node` and what it holds; the number of ResNets (or res5 stages) converted."""
    found = 0
    if _is_container(node) and hasattr(node, "keys") and "_target_" in node:
        found += _lazy_call(node, path, norm, set_)
    keys = node.keys() if hasattr(node, "keys") else range(len(node))
    for key in keys:
        if key == "_target_":
            continue
        child = node._get_node(key)
        if _is_container(child):
            found += _lazy_node(child, f"{path}.{key}" if path else str(key), norm, set_)
    return found


def _lazy_call(node, path, norm, set_):
    """One LazyCall node: 1 where it is a ResNet stage builder converted."""
    from detectron2.modeling.backbone import FPN, BasicStem, ResNet
    from detectron2.modeling.meta_arch.fcos import FCOSHead
    from detectron2.modeling.meta_arch.retinanet import RetinaNetHead
    from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead
    from detectron2.modeling.roi_heads import FastRCNNConvFCHead, MaskRCNNConvUpsampleHead

    from frn_det.modeling import (FastRCNNConvFCHeadFRN, FCOSHeadFRN, MaskRCNNConvUpsampleHeadFRN, RetinaNetFRNHead,
                                  SemSegFPNHeadFRN)
    from frn_det.modeling.backbone import FRNStem, make_default_frn_stages
    from frn_det.modeling.backbone.resnet import _FRN_CLASSES

    at = f"{path}." if path else ""
    target = _target(node)
    # (frn_det's target, the norm argument, its value)
    heads = {
        RetinaNetHead: (RetinaNetFRNHead, "norm", norm), RetinaNetFRNHead: (RetinaNetFRNHead, "norm", norm),
        FCOSHead: (FCOSHeadFRN, "norm", norm), FCOSHeadFRN: (FCOSHeadFRN, "norm", norm),
        FastRCNNConvFCHead: (FastRCNNConvFCHeadFRN, "conv_norm", norm),
        FastRCNNConvFCHeadFRN: (FastRCNNConvFCHeadFRN, "conv_norm", norm),
        MaskRCNNConvUpsampleHead: (MaskRCNNConvUpsampleHeadFRN, "conv_norm", norm),
        MaskRCNNConvUpsampleHeadFRN: (MaskRCNNConvUpsampleHeadFRN, "conv_norm", norm),
        SemSegFPNHead: (SemSegFPNHeadFRN, "norm", norm), SemSegFPNHeadFRN: (SemSegFPNHeadFRN, "norm", norm),
        BasicStem: (FRNStem, "norm", norm), FRNStem: (FRNStem, "norm", norm),
        FPN: (FPN, "norm", norm_without_tlu(norm)),  # no activation follows its convs
    }
    if target in heads:
        ours, key, value = heads[target]
        if ours is not target:
            set_(f"{at}_target_", ours)
        set_(f"{at}{key}", value)
        return 0
    if target is ResNet:
        set_(f"{at}freeze_at", 0)
        return 0
    if target is ResNet.make_default_stages:
        set_(f"{at}_target_", make_default_frn_stages)
    elif target not in (make_default_frn_stages, ResNet.make_stage):  # make_stage: e.g. C4's res5
        return 0
    block = node.get("block_class")
    if block is not None and _resolve(block) in _FRN_CLASSES:
        set_(f"{at}block_class", _FRN_CLASSES[_resolve(block)])
    set_(f"{at}norm", norm)
    return 1


def _is_container(node):
    from omegaconf import DictConfig, ListConfig

    return isinstance(node, (DictConfig, ListConfig))


def _resolve(target):
    from detectron2.utils.registry import locate

    return locate(target) if isinstance(target, str) else target


def _target(node):
    return _resolve(_raw(node, "_target_"))
