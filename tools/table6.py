#!/usr/bin/env python
"""The paper's Table 6 from its runs' output folders, beside the paper's numbers
(frn_det.evaluation.table6; `python tools/table6.py --help`)."""
from frn_det.evaluation.table6 import main

if __name__ == "__main__":
    main()
