#!/usr/bin/env bash
# The README's main-job command: set up .venv (quick when nothing changed), then train RetinaNet-FRN
# from scratch on the embedded shapes dataset and evaluate it. Extra arguments go to train_net.py
# (e.g. SOLVER.MAX_ITER 200, or --num-gpus 2).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/tools/setup_env.sh"
cd "$root"
exec .venv/bin/python tools/train_net.py --config-file configs/demo/retinanet_frn_R18_shapes.yaml "$@"
