#!/usr/bin/env bash
# Creates or refreshes .venv in the repo root with torch, detectron2 and frn_det (editable).
# Idempotent: does nothing when requirements and setup.py are unchanged since the last success.
# A detectron2 the user already has (importable by $FRN_PYTHON or python3) is used instead of the wheel.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py_base="${FRN_PYTHON:-python3}"
stamp="$venv/.frn_det_setup"
# Everything that changes what gets installed or built (the C++ kernel included).
want="$(cat "$root/requirements.txt" "$root/setup.py" "$root/tools/setup_env.sh" "$root"/frn_det/layers/csrc/* 2>/dev/null | sha256sum | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi

echo "[setup] preparing $venv (first run takes a few minutes)"
# --system-site-packages lets a user's own detectron2/torch build be seen from the venv.
user_d2=0
if "$py_base" -c "import detectron2" >/dev/null 2>&1; then user_d2=1; fi
if [ ! -x "$venv/bin/python" ]; then
  if [ "$user_d2" = 1 ]; then
    "$py_base" -m venv --system-site-packages "$venv"
  else
    "$py_base" -m venv "$venv"
  fi
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
quiet() { "$@" 2> >(grep -v "is neither a file nor a directory" >&2); }
quiet "${pip[@]}" install -r "$root/requirements.txt"

if "$venv/bin/python" -c "import detectron2" >/dev/null 2>&1; then
  echo "[setup] using installed detectron2: $("$venv/bin/python" -c 'import detectron2, os; print(os.path.dirname(detectron2.__file__))')"
else
  # detectron2 is not on the registry under its own name; sal-detectron2 is an unmodified snapshot of
  # its main branch, tagged cp310 only. Its pure-Python part works on 3.11 (the compiled _C never loads).
  tmp="$(mktemp -d)"
  quiet "${pip[@]}" download --no-deps --only-binary=:all: --python-version 3.10 -d "$tmp" "sal-detectron2==0.7.2"
  "$venv/bin/python" -m installer "$tmp"/*.whl
  rm -rf "$tmp"
fi
quiet "${pip[@]}" install --no-deps --no-build-isolation -e "$root"
"$venv/bin/python" -c "import detectron2, frn_det" 
echo "$want" > "$stamp"
echo "[setup] done"
