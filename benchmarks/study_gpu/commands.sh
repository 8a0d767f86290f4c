# The study's options at 8 images per GPU on one GPU: tools/device/study.sh runs these lines
# 8 at a time on a lent H200 (benchmarks/study_gpu/README.md). Same config, data, schedule and lrs as the CPU
# study (benchmarks/study/commands.sh: FRN 0.02, GN 0.1), MODEL.DEVICE cuda; a run's results, metrics and
# config land in benchmarks/study_gpu/<variant>/<run>/. With FRN_DET_DATASETS set, each line also runs alone.
python3 tools/batch_study.py --device cuda --methods frn --imgs 8 --extra-seeds --output output/study_gpu/shapes --keep-in benchmarks/study_gpu/shapes FRN_MONITOR.ENABLED True
python3 tools/batch_study.py --device cuda --methods gn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study_gpu/shapes --keep-in benchmarks/study_gpu/shapes FRN_MONITOR.ENABLED True
python3 tools/batch_study.py --device cuda --methods frn --imgs 8 --extra-seeds --output output/study_gpu/shapes_zero_init --keep-in benchmarks/study_gpu/shapes_zero_init FRN_MONITOR.ENABLED True MODEL.RESNETS.ZERO_INIT_RESIDUAL True
python3 tools/batch_study.py --device cuda --methods gn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study_gpu/shapes_zero_init --keep-in benchmarks/study_gpu/shapes_zero_init FRN_MONITOR.ENABLED True MODEL.RESNETS.ZERO_INIT_RESIDUAL True
python3 tools/batch_study.py --device cuda --methods frn --imgs 8 --extra-seeds --output output/study_gpu/shapes_norm_per_level --keep-in benchmarks/study_gpu/shapes_norm_per_level FRN_MONITOR.ENABLED True MODEL.RETINANET.NORM_PER_LEVEL True
python3 tools/batch_study.py --device cuda --methods gn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study_gpu/shapes_norm_per_level --keep-in benchmarks/study_gpu/shapes_norm_per_level FRN_MONITOR.ENABLED True MODEL.RETINANET.NORM_PER_LEVEL True
python3 tools/batch_study.py --device cuda --methods frn --imgs 8 --extra-seeds --output output/study_gpu/shapes_wd_norm --keep-in benchmarks/study_gpu/shapes_wd_norm FRN_MONITOR.ENABLED True SOLVER.WEIGHT_DECAY_NORM 0.0004
python3 tools/batch_study.py --device cuda --methods gn --imgs 8 --base-lrs 0.1 --extra-seeds --output output/study_gpu/shapes_wd_norm --keep-in benchmarks/study_gpu/shapes_wd_norm FRN_MONITOR.ENABLED True SOLVER.WEIGHT_DECAY_NORM 0.0004
