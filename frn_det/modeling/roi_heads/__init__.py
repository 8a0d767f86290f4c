from .box_head import FastRCNNConvFCHeadFRN
from .mask_head import MaskRCNNConvUpsampleHeadFRN
from .res5_roi_heads import Res5ROIHeadsFRN
