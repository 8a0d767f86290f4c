#!/usr/bin/env python
"""Renders a grid PNG of each look of the shapes dataset (frn_det.predict.show_looks; `python tools/show_looks.py --help`)."""
from frn_det.predict.show_looks import main

if __name__ == "__main__":
    main()
