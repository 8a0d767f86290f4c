#!/usr/bin/env bash
# The learning-rate sweep at 256 px, real-photo look, 8 images (12,800 images, 1600 iterations, seed 0,
# FRN monitor on): each method at the lrs around its 128 px best (FRN 0.02, GN 0.1, BN 0.05, in
# commands_sizes.sh), as Table 6 takes the best of three base lrs. One call per line, each with its
# own --output (two calls then never write the same study-level files), two lines at a time, one
# thread each, from the repo root:
#   grep -v -e '^#' -e '^$' benchmarks/study/commands_lr_ablation.sh | xargs -d '\n' -n 1 -P 2 bash -c 'eval "$0"'
# Finished runs are skipped. A 256 px run of 8 images takes about 50 min here, two at a time.

# FRN (paper) at 0.05 and 0.1. The 0.05 run was stopped after its iteration-800 checkpoint and resumed
# from it by the same line with OMP_NUM_THREADS=2 (83.4 AP). The 0.1 run (84.4 AP) ran from scratch
# beside GN at 0.2, both at nice -5 while other work shared the cores (87 min each).
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.05 --extra-seeds --output output/study/real_lr_frn0.05 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.1 --extra-seeds --output output/study/real_lr_frn0.1 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# GN at 0.2 (84.8 AP), beside FRN at 0.1; GN at 0.05 not run yet
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --sizes 256 --base-lrs 0.2 --extra-seeds --output output/study/real_lr_gn0.2 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --sizes 256 --base-lrs 0.05 --extra-seeds --output output/study/real_lr_gn0.05 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# not run yet: BN at 0.02 and 0.1; FRN at 0.2 (its best, 0.1, is at the end of its range)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --sizes 256 --base-lrs 0.02 --extra-seeds --output output/study/real_lr_bn0.02 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --sizes 256 --base-lrs 0.1 --extra-seeds --output output/study/real_lr_bn0.1 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.2 --extra-seeds --output output/study/real_lr_frn0.2 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
