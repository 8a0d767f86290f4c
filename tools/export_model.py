#!/usr/bin/env python
"""Exports an FRN detector to TorchScript or ONNX by tracing (frn_det.export.model;
`python tools/export_model.py --help`)."""
import sys
import warnings

warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)

from frn_det.export.model import main  # noqa: E402  (after the filter: importing it loads detectron2)

if __name__ == "__main__":
    sys.exit(0 if main() else 1)
