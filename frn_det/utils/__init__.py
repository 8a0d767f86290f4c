from pathlib import Path

from .file_io import finite_or_none, json_text, write_atomic, write_json

# The folder that holds frn_det/: in a checkout, the one with configs/, tools/ and benchmarks/, where
# the study and the tools' defaults read and write.
REPO_ROOT = str(Path(__file__).resolve().parents[2])
