#!/usr/bin/env python
"""Cost of the FRN health monitor (frn_det.study.benchmark_monitor; `python tools/benchmark_monitor.py --help`)."""
from frn_det.study.benchmark_monitor import main

if __name__ == "__main__":
    main()
