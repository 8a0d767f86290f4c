"""FRN-aware ResNetV1 for detectron2.

detectron2's ResNet blocks call ReLU after every norm, which would clip FRN+TLU's output at 0
(max(max(y, tau), 0)). The classes here are detectron2's blocks with FRN's placement:
stem conv -> FRN+TLU -> max-pool; conv1, conv2 -> FRN+TLU; conv3 and shortcut -> FRN (no TLU);
residual add -> TLU, where the last conv's FRN, the add and TLU run as one function
(frn_add_tlu_function: fused on the paths that have one; the FRN module's own forward and hooks are
not called there). Every norm whose layer ends in TLU ("FRN", "GFRN", "GN_TLU": norm_has_tlu) is
placed so, with its no-TLU form (norm_without_tlu) before the residual add; with any other norm
("FRN_ReLU", "GN", "BN") they behave exactly like detectron2's (norm + ReLU).
State names are detectron2's (plus `tlu.tau` per block), so checkpoints move between them.
"""
import torch
import torch.nn.functional as F
from torch import nn
from detectron2.layers import Conv2d, get_norm
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone.resnet import (BasicBlock, BasicStem, BottleneckBlock, DeformBottleneckBlock, ResNet,
                                                 build_resnet_backbone)

from frn_det.layers import FRN, TLU, frn_add_tlu_function, norm_has_tlu, norm_without_tlu

from ..frn_options import check_frn_options_apply


def _has_hooks(module):
    return bool(module._forward_hooks or module._forward_pre_hooks)


class _FRNAware:
    """Activation placement shared by the stem and the blocks."""

    convs_without_activation = ()  # convs whose norm is followed by a residual add, not an activation
    has_residual = True

    def __init__(self, *args, norm="FRN", **kwargs):
        super().__init__(*args, norm=norm, **kwargs)
        self._setup_activations(norm)

    def _setup_activations(self, norm):
        self.use_tlu = norm_has_tlu(norm)
        if not self.use_tlu:
            return
        for name in self.convs_without_activation:
            conv = getattr(self, name)
            if conv is not None:  # e.g. no projection shortcut
                conv.norm = get_norm(norm_without_tlu(norm), conv.out_channels)
        if self.has_residual:
            self.tlu = TLU(self.out_channels)

    def _act(self, x):
        # FRN+TLU already is "norm + activation"
        return x if self.use_tlu else F.relu_(x)

    def _add_shortcut(self, out, x):
        """The residual add and its activation."""
        out = out + (self.shortcut(x) if self.shortcut is not None else x)
        return self.tlu(out) if self.use_tlu else F.relu_(out)

    fuse_block_end = True  # False: the last norm, the add and TLU as three modules (the same result)

    def _block_end(self, conv, h, x):
        """_add_shortcut(conv(h), x), with conv's FRN (without TLU), the add and TLU in one function when
        the block ends in TLU: the same parameters, one pass over memory fewer on the cpp path. Modules
        with hooks (the FRN monitor's, a user's) run as modules, so that their hooks see them."""
        norm = conv.norm
        if not (self.use_tlu and self.fuse_block_end and type(norm) is FRN and norm.tau is None
                and isinstance(conv, Conv2d) and conv.activation is None
                and not any(_has_hooks(m) for m in (conv, norm, self.tlu))):
            return self._add_shortcut(conv(h), x)
        out = conv._conv_forward(h, conv.weight, conv.bias)
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        return frn_add_tlu_function(out, shortcut, norm.weight, norm.bias, self.tlu.tau, norm.eps, norm.eps_l)


class FRNStem(_FRNAware, BasicStem):
    has_residual = False

    def forward(self, x):
        return F.max_pool2d(self._act(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class FRNBasicBlock(_FRNAware, BasicBlock):
    convs_without_activation = ("conv2", "shortcut")

    def forward(self, x):
        return self._block_end(self.conv2, self._act(self.conv1(x)), x)


class FRNBottleneckBlock(_FRNAware, BottleneckBlock):
    convs_without_activation = ("conv3", "shortcut")

    def forward(self, x):
        out = self._act(self.conv1(x))
        return self._block_end(self.conv3, self._act(self.conv2(out)), x)


class FRNDeformBottleneckBlock(_FRNAware, DeformBottleneckBlock):
    """MODEL.RESNETS.DEFORM_ON_PER_STAGE's block (detectron2's compiled deformable conv)."""

    convs_without_activation = ("conv3", "shortcut")

    def forward(self, x):
        out = self._act(self.conv1(x))
        if self.deform_modulated:
            offset_x, offset_y, mask = torch.chunk(self.conv2_offset(out), 3, dim=1)
            out = self.conv2(out, torch.cat((offset_x, offset_y), dim=1), mask.sigmoid())
        else:
            out = self.conv2(out, self.conv2_offset(out))
        return self._block_end(self.conv3, self._act(out), x)


_FRN_CLASSES = {BasicStem: FRNStem, BasicBlock: FRNBasicBlock, BottleneckBlock: FRNBottleneckBlock,
                DeformBottleneckBlock: FRNDeformBottleneckBlock}


def make_frn_aware(resnet, norm):
    """Turns a ResNet built by detectron2's build_resnet_backbone (or any module of its stems and blocks,
    e.g. the C4 ROI heads' res5) into the FRN-aware one, in place. `norm` is the one it was built with
    (a name, or an FRNNorm with options).

    Reusing detectron2's builder keeps every RESNETS config key working; the modules' classes are
    swapped for the subclasses above, which only change where activations go. A stem or block that
    detectron2 froze (MODEL.BACKBONE.FREEZE_AT, a LazyConfig's freeze_at) is frozen again after the swap,
    as detectron2's CNNBlockBase.freeze does: the norms and TLU put in then do not train either.
    """
    for module in list(resnet.modules()):
        cls = _FRN_CLASSES.get(type(module))
        if cls is not None:
            frozen = _is_frozen(module)
            module.__class__ = cls
            module._setup_activations(norm)
            if frozen:
                module.freeze()
    return resnet


def _is_frozen(module):
    """True where every parameter is frozen: what CNNBlockBase.freeze leaves."""
    params = list(module.parameters())
    return bool(params) and not any(p.requires_grad for p in params)


_BOTTLENECK_ONLY = ("bottleneck_channels", "num_groups", "stride_in_1x1", "dilation")


def make_default_frn_stages(depth, block_class=None, **kwargs):
    """detectron2's ResNet.make_default_stages (the same arguments) with the FRN-aware blocks: the
    `stages` of a LazyConfig ResNet, whose `stem` is FRNStem. At depth 18 and 34 the bottleneck's own
    arguments are left out, so that a config's depth can be set to any of detectron2's."""
    if block_class is None:
        block_class = FRNBasicBlock if depth < 50 else FRNBottleneckBlock
    if block_class is FRNBasicBlock:
        kwargs = {k: v for k, v in kwargs.items() if k not in _BOTTLENECK_ONLY}
    return ResNet.make_default_stages(depth, block_class=block_class, **kwargs)


def zero_init_residual_norms(resnet):
    """Sets gamma of the last norm of every residual branch (BasicBlock conv2, BottleneckBlock conv3)
    to 0, so that each block starts as its shortcut (MODEL.RESNETS.ZERO_INIT_RESIDUAL; beyond the paper)."""
    for module in resnet.modules():
        last = {FRNBasicBlock: "conv2", FRNBottleneckBlock: "conv3", FRNDeformBottleneckBlock: "conv3"}.get(type(module))
        if last is None:
            continue
        norm = getattr(module, last).norm
        weight = getattr(norm, "weight", None)
        if not isinstance(weight, nn.Parameter) or not weight.requires_grad:
            # a frozen gamma (FrozenBN, MODEL.BACKBONE.FREEZE_AT) would stay 0: the block would be dead
            raise ValueError(
                f"MODEL.RESNETS.ZERO_INIT_RESIDUAL needs trainable norms with a gamma in every block (e.g. 'FRN', "
                f"'GN', 'BN', with MODEL.BACKBONE.FREEZE_AT 0); got {type(norm).__name__} "
                f"{'with a frozen gamma' if isinstance(weight, nn.Parameter) else 'without a trainable gamma'}")
        nn.init.zeros_(weight)
    return resnet


def finish_resnet(resnet, cfg):
    """The FRN-aware blocks, and the recipe options of cfg.MODEL.RESNETS."""
    check_frn_options_apply(cfg)
    make_frn_aware(resnet, cfg.MODEL.RESNETS.NORM)
    if cfg.MODEL.RESNETS.get("ZERO_INIT_RESIDUAL", False):
        zero_init_residual_norms(resnet)
    return resnet


@BACKBONE_REGISTRY.register()
def build_resnet_frn_backbone(cfg, input_shape):
    """detectron2's build_resnet_backbone with FRN's activation placement (any MODEL.RESNETS.NORM)."""
    return finish_resnet(build_resnet_backbone(cfg, input_shape), cfg)
