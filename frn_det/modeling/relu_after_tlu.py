"""ReLU applied directly to a TLU's output computes max(max(y, tau), 0): a negative tau is lost.

The check reads the module tree. A module's output ends in TLU when it is a layer of frn_det's with a
`tau` (FRN or GFRN with TLU, GroupNormTLU, TLU), or a conv in detectron2's convention (`norm` and `activation` attributes: Conv2d, DeformConv) whose norm
ends in TLU and that has no activation. A ReLU is applied directly to it
- as that conv's `activation`,
- as the next module of an nn.Sequential,
- in the forward of detectron2's ResNet stem and blocks, which call F.relu_ after their norms
  (_RELU_IN_FORWARD: code, not modules, so it is listed per class).
"""
import torch
import torch.nn.functional as F
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem, BottleneckBlock, DeformBottleneckBlock
from detectron2.modeling.meta_arch.retinanet import RetinaNetHead
from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead
from detectron2.modeling.roi_heads.box_head import FastRCNNConvFCHead
from detectron2.modeling.roi_heads.mask_head import MaskRCNNConvUpsampleHead
from torch import nn

from frn_det.layers import FRN, GFRN, TLU, GroupNormTLU

_RELUS = (F.relu, F.relu_, torch.relu, torch.relu_)
_TLU_LAYERS = (FRN, GFRN, GroupNormTLU, TLU)  # each ends in TLU when its tau is not None
# the norm name without TLU that builds the same layer, for the message
_WITHOUT_TLU = {FRN: "FRN_NoTLU", GFRN: "GFRN_NoTLU", GroupNormTLU: "GN"}

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
# the FRN-aware replacement of each detectron2 module that puts a ReLU after its norms
_FIXES = {
    FastRCNNConvFCHead: 'MODEL.ROI_BOX_HEAD.NAME "FastRCNNConvFCHeadFRN"',
    MaskRCNNConvUpsampleHead: 'MODEL.ROI_MASK_HEAD.NAME "MaskRCNNConvUpsampleHeadFRN"',
    SemSegFPNHead: 'MODEL.SEM_SEG_HEAD.NAME "SemSegFPNHeadFRN"',
    RetinaNetHead: 'MODEL.META_ARCHITECTURE "RetinaNetFRN"',
    **{cls: _BACKBONE_FIX for cls in _RELU_IN_FORWARD},
}


def is_relu(activation):
    return isinstance(activation, nn.ReLU) or any(activation is f for f in _RELUS)


def _is_conv_with_norm(module):
    return hasattr(module, "norm") and hasattr(module, "activation")


def ends_in_tlu(module):
    """True when the module's output is a TLU's output."""
    if isinstance(module, _TLU_LAYERS):
        return module.tau is not None
    if _is_conv_with_norm(module):
        return module.activation is None and module.norm is not None and ends_in_tlu(module.norm)
    if isinstance(module, nn.Sequential):
        return len(module) > 0 and ends_in_tlu(module[-1])
    return False


def drop_relu_after_tlu(module):
    """Removes the activation of every conv in `module` whose norm ends in TLU (TLU is the activation);
    other convs are left as they are."""
    for conv in module.modules():
        if _is_conv_with_norm(conv) and conv.norm is not None and ends_in_tlu(conv.norm):
            conv.activation = None


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


def check_no_relu_after_tlu(model):
    """Raises a ValueError naming each module that applies ReLU to a TLU's output, its fix, and the norm
    name without TLU."""
    found = _relus_after_tlu(model)
    if not found:
        return model
    modules = dict(model.named_modules())
    by_fix = {}  # fix -> (names, classes)
    for name, _ in found:
        owner, fix = _owner_and_fix(name, modules)
        names, classes = by_fix.setdefault(fix, ([], []))
        names.append(name)
        if type(modules[owner]).__name__ not in classes:
            classes.append(type(modules[owner]).__name__)
    lines = [f"  {_shorten(names)} ({', '.join(classes)}): use {fix}" for fix, (names, classes) in by_fix.items()]
    layers = {type(_tlu_layer(source)) for _, source in found}
    plain = sorted(_WITHOUT_TLU[cls] for cls in layers if cls in _WITHOUT_TLU)
    quoted = " / ".join('"' + n + '"' for n in plain)
    alternative = f"\nor the norm {quoted} there, where no TLU is wanted." if plain else ""
    raise ValueError(
        f"ReLU is applied directly to the output of {' / '.join(sorted(c.__name__ for c in layers))} with TLU, "
        "which computes max(max(y, tau), 0) and loses a negative tau:\n" + "\n".join(lines) + alternative)


def _tlu_layer(module):
    """The layer of frn_det's whose TLU ends `module`'s output (a conv's norm, a Sequential's last)."""
    while not isinstance(module, _TLU_LAYERS):
        module = module.norm if _is_conv_with_norm(module) else module[-1]
    return module


def _shorten(names, shown=4):
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _owner_and_fix(name, modules):
    """The innermost module holding `name` (or itself) that has an FRN-aware replacement, and that fix."""
    parts = name.split(".")
    for end in range(len(parts), -1, -1):
        owner = ".".join(parts[:end])
        fix = _FIXES.get(type(modules[owner]))
        if fix is not None:
            return owner, fix
    parent = ".".join(parts[:-1])
    return parent, "a module that applies no ReLU after a norm that ends in TLU"


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name
