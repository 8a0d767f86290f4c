#!/usr/bin/env python
"""Writes configs/retinanet_{frn,gn,bn,bn_finetune}_{2,4,8}img.yaml from the paper's rule (frn_det.config.make_configs; `python tools/make_configs.py --help`)."""
from frn_det.config.make_configs import main

if __name__ == "__main__":
    main()
