"""The training loops frn_det's Trainer runs: detectron2's, stopped with a message naming each loss
that is not finite."""
import math

import torch
from detectron2.engine import AMPTrainer, SimpleTrainer
from detectron2.utils import comm

from .amp import CPUAMPTrainer

NON_FINITE_LOSS = "Non-finite loss"  # the message's start, which the study looks for in a run's log


def check_losses_finite(loss_dict, iteration):
    """Raises FloatingPointError naming each non-finite loss and the iteration."""
    values = {k: float(v.detach()) for k, v in loss_dict.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        where = f" on rank {comm.get_rank()}" if comm.get_world_size() > 1 else ""
        raise FloatingPointError(
            f"{NON_FINITE_LOSS} at iteration {iteration}{where}: "
            + ", ".join(f"{k}={values[k]}" for k in bad)
            + f" (all losses: {values}). Training stopped before the optimizer step; the last "
            "checkpoint in OUTPUT_DIR is intact: continue with --resume, e.g. with a lower SOLVER.BASE_LR."
        )


class _LossCheck:
    """detectron2 checks only the sum of the losses, on the main process, and names no loss."""

    def _write_metrics(self, loss_dict, data_time, prefix="", iter=None):
        check_losses_finite(loss_dict, self.iter if iter is None else iter)
        super()._write_metrics(loss_dict, data_time, prefix=prefix, iter=iter)


class TrainLoop(_LossCheck, SimpleTrainer):
    pass


class CUDAAMPTrainLoop(_LossCheck, AMPTrainer):
    pass


class CPUAMPTrainLoop(_LossCheck, CPUAMPTrainer):
    pass


def uses_cpu_amp(cfg):
    return cfg.SOLVER.AMP.ENABLED and torch.device(cfg.MODEL.DEVICE).type == "cpu"


def build_train_loop(cfg, model, data_loader, optimizer):
    """bf16 autocast on the CPU with SOLVER.AMP.ENABLED, detectron2's fp16 AMPTrainer on CUDA."""
    if uses_cpu_amp(cfg):
        return CPUAMPTrainLoop(model, data_loader, optimizer)
    return (CUDAAMPTrainLoop if cfg.SOLVER.AMP.ENABLED else TrainLoop)(model, data_loader, optimizer)
