"""Look at what a trained model detects: the Predictor (frn_det.engine.predictor) and the command
that runs it on images or a video (command; its files in files, its COCO ids in dataset_ids).

  python -m frn_det.predict --config-file CONFIG --input IMAGES... --output DIR MODEL.WEIGHTS W
  python -m frn_det.predict --help
"""
from frn_det.engine.predictor import PredictError, Predictor

from .command import cli, main

__all__ = ["PredictError", "Predictor", "cli", "main"]
