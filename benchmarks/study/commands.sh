#!/usr/bin/env bash
# The runs of benchmarks/study/ (issue 12), one tools/batch_study.py call per line, in the order they
# were run: two lines at a time, one thread each (the fastest use of 2 cores), from the repo root:
#   grep -v -e '^#' -e '^$' benchmarks/study/commands.sh | xargs -d '\n' -n 1 -P 2 bash -c 'eval "$0"'
# Every call skips finished runs and resumes interrupted ones, so this can be run again at any time;
# --keep-in copies each finished run's results.json, metrics.json and config.yaml here. Then:
#   .venv/bin/python tools/study_summary.py     # summary.md, summary.png
# The FRN health monitor is on in every run (about 1% of the time). The frn and gn 8-image runs at lr
# 0.02 of shapes/ are those of the convergence curve (output/convergence/iters1600 copied to
# output/study/shapes; same solver, without the monitor).

# stage 1: the learning rate at 8 images (reference lrs 0.02, 0.05, 0.01; 0.02 is the config's), and GN at 2 at 0.02
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --base-lrs 0.05 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.05 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --base-lrs 0.05 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --base-lrs 0.01 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.01 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --base-lrs 0.01 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
