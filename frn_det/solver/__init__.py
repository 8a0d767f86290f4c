from .build import build_optimizer, frn_optimizer_params_of, get_frn_optimizer_params
from .lr_scheduler import WARMUP_METHODS, WarmupParamScheduler, build_lr_scheduler
