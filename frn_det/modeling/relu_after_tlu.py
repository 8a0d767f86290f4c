"""ReLU applied directly to a TLU's output computes max(max(y, tau), 0): a negative tau is lost.

The check reads the module tree. A module's output ends in TLU when it is a layer of frn_det's with a
`tau` (a class of frn_det.layers.FRN_NORMS' names with TLU, or TLU), or a conv in detectron2's convention (`norm` and `activation` attributes: Conv2d, DeformConv) whose norm
ends in TLU and that has no activation. A ReLU is applied directly to it
- as that conv's `activation`,
- as the next module of an nn.Sequential,
- in the forward of detectron2's ResNet stem and blocks, which call F.relu_ after their norms
  (_RELU_IN_FORWARD: code, not modules, so it is listed per class).
"""
import torch
import torch.nn.functional as F
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem, BottleneckBlock, DeformBottleneckBlock, ResNet
from detectron2.modeling.meta_arch.fcos import FCOSHead
from detectron2.modeling.meta_arch.retinanet import RetinaNetHead
from detectron2.modeling.roi_heads import Res5ROIHeads
from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead
from detectron2.modeling.roi_heads.box_head import FastRCNNConvFCHead
from detectron2.modeling.roi_heads.mask_head import MaskRCNNConvUpsampleHead
from torch import nn

from frn_det.layers import name_without_tlu, tlu_layer_types

_RELUS = (F.relu, F.relu_, torch.relu, torch.relu_)

# detectron2 classes (exactly these, not frn_det's subclasses) whose forward applies ReLU to the output
# of these convs
_RELU_IN_FORWARD = {
    BasicStem: ("conv1",),
    BasicBlock: ("conv1",),
    BottleneckBlock: ("conv1", "conv2"),
    DeformBottleneckBlock: ("conv1", "conv2"),
}

_BACKBONE_FIX = ('MODEL.BACKBONE.NAME "build_resnet_frn_backbone", "build_resnet_frn_fpn_backbone" or '
                 '"build_retinanet_resnet_frn_fpn_backbone"')
_LAZY_BACKBONE_FIX = ("{owner}.stem._target_ = FRNStem and {owner}.stages._target_ = make_default_frn_stages "
                      "(frn_det.modeling.backbone)")
# the FRN-aware replacement of each detectron2 module that puts a ReLU after its norms: (the yacs key, the
# LazyConfig edit; {owner} is the module's path in the config tree)
_FIXES = {
    FastRCNNConvFCHead: ('MODEL.ROI_BOX_HEAD.NAME "FastRCNNConvFCHeadFRN"',
                         "{owner}._target_ = frn_det.modeling.FastRCNNConvFCHeadFRN"),
    MaskRCNNConvUpsampleHead: ('MODEL.ROI_MASK_HEAD.NAME "MaskRCNNConvUpsampleHeadFRN"',
                               "{owner}._target_ = frn_det.modeling.MaskRCNNConvUpsampleHeadFRN"),
    SemSegFPNHead: ('MODEL.SEM_SEG_HEAD.NAME "SemSegFPNHeadFRN"', "{owner}._target_ = frn_det.modeling.SemSegFPNHeadFRN"),
    RetinaNetHead: ('{arch_key} "RetinaNetFRN"', "{owner}._target_ = frn_det.modeling.RetinaNetFRNHead"),
    FCOSHead: ("{owner}._target_ = frn_det.modeling.FCOSHeadFRN", "{owner}._target_ = frn_det.modeling.FCOSHeadFRN"),
    # C4: res5 runs in the ROI heads
    Res5ROIHeads: ('MODEL.ROI_HEADS.NAME "Res5ROIHeadsFRN"',
                   "{owner}.res5.block_class = frn_det.modeling.backbone.FRNBottleneckBlock"),
    **{cls: (_BACKBONE_FIX, _LAZY_BACKBONE_FIX) for cls in (*_RELU_IN_FORWARD, ResNet)},
}
CONFIG_SYSTEMS = ("yacs", "lazy")
_CONVERT_ALL = "frn_det.to_frn(cfg) makes every such change"


def is_relu(activation):
    return isinstance(activation, nn.ReLU) or any(activation is f for f in _RELUS)


def _is_conv_with_norm(module):
    return hasattr(module, "norm") and hasattr(module, "activation")


def ends_in_tlu(module):
    """True when the module's output is a TLU's output."""
    if isinstance(module, tlu_layer_types()):
        return getattr(module, "tau", None) is not None
    if _is_conv_with_norm(module):
        return module.activation is None and module.norm is not None and ends_in_tlu(module.norm)
    if isinstance(module, nn.Sequential):
        return len(module) > 0 and ends_in_tlu(module[-1])
    return False


def drop_relu_after_tlu(module):
    """Removes every ReLU in `module` applied directly to a TLU's output (TLU is the activation): a
    conv's `activation`, or an nn.ReLU after it in an nn.Sequential, which becomes nn.Identity (module
    indices and state names unchanged). Other ReLUs are left as they are."""
    for child in module.modules():
        if _is_conv_with_norm(child) and child.norm is not None and ends_in_tlu(child.norm):
            child.activation = None
        if isinstance(child, nn.Sequential):
            for i in range(1, len(child)):
                if is_relu(child[i]) and ends_in_tlu(child[i - 1]):
                    child[i] = nn.Identity()


def find_relu_after_tlu(model):
    """Names of the modules in `model` that apply ReLU directly to a TLU's output."""
    return [name for name, _ in _relus_after_tlu(model)]


def _relus_after_tlu(model):
    """(name, the module whose output ends in TLU) for each ReLU applied directly to a TLU's output."""
    found = []
    for name, module in model.named_modules():
        if _is_conv_with_norm(module) and is_relu(module.activation) and module.norm is not None \
                and ends_in_tlu(module.norm):
            found.append((name, module.norm))
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (_, first), (second_name, second) in zip(children, children[1:]):
                if is_relu(second) and ends_in_tlu(first):
                    found.append((_join(name, second_name), first))
        for conv_name in _RELU_IN_FORWARD.get(type(module), ()):
            conv = getattr(module, conv_name)
            if conv.norm is not None and ends_in_tlu(conv.norm):
                found.append((_join(name, conv_name), conv.norm))
    return found


def check_no_relu_after_tlu(model, config="yacs", arch_key="MODEL.META_ARCHITECTURE"):
    """Raises a ValueError naming each module that applies ReLU to a TLU's output, its fix in the
    user's config system (`config`: "yacs" keys, or "lazy" targets in a LazyConfig's model tree), and
    the norm name without TLU. arch_key: the yacs key that names the model's architecture
    (MODEL.FRN.META_ARCHITECTURE in a config that FRNChecked builds)."""
    if config not in CONFIG_SYSTEMS:
        raise ValueError(f"config must be one of {CONFIG_SYSTEMS}, got {config!r}")
    found = _relus_after_tlu(model)
    if not found:
        return model
    modules = dict(model.named_modules())
    by_fix = {}  # fix -> (names, classes)
    for name, _ in found:
        cls, fix = _fix(name, modules, config, arch_key)
        names, classes = by_fix.setdefault(fix, ([], []))
        names.append(name)
        if cls.__name__ not in classes:
            classes.append(cls.__name__)
    lines = [f"  {_shorten(names)} ({', '.join(classes)}): use {fix}" for fix, (names, classes) in by_fix.items()]
    layers = {type(_tlu_layer(source)) for _, source in found}
    plain = sorted(filter(None, map(name_without_tlu, layers)))
    quoted = " / ".join('"' + n + '"' for n in plain)
    alternative = f"\nor the norm {quoted} there, where no TLU is wanted." if plain else ""
    raise ValueError(
        f"ReLU is applied directly to the output of {' / '.join(sorted(c.__name__ for c in layers))} with TLU, "
        "which computes max(max(y, tau), 0) and loses a negative tau:\n" + "\n".join(lines) + alternative
        + f"\n({_CONVERT_ALL}.)")


def _tlu_layer(module):
    """The layer of frn_det's whose TLU ends `module`'s output (a conv's norm, a Sequential's last)."""
    while not isinstance(module, tlu_layer_types()):
        module = module.norm if _is_conv_with_norm(module) else module[-1]
    return module


def _shorten(names, shown=4):
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _fix(name, modules, config, arch_key):
    """(class of the innermost module holding `name`, or itself, that has an FRN-aware replacement, the
    fix in `config`'s words). A ResNet block's fix is its stage's owner's: the C4 ROI heads where res5
    runs there, else the ResNet."""
    parts = name.split(".")
    owners = [".".join(parts[:end]) for end in range(len(parts), -1, -1)]
    for i, owner in enumerate(owners):
        cls = type(modules[owner])
        if cls not in _FIXES:
            continue
        if cls in _RELU_IN_FORWARD:
            owner = next((o for o in owners[i:] if isinstance(modules[o], (Res5ROIHeads, ResNet))), owner)
        yacs, lazy = _FIXES[Res5ROIHeads] if isinstance(modules[owner], Res5ROIHeads) else _FIXES[cls]
        return cls, (yacs if config == "yacs" else lazy).format(owner=_join("model", owner), arch_key=arch_key)
    return type(modules[owners[1]]), "a module that applies no ReLU after a norm that ends in TLU"


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name
