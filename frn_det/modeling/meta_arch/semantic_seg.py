"""detectron2's semantic FPN head (Panoptic FPN) without a ReLU after FRN+TLU."""
from detectron2.config import configurable
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead

from ..relu_after_tlu import drop_relu_after_tlu


@SEM_SEG_HEADS_REGISTRY.register()
class SemSegFPNHeadFRN(SemSegFPNHead):
    """detectron2's SemSegFPNHead (MODEL.SEM_SEG_HEAD.NAME "SemSegFPNHeadFRN"): a conv whose norm ends
    in TLU (NORM "FRN") has no ReLU after it, TLU being the activation; with any other norm this is
    detectron2's head. State names and initialization are detectron2's."""

    @configurable
    def __init__(self, input_shape, **kwargs):
        super().__init__(input_shape=input_shape, **kwargs)
        drop_relu_after_tlu(self)
