#!/usr/bin/env bash
# The device check in one command; tools/device/check.py runs the steps and writes the report.
#   on the device machine, .whl carried:  bash tools/device/check.sh            # report in $OUT
#   here, on the CPU:                     bash tools/device/check.sh --dry-run  # report in $OUT or output/device_check
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ " $* " == *" --dry-run "* ]]; then
  py="$root/.venv/bin/python"  # the dry run uses the project's own environment
  [ -x "$py" ] || { echo "device check: no $py; run bash tools/setup_env.sh first" >&2; exit 2; }
else
  py=python3  # the device image's Python; the wheels of .whl are installed for it by the first step
  [ -d "$root/.whl" ] || { echo "device check: no .whl; run bash tools/device/wheels.sh and carry .whl" >&2; exit 2; }
  # check.py imports frn_det, which needs detectron2: installed first here; its step installs again
  # for the steps and reports what was missing
  site="$(mktemp -d)"
  "$py" "$root/tools/device/install_wheels.py" "$root/.whl" "$site" >/dev/null \
    || echo "device check: installing .whl failed; the wheels step says why" >&2
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's frn_det, not an installed one
exec "$py" "$root/tools/device/check.py" "$@"
