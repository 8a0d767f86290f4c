from .retinanet import RetinaNetFRN, RetinaNetFRNHead
