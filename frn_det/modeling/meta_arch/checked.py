"""FRNChecked: the MODEL.META_ARCHITECTURE that frn_det.to_frn gives a yacs config, so that detectron2's
own build_model (DefaultTrainer's, a project's) checks the model as frn_det's build_model does.

It builds the architecture named by MODEL.FRN.META_ARCHITECTURE, with MODEL.FRN's options, and refuses it
where a ReLU is applied to a TLU's output. The model is that architecture's module itself: its state
names, checkpoints and type are those of the architecture built without the check.
"""
from detectron2.modeling import META_ARCH_REGISTRY

from frn_det.layers import frn_options_scope

from ..frn_options import frn_options_of
from ..relu_after_tlu import check_no_relu_after_tlu

CHECKED = "FRNChecked"
ARCH_KEY = "MODEL.FRN.META_ARCHITECTURE"  # where a checked config names the architecture it builds


def meta_architecture_of(cfg):
    """The architecture a yacs config builds: MODEL.FRN.META_ARCHITECTURE under FRNChecked, else
    MODEL.META_ARCHITECTURE."""
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch != CHECKED:
        return arch
    node = cfg.MODEL.get("FRN")
    wrapped = node.get("META_ARCHITECTURE", "") if node is not None else ""
    if not wrapped or wrapped == CHECKED:
        raise ValueError(f'MODEL.META_ARCHITECTURE "{CHECKED}" builds the architecture named by {ARCH_KEY} and '
                         f"checks it; {ARCH_KEY} is {wrapped or 'not set'!r}: set it to one such as "
                         '"GeneralizedRCNN" (frn_det.to_frn(cfg) sets both keys)')
    return wrapped


@META_ARCH_REGISTRY.register()
def FRNChecked(cfg):  # noqa: N802  (a registry name, as detectron2's meta-architectures)
    """The model of MODEL.FRN.META_ARCHITECTURE, built with MODEL.FRN's options on every FRN layer and
    refused (a ValueError naming each module and its fix in yacs keys) where a ReLU is applied to a TLU's
    output."""
    arch = meta_architecture_of(cfg)
    with frn_options_scope(*frn_options_of(cfg)):
        model = META_ARCH_REGISTRY.get(arch)(cfg)
    return check_no_relu_after_tlu(model, arch_key=ARCH_KEY)
