#!/usr/bin/env python
"""The checkout's entry to frn_det.train_net (same arguments as `python -m frn_det.train_net`):

  python tools/train_net.py --config-file configs/retinanet_frn_2img.yaml --num-gpus 8
  python tools/train_net.py --config-file configs/retinanet_frn_2img.yaml --eval-only MODEL.WEIGHTS model_final.pth
  python tools/train_net.py --config-file ... --resume   # continue from OUTPUT_DIR/last_checkpoint
  python tools/train_net.py --frn --config-file COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml  # any
      # detectron2 config (yaml or LazyConfig .py) switched to FRN; --frn GN_TLU for another norm
"""
from frn_det.train_net import cli

if __name__ == "__main__":
    cli()
