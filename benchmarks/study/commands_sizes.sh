#!/usr/bin/env bash
# The study at 256 px (the images scaled at load time, anchors x2): tools/batch_study.py --sizes 256,
# one call per line, in the order they were queued: two lines at a time, one thread each, from the
# repo root, with FRN_DET_DATASETS set:
#   grep -v -e '^#' -e '^$' benchmarks/study/commands_sizes.sh | xargs -d '\n' -n 1 -P 2 bash -c 'eval "$0"'
# Finished runs are skipped and interrupted ones resume from their checkpoints (if output/study
# survives). Runs at 256 px are named ..._256px beside the 128 px runs of the same variant folder.
# Same schedule as commands.sh: 1600 reference iterations of 8 images (6400 of 2).
# A 256 px run takes about 45-50 min here at 8 images and about 60 at 2 (6400 iterations), two at a
# time.

# 8 images: the paper's FRN and GN at their 128 px best lrs, on both looks, and FRN with a learnable
# eps at 128 px (it completes that row)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.02 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --sizes 256 --base-lrs 0.1 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --base-lrs 0.02 --extra-seeds --output output/study/shapes_learnable_eps --keep-in benchmarks/study/shapes_learnable_eps FRN_MONITOR.ENABLED True MODEL.FRN.LEARNABLE_EPS True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.02 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --sizes 256 --base-lrs 0.1 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True

# The schedule at 256 px, real-photo look: FRN (paper) and GN at 8 images with twice the images
# (--schedules 3200: 3200 iterations of 8, warmup and checkpoints x2; runs under iters3200/), two at
# a time, one thread each (about 2 hours here)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --schedules 3200 --base-lrs 0.02 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --sizes 256 --schedules 3200 --base-lrs 0.1 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# The 2-image column at 256 px, real-photo look, at the study's budget (6400 iterations of 2, lr x 2/8),
# one seed per line so that the pairs run two at a time (each line its own --output, so that two
# calls do not write the same study-level files)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --sizes 256 --seeds 0 --base-lrs 0.02 --extra-seeds --output output/study/real_frn2 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --sizes 256 --seeds 0 --base-lrs 0.1 --extra-seeds --output output/study/real_gn2 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --sizes 256 --seeds 1 --base-lrs 0.02 --extra-seeds --output output/study/real_frn2 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --sizes 256 --seeds 1 --base-lrs 0.1 --extra-seeds --output output/study/real_gn2 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# BN at 2 images (seed 0) and at 8, 256 px, real-photo look (about 60 and 50 min, two at a time)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 2 --sizes 256 --seeds 0 --base-lrs 0.05 --extra-seeds --output output/study/real_bn2 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --sizes 256 --base-lrs 0.05 --extra-seeds --output output/study/real_bn8 --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# FRN with the learnable eps (the paper's remedy for small maps), 8 images, 256 px, real-photo look
# (about 45 min, run beside the end of the BN pair)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.02 --extra-seeds --output output/study/real_learnable_eps --keep-in benchmarks/study/real_learnable_eps FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)" MODEL.FRN.LEARNABLE_EPS True

# FRN with the learnable eps at 3200 iterations of 8 (25,600 images), 256 px, real-photo look (about
# 85 min, beside two 2-image runs)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --schedules 3200 --base-lrs 0.02 --extra-seeds --output output/study/real_learnable_eps_3200 --keep-in benchmarks/study/real_learnable_eps FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)" MODEL.FRN.LEARNABLE_EPS True

# FRN with the learnable eps, 8 images, 256 px, photo-like look (about 40 min, beside a 2-image run)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.02 --extra-seeds --output output/study/shapes_learnable_eps --keep-in benchmarks/study/shapes_learnable_eps FRN_MONITOR.ENABLED True MODEL.FRN.LEARNABLE_EPS True

# not run yet (each about 45-55 min, two at a time): the rest of the 8-image column at 256 px
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --sizes 256 --base-lrs 0.02 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --sizes 256 --base-lrs 0.02 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --sizes 256 --base-lrs 0.05 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --sizes 256 --base-lrs 0.05 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
