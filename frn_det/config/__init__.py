from .build import build_cfg, merge_config
from .defaults import add_frn_config
from .norms import frn_norm_of, with_frn_options
