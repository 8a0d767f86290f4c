#!/usr/bin/env python
"""The FRN monitor's statistics of trained models, and of their training (frn_det.study.norm_health; `python tools/norm_health.py --help`)."""
from frn_det.study.norm_health import main

if __name__ == "__main__":
    main()
