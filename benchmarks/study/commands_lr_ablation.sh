#!/usr/bin/env bash
# The 256 px runs of the real-photo look at 8 images (12,800 images, 1600 iterations, seed 0, FRN
# monitor on): the learning-rate sweep (each method at the lrs around its 128 px best, FRN 0.02, GN 0.1,
# BN 0.05 in commands_sizes.sh, as Table 6 takes the best of three base lrs), then Table 3's ablations
# and input centering, then 384 px. One call per line, each with its own --output (two calls then never
# write the same study-level files), one thread each, two lines at a time (or three: the same images
# per second in all), from the repo root:
#   grep -v -e '^#' -e '^$' benchmarks/study/commands_lr_ablation.sh | xargs -d '\n' -n 1 -P 2 bash -c 'eval "$0"'
# Finished runs are skipped. A 256 px run of 8 images takes about 50-60 min here, two at a time.

# FRN (paper) at 0.05 and 0.1. The 0.05 run was stopped after its iteration-800 checkpoint and resumed
# from it by the same line with OMP_NUM_THREADS=2 (83.4 AP). The 0.1 run (84.4 AP) ran from scratch
# beside GN at 0.2, both at nice -5 while other work shared the cores (87 min each).
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.05 --extra-seeds --output output/study/real_lr_frn0.05 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.1 --extra-seeds --output output/study/real_lr_frn0.1 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
# GN at 0.2 (84.8 AP), beside FRN at 0.1
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --sizes 256 --base-lrs 0.2 --extra-seeds --output output/study/real_lr_gn0.2 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# FRN at 0.2 (84.8 AP: its best, at the end of its range again) and GN at 0.05 (85.6 AP; GN's best stays
# 0.1), side by side at nice -5, with the centering run below as a third process from their 30th minute
# (78 min each)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.2 --extra-seeds --output output/study/real_lr_frn0.2 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --sizes 256 --base-lrs 0.05 --extra-seeds --output output/study/real_lr_gn0.05 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# Table 3 in detection, each at the 256 px best lr of the method it derives from; input centering at
# lr 0.1 (its 128 px best on this look), started beside the two above: 83.5 AP (AP50 97.7, AP75 96.2)
# against 84.4 without it at the same lr (82 min, three processes on the two cores for most of it)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.1 --extra-seeds --output output/study/real_center_256 --keep-in benchmarks/study/real_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
# GN + TLU at GN's best (0.1), beside FRN at 0.5 (the step after 0.2) and the centering run: 85.65 AP
# (AP50 98.3, AP75 97.5) against GN's 85.68 (72 min). FRN at 0.5
# diverged (non-finite loss at iteration 403 of 1600; its diverged.txt is the run's error line), so 0.2
# is FRN's best at 256 px
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn_tlu --imgs 8 --sizes 256 --base-lrs 0.1 --extra-seeds --output output/study/real_t3_gn_tlu0.1 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.5 --extra-seeds --output output/study/real_lr_frn0.5 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# GFRN + TLU at GN's lr (0.1: 84.2 AP, AP50 97.9, AP75 96.1) and FRN's (0.2: 83.9), FRN + ReLU at FRN's
# (0.2: 79.1 AP, AP50 98.0, AP75 95.8), three processes at nice -5 on the two cores (92-110 min each)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gfrn --imgs 8 --sizes 256 --base-lrs 0.1 --extra-seeds --output output/study/real_t3_gfrn0.1 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gfrn --imgs 8 --sizes 256 --base-lrs 0.2 --extra-seeds --output output/study/real_t3_gfrn_frnlr --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn_relu --imgs 8 --sizes 256 --base-lrs 0.2 --extra-seeds --output output/study/real_t3_frn_relu --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# 384 px: FRN at its 256 px best (0.2): 85.8 AP (AP50 98.7, AP75 97.7); GN at its 256 px best (0.1): 87.3 AP
# (AP50 98.8, AP75 98.2); side by side, one thread each (125 min each)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 384 --base-lrs 0.2 --extra-seeds --output output/study/real_384_frn --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --sizes 384 --base-lrs 0.1 --extra-seeds --output output/study/real_384_gn --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# FRN at 384 px one step above its 256 px best (0.5): diverged (non-finite loss at iteration 97 of 1600,
# in the warmup; 8 min), as at 256 px (there at iteration 403), so 0.2 is FRN's best at 384 px of those run
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 384 --base-lrs 0.5 --extra-seeds --output output/study/real_384_frn_up --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# BN at 0.1: 86.1 AP (AP50 99.2, AP75 98.1) against 82.5 at 0.05: BN's best moved by 3.7 AP, to the end
# of its range (60 min, beside FRN's 2-image cell)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --sizes 256 --base-lrs 0.1 --extra-seeds --output output/study/real_lr_bn0.1 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# FRN's 2-image cell at its 256 px best lr (0.2; seed 0; its best moved by more than 1 AP): 85.7 AP (AP50
# 98.7, AP75 97.8), +1.0 over 8 images (68 min, beside BN at 0.1, then beside BN at 0.2 as it started)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --sizes 256 --seeds 0 --base-lrs 0.2 --extra-seeds --output output/study/real_lr_frn2img --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# BN one step further (0.2), as its best was at the end of its range: 83.0 AP (AP50 98.0, AP75 96.5), so
# 0.1 is BN's best (60 min, beside FRN's 2-image cell and then BN at 0.02)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --sizes 256 --base-lrs 0.2 --extra-seeds --output output/study/real_lr_bn0.2 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# BN at 0.02: 82.4 AP (AP50 97.7, AP75 96.3); BN's sweep (seed 0): 82.4, 82.5, 86.1, 83.0 at 0.02, 0.05,
# 0.1, 0.2
# (60 min, beside BN at 0.2 and then alone)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --sizes 256 --base-lrs 0.02 --extra-seeds --output output/study/real_lr_bn0.02 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# BN's 2-image cell (seed 0) at its best lr (0.1; its best moved by more than 1 AP): 83.4 AP (AP50 96.1,
# AP75 94.1), 1.7 below its 8-image mean at 0.1 (63 min, beside BN's second seed at 0.1)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 2 --sizes 256 --seeds 0 --base-lrs 0.1 --extra-seeds --output output/study/real_lr_bn2img --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# A second seed of BN at 0.1, 8 images (seed 0 sat 3.1-3.7 AP above its neighbouring lrs): 84.2 AP (AP50
# 98.3, AP75 97.3); mean of the two 85.1, still BN's best (56 min, beside BN's 2-image cell)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --sizes 256 --seeds 1 --base-lrs 0.1 --extra-seeds --output output/study/real_lr_bn0.1_seed1 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
