#!/usr/bin/env bash
# The README's test command: set up .venv (quick when nothing changed), then run the test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup_env.sh"
cd "$root"
exec .venv/bin/python -m pytest "${@:--q}" tests
