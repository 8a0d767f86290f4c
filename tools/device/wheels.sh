#!/usr/bin/env bash
# Fills .whl/ (git-ignored) with what the GPU image lacks, for CPython 3.12 on manylinux x86-64:
# detectron2 and the packages it and frn_det import that the image does not bring (the image has torch,
# triton, numpy, opencv, matplotlib, tensorboard, pytest). tools/device/check.sh installs them there, with
# no network. Needs only the package registry. Idempotent: does nothing when .whl holds this list already.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="$root/.whl"
# The versions .venv has (requirements.txt). The dry run installs them but runs on this machine's
# Python and .venv; only the device run imports the cp312 wheels.
detectron2="sal-detectron2==0.7.2"  # what tools/setup_env.sh installs; tagged cp310, pure Python in use
wheels=(pycocotools==2.0.11 PyYAML==6.0.4 yacs==0.1.8 omegaconf==2.3.1 hydra-core==1.3.8
        termcolor==3.3.0 tabulate==0.10.0 cloudpickle==3.1.3 tqdm==4.70.1 portalocker==4.4.2
        installer==1.1.0)  # published as wheels; installer: check.sh installs with it (no tag check, no resolver)
sources=(fvcore==0.1.5.post20221221 iopath==0.1.10 antlr4-python3-runtime==4.9.3)  # published as sources only
stamp="$dest/.wheels-list"
want="$(printf '%s\n' "$detectron2" "${wheels[@]}" "${sources[@]}")"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "[wheels] $dest is up to date ($(du -sh "$dest" | cut -f1))"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pip=(python3 -m pip --disable-pip-version-check -q)
# the same filter as setup_env.sh: pip warns about each local index that lacks a package
quiet() { "$@" 2> >(grep -v "is neither a file nor a directory" >&2); }
quiet "${pip[@]}" download --no-deps --only-binary=:all: --python-version 3.10 -d "$tmp/w" "$detectron2"
quiet "${pip[@]}" download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  -d "$tmp/w" "${wheels[@]}"
# Pure-Python sources: the wheels built here hold no compiled code, so they fit any CPython 3.
quiet "${pip[@]}" wheel --no-deps -w "$tmp/w" "${sources[@]}"
rm -rf "$dest"
mv "$tmp/w" "$dest"
echo "$want" > "$stamp"
echo "[wheels] filled $dest: $(ls "$dest"/*.whl | wc -l) wheels, $(du -sh "$dest" | cut -f1)"
