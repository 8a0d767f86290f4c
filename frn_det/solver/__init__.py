from .build import build_optimizer, get_frn_optimizer_params, register_cosine_warmup
from .lr_scheduler import WarmupParamScheduler
