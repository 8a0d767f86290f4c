#!/usr/bin/env bash
# Five seeds in the 2-image FRN and GN cells at 256 px (real-photo look, 12,800 images a run, FRN monitor on),
# each method at its 256 px best lr of the sweep in commands_lr_ablation.sh (FRN (paper) 0.2, GN 0.1), seeds
# 3 and 4 beside commands_seeds.sh's 0, 1 and 2; no lr moves, no cell rerun. Through the study's local
# launcher, two runs at once, one thread each (or --launcher slurm: one job each). From the repo root:
#   grep -v -e '^#' -e '^$' benchmarks/study/commands_seeds_2img.sh | xargs -d '\n' -n 1 bash -c 'eval "$0"'
# Finished runs are skipped; each line says its result once it ran.

# seed 3, FRN @2 and GN @2 side by side (80.1 min for the two on 2 cores, Intel Xeon, beside other work; the kernel of
# commit e609c7e): FRN 85.0 AP (AP50 98.5, AP75 97.5), GN 87.4 (AP50 98.5, AP75 96.5)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --launcher local --jobs 2 --methods frn gn --imgs 2 --sizes 256 --seeds 3 --extra-seeds --base-lrs frn=0.2 gn=0.1 --output output/study/real_5seeds_2img --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"

# seed 4, not run yet (about 80 min for the two side by side on 2 cores)
OMP_NUM_THREADS=1 .venv/bin/python tools/batch_study.py --launcher local --jobs 2 --methods frn gn --imgs 2 --sizes 256 --seeds 4 --extra-seeds --base-lrs frn=0.2 gn=0.1 --output output/study/real_5seeds_2img --keep-in benchmarks/study/real FRN_MONITOR.ENABLED True DATASETS.TRAIN "('shapes_real_train',)" DATASETS.TEST "('shapes_real_val',)"
