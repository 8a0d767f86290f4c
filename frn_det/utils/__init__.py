from pathlib import Path

from .file_io import write_atomic

# The folder that holds frn_det/: in a checkout, the one with benchmarks/. Only the committed study's
# summary (frn_det/study/summary.py) reads it; nothing else in the package may, so that it works installed.
REPO_ROOT = str(Path(__file__).resolve().parents[2])
