from .build import NO_CUDA_WARNING, build_cfg, cpu_without_cuda, merge_config
from .defaults import add_frn_config
from .norms import frn_norm_of, with_frn_options
