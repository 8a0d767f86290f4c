"""detectron2's C4 ROI heads, whose res5 stage runs on every region, with FRN's activation placement."""
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.roi_heads import Res5ROIHeads

from ..backbone.resnet import finish_resnet


@ROI_HEADS_REGISTRY.register()
class Res5ROIHeadsFRN(Res5ROIHeads):
    """detectron2's Res5ROIHeads (MODEL.ROI_HEADS.NAME "Res5ROIHeadsFRN") whose res5 blocks are the
    FRN-aware ones of the backbone (make_frn_aware with MODEL.RESNETS.NORM): with a norm that ends in
    TLU no ReLU follows it; with any other norm this is detectron2's head. MODEL.RESNETS' recipe options
    (ZERO_INIT_RESIDUAL) apply to res5 as to the backbone's stages. State names are detectron2's
    (plus `tlu.tau` per block). A LazyConfig builds res5 from FRNBottleneckBlock instead (frn_det.to_frn)."""

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        finish_resnet(ret["res5"], cfg)
        return ret
