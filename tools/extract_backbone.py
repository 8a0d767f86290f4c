#!/usr/bin/env python
"""Writes the backbone weights of a detectron2 checkpoint (frn_det.export.backbone; `python tools/extract_backbone.py --help`)."""
import sys

from frn_det.export.backbone import main

if __name__ == "__main__":
    sys.exit(main())
