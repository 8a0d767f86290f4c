"""detectron2's box head without a ReLU after FRN+TLU."""
from detectron2.config import configurable
from detectron2.modeling import ROI_BOX_HEAD_REGISTRY
from detectron2.modeling.roi_heads.box_head import FastRCNNConvFCHead

from ..relu_after_tlu import drop_relu_after_tlu


@ROI_BOX_HEAD_REGISTRY.register()
class FastRCNNConvFCHeadFRN(FastRCNNConvFCHead):
    """detectron2's FastRCNNConvFCHead (MODEL.ROI_BOX_HEAD.NAME "FastRCNNConvFCHeadFRN"): a conv whose
    norm ends in TLU (NORM "FRN") has no ReLU after it, TLU being the activation. The fc layers keep
    their ReLU (no norm there); with any other norm this is detectron2's head. State names and
    initialization are detectron2's."""

    @configurable
    def __init__(self, input_shape, **kwargs):
        super().__init__(input_shape=input_shape, **kwargs)
        drop_relu_after_tlu(self)
