#!/usr/bin/env python
"""A BN model's AP under different normalization statistics (frn_det.study.bn_statistics; `python tools/bn_statistics.py --help`)."""
from frn_det.study.bn_statistics import main

if __name__ == "__main__":
    main()
