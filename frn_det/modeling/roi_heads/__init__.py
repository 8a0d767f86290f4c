from .box_head import FastRCNNConvFCHeadFRN
from .mask_head import MaskRCNNConvUpsampleHeadFRN
