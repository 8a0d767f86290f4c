from .fpn import build_resnet_frn_fpn_backbone, build_retinanet_resnet_frn_fpn_backbone
from .resnet import (FRNBasicBlock, FRNBottleneckBlock, FRNDeformBottleneckBlock, FRNStem, build_resnet_frn_backbone,
                     make_default_frn_stages, make_frn_aware, zero_init_residual_norms)
