from detectron2.solver import lr_scheduler as d2_lr_scheduler
from fvcore.common.param_scheduler import CosineParamScheduler

WARMUP_METHODS = ("constant", "linear", "cosine")


class WarmupParamScheduler(d2_lr_scheduler.WarmupParamScheduler):
    """detectron2's WarmupParamScheduler with a "cosine" ramp-up (the paper, section 4.1): the
    multiplier rises from warmup_factor * s(0) to s(warmup_length) along half a cosine."""

    def __init__(self, scheduler, warmup_factor, warmup_length, warmup_method="linear",
                 rescale_interval=False):
        if warmup_method not in WARMUP_METHODS:
            raise ValueError(
                f"Unknown SOLVER.WARMUP_METHOD {warmup_method!r}; valid: {', '.join(WARMUP_METHODS)}"
            )
        super().__init__(scheduler, warmup_factor, warmup_length,
                         "linear" if warmup_method == "cosine" else warmup_method, rescale_interval)
        if warmup_method == "cosine":
            linear = self._schedulers[0]
            self._schedulers[0] = CosineParamScheduler(linear._start_value, linear._end_value)
