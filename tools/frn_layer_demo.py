"""Shows FRN through detectron2: get_norm("FRN") inside a stock FPN, and FRN's batch independence."""
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone.fpn import build_resnet_fpn_backbone

import frn_det

cfg = frn_det.add_frn_config(get_cfg())
cfg.MODEL.RESNETS.DEPTH = 50
cfg.MODEL.RESNETS.OUT_FEATURES = cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
cfg.MODEL.RESNETS.NORM, cfg.MODEL.FPN.NORM = "FRN", "FRN_NoTLU"
fpn = build_resnet_fpn_backbone(cfg, ShapeSpec(channels=3)).train()
x = torch.randn(4, 3, 128, 128)
batch = fpn(x)
alone = fpn(x[:1])
print("FRN layers in a stock detectron2 R50-FPN:", sum(isinstance(m, frn_det.FRN) for m in fpn.modules()))
for k in batch:
    print(f"{k}: {tuple(batch[k].shape)}  max |batch - alone| for sample 0 = "
          f"{(batch[k][:1] - alone[k]).abs().max().item():.2e}")
