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

# started two at a time in this order (all at 1600 reference iterations; lr is the reference lr at
# 8 images, scaled x m/8; `--base-lrs X` names the run _lrX)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --base-lrs 0.05 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.05 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --base-lrs 0.05 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --base-lrs 0.01 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.01 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 2 --base-lrs 0.05 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.2 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --base-lrs 0.05 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --base-lrs 0.1 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --base-lrs 0.05 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --seeds 1 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --base-lrs 0.2 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --base-lrs 0.1 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --base-lrs 0.1 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --base-lrs 0.5 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --base-lrs 0.2 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 8 --base-lrs 0.05 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --base-lrs 0.1 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 2 --base-lrs 0.05 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --base-lrs 0.2 --seeds 1 --extra-seeds --output output/study/shapes_center --keep-in benchmarks/study/shapes_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --base-lrs 0.1 --seeds 1 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 2 --base-lrs 0.05 --seeds 1 --extra-seeds --output output/study/shapes --keep-in benchmarks/study/shapes FRN_MONITOR.ENABLED True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --base-lrs 0.2 --extra-seeds --output output/study/real_center --keep-in benchmarks/study/real_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --base-lrs 0.2 --extra-seeds --output output/study/real_center --keep-in benchmarks/study/real_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --seeds 1 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --base-lrs 0.1 --seeds 1 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods bn --imgs 2 --base-lrs 0.05 --seeds 1 --extra-seeds --output output/study/real --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --extra-seeds --output output/study/shapes_zero_init --keep-in benchmarks/study/shapes_zero_init FRN_MONITOR.ENABLED True MODEL.RESNETS.ZERO_INIT_RESIDUAL True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --base-lrs 0.1 --extra-seeds --output output/study/shapes_zero_init --keep-in benchmarks/study/shapes_zero_init FRN_MONITOR.ENABLED True MODEL.RESNETS.ZERO_INIT_RESIDUAL True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --extra-seeds --output output/study/shapes_norm_per_level --keep-in benchmarks/study/shapes_norm_per_level FRN_MONITOR.ENABLED True MODEL.RETINANET.NORM_PER_LEVEL True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --base-lrs 0.1 --extra-seeds --output output/study/shapes_norm_per_level --keep-in benchmarks/study/shapes_norm_per_level FRN_MONITOR.ENABLED True MODEL.RETINANET.NORM_PER_LEVEL True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --extra-seeds --output output/study/shapes_wd_norm --keep-in benchmarks/study/shapes_wd_norm FRN_MONITOR.ENABLED True SOLVER.WEIGHT_DECAY_NORM 0.0004
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 2 --base-lrs 0.1 --extra-seeds --output output/study/shapes_wd_norm --keep-in benchmarks/study/shapes_wd_norm FRN_MONITOR.ENABLED True SOLVER.WEIGHT_DECAY_NORM 0.0004

# not run yet: the rest of the study (issue 12), at each method's best lr so far (FRN 0.02, GN 0.1,
# BN 0.05, FRN with input centering 0.2)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 2 --base-lrs 0.2 --seeds 1 --extra-seeds --output output/study/real_center --keep-in benchmarks/study/real_center FRN_MONITOR.ENABLED True MODEL.CENTER_PIXELS_PER_IMAGE True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# not run on the CPU: the options at 8 images, measured on a GPU instead (benchmarks/study_gpu/)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --extra-seeds --output output/study/shapes_zero_init --keep-in benchmarks/study/shapes_zero_init FRN_MONITOR.ENABLED True MODEL.RESNETS.ZERO_INIT_RESIDUAL True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study/shapes_zero_init --keep-in benchmarks/study/shapes_zero_init FRN_MONITOR.ENABLED True MODEL.RESNETS.ZERO_INIT_RESIDUAL True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --extra-seeds --output output/study/shapes_norm_per_level --keep-in benchmarks/study/shapes_norm_per_level FRN_MONITOR.ENABLED True MODEL.RETINANET.NORM_PER_LEVEL True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study/shapes_norm_per_level --keep-in benchmarks/study/shapes_norm_per_level FRN_MONITOR.ENABLED True MODEL.RETINANET.NORM_PER_LEVEL True
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods frn --imgs 8 --extra-seeds --output output/study/shapes_wd_norm --keep-in benchmarks/study/shapes_wd_norm FRN_MONITOR.ENABLED True SOLVER.WEIGHT_DECAY_NORM 0.0004
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --methods gn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study/shapes_wd_norm --keep-in benchmarks/study/shapes_wd_norm FRN_MONITOR.ENABLED True SOLVER.WEIGHT_DECAY_NORM 0.0004
