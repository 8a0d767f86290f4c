from .checked import FRNChecked, meta_architecture_of
from .fcos import FCOSHeadFRN
from .retinanet import RetinaNetFRN, RetinaNetFRNHead
from .semantic_seg import SemSegFPNHeadFRN
