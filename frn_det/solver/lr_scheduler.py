from detectron2.solver import build_lr_scheduler as d2_build_lr_scheduler
from detectron2.solver import lr_scheduler as d2_lr_scheduler
from fvcore.common.param_scheduler import CosineParamScheduler

WARMUP_METHODS = ("constant", "linear", "cosine")


def _check_warmup_method(warmup_method):
    if warmup_method not in WARMUP_METHODS:
        raise ValueError(
            f"Unknown SOLVER.WARMUP_METHOD {warmup_method!r}; valid: {', '.join(WARMUP_METHODS)}"
        )


def _ramp_up_along_cosine(warmup):
    """Turns a linear-warmup WarmupParamScheduler into a cosine one, in place: the same start and end
    values, joined by half a cosine."""
    linear = warmup._schedulers[0]
    warmup._schedulers[0] = CosineParamScheduler(linear._start_value, linear._end_value)


class WarmupParamScheduler(d2_lr_scheduler.WarmupParamScheduler):
    """detectron2's WarmupParamScheduler with a "cosine" ramp-up (the paper, section 4.1): the
    multiplier rises from warmup_factor * s(0) to s(warmup_length) along half a cosine."""

    def __init__(self, scheduler, warmup_factor, warmup_length, warmup_method="linear",
                 rescale_interval=False):
        _check_warmup_method(warmup_method)
        super().__init__(scheduler, warmup_factor, warmup_length,
                         "linear" if warmup_method == "cosine" else warmup_method, rescale_interval)
        if warmup_method == "cosine":
            _ramp_up_along_cosine(self)


def build_lr_scheduler(cfg, optimizer):
    """detectron2's build_lr_scheduler, plus SOLVER.WARMUP_METHOD "cosine" (frn_det's Trainer uses it).

    detectron2 builds its warmup from a fixed list of methods, so a cosine config is built with the
    linear warmup of the same start and end, and that segment then follows half a cosine. Both start
    at warmup_factor * s(0), so the first lr detectron2 sets is the cosine one too.
    """
    method = cfg.SOLVER.WARMUP_METHOD
    _check_warmup_method(method)
    if method != "cosine":
        return d2_build_lr_scheduler(cfg, optimizer)
    linear = cfg.clone()
    linear.defrost()
    linear.SOLVER.WARMUP_METHOD = "linear"
    scheduler = d2_build_lr_scheduler(linear, optimizer)
    _ramp_up_along_cosine(scheduler._multiplier)  # detectron2's LRMultiplier keeps no public handle
    return scheduler
