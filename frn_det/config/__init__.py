from .build import NO_CUDA_WARNING, build_cfg, command_cfg, cpu_without_cuda, lazy_command_cfg, merge_config
from .defaults import add_frn_config
from .to_frn import to_frn
