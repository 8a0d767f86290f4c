#!/usr/bin/env python
"""The checkout's entry to frn_det.predict (same arguments as `python -m frn_det.predict`):

  python tools/predict.py --config-file configs/demo/retinanet_frn_R18_shapes.yaml \
      --input datasets/frn_shapes/uniform_val --output output/predict MODEL.WEIGHTS model_final.pth
  python tools/predict.py --config-file CONFIG --video-input clip.mp4 --output DIR MODEL.WEIGHTS W
"""
from frn_det.predict import cli

if __name__ == "__main__":
    cli()
