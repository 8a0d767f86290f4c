from .backbone import (
    build_resnet_frn_backbone,
    build_resnet_frn_fpn_backbone,
    build_retinanet_resnet_frn_fpn_backbone,
)
from .build import build_lazy_model, build_model
from .frn_options import frn_options_of
from .meta_arch import FCOSHeadFRN, FRNChecked, RetinaNetFRN, RetinaNetFRNHead, SemSegFPNHeadFRN, meta_architecture_of
from .relu_after_tlu import check_no_relu_after_tlu, find_relu_after_tlu
from .roi_heads import FastRCNNConvFCHeadFRN, MaskRCNNConvUpsampleHeadFRN, Res5ROIHeadsFRN
