#!/usr/bin/env bash
# The README's main-job command: set up .venv (quick when nothing changed), then run the demo.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup_env.sh"
cd "$root"
exec .venv/bin/python tools/frn_layer_demo.py "$@"
