"""detectron2's mask head without a ReLU after FRN+TLU."""
from detectron2.config import configurable
from detectron2.modeling import ROI_MASK_HEAD_REGISTRY
from detectron2.modeling.roi_heads.mask_head import MaskRCNNConvUpsampleHead

from ..relu_after_tlu import drop_relu_after_tlu


@ROI_MASK_HEAD_REGISTRY.register()
class MaskRCNNConvUpsampleHeadFRN(MaskRCNNConvUpsampleHead):
    """detectron2's MaskRCNNConvUpsampleHead (MODEL.ROI_MASK_HEAD.NAME "MaskRCNNConvUpsampleHeadFRN"):
    a conv whose norm ends in TLU (NORM "FRN") has no ReLU after it, TLU being the activation. The
    deconv keeps its ReLU (no norm there); with any other norm this is detectron2's head. State names
    and initialization are detectron2's."""

    @configurable
    def __init__(self, input_shape, **kwargs):
        super().__init__(input_shape=input_shape, **kwargs)
        drop_relu_after_tlu(self)
