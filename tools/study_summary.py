#!/usr/bin/env python
"""The study's tables, claims and plots from its committed runs (frn_det.study.summary; `python tools/study_summary.py --help`)."""
import sys

from frn_det.study.summary.report import main

if __name__ == "__main__":
    sys.exit(main() and 0)
