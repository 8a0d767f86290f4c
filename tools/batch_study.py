#!/usr/bin/env python
"""The batch-size study, Table 6's shape at small scale (frn_det.study.batch; `python tools/batch_study.py --help`)."""
import sys

from frn_det.study.batch import cli

if __name__ == "__main__":
    sys.exit(cli())
