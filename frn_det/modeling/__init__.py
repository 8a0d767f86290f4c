from .backbone import (
    build_resnet_frn_backbone,
    build_resnet_frn_fpn_backbone,
    build_retinanet_resnet_frn_fpn_backbone,
)
from .build import build_model
from .meta_arch import RetinaNetFRN, RetinaNetFRNHead
