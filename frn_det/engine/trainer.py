"""detectron2's DefaultTrainer with frn_det's optimizer and COCO evaluation, and the config set-up
that tools/train_net.py and tools/batch_study.py share."""
import difflib
import logging
import math
import os
import re
import warnings
import weakref

import torch
from detectron2.config import CfgNode, get_cfg
from detectron2.engine import AMPTrainer, DefaultTrainer, SimpleTrainer, default_setup, hooks
from detectron2.evaluation import COCOEvaluator
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from frn_det.config import add_frn_config
from frn_det.config.defaults import apply_frn_options
from frn_det.data.datasets import check_datasets
from frn_det.solver import build_optimizer

from .amp import CPUAMPTrainer
from .checkpoint import AtomicCheckpointer
from .monitor import FRNMonitor

logger = logging.getLogger("frn_det")
WRITER_PERIOD = 20  # DefaultTrainer.build_hooks' PeriodicWriter period (fixed in detectron2)


def check_losses_finite(loss_dict, iteration):
    """Raises FloatingPointError naming each non-finite loss and the iteration."""
    values = {k: float(v.detach()) for k, v in loss_dict.items()}
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        where = f" on rank {comm.get_rank()}" if comm.get_world_size() > 1 else ""
        raise FloatingPointError(
            f"Non-finite loss at iteration {iteration}{where}: "
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


class FiniteAtomicCheckpointer(AtomicCheckpointer):
    """Refuses to write weights that are not finite, so that the last checkpoint is a usable one."""

    def save(self, name, **kwargs):
        for key, value in self.model.state_dict().items():
            if value.is_floating_point() and not torch.isfinite(value).all():
                raise FloatingPointError(
                    f"Not saving checkpoint {name!r}: {key} is not finite. Training stopped; the previous "
                    "checkpoint (OUTPUT_DIR/last_checkpoint) is intact."
                )
        super().save(name, **kwargs)


def uses_cpu_amp(cfg):
    return cfg.SOLVER.AMP.ENABLED and torch.device(cfg.MODEL.DEVICE).type == "cpu"


class Trainer(DefaultTrainer):
    def __init__(self, cfg):
        with warnings.catch_warnings():
            if uses_cpu_amp(cfg):  # DefaultTrainer builds a CUDA GradScaler, replaced below
                warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp\.GradScaler")
            super().__init__(cfg)
        # DefaultTrainer hard-codes its train loop; keep its model, data loader and optimizer
        loop = self._trainer
        self._trainer = self.build_train_loop(cfg, loop.model, loop.data_loader, loop.optimizer)

    @classmethod
    def build_train_loop(cls, cfg, model, data_loader, optimizer):
        """bf16 autocast on the CPU with SOLVER.AMP.ENABLED, detectron2's fp16 AMPTrainer on CUDA."""
        if uses_cpu_amp(cfg):
            return CPUAMPTrainLoop(model, data_loader, optimizer)
        return (CUDAAMPTrainLoop if cfg.SOLVER.AMP.ENABLED else TrainLoop)(model, data_loader, optimizer)

    def build_hooks(self):
        # before PeriodicCheckpointer captures self.checkpointer
        self.checkpointer = FiniteAtomicCheckpointer(
            self.checkpointer.model, self.cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
        )
        ret = super().build_hooks()
        monitor = self.cfg.get("FRN_MONITOR")
        if monitor is not None and monitor.ENABLED:
            # right after IterationTimer: its after_step removes the forward hooks before EvalHook and
            # PreciseBN run forward passes of their own, and before the writer writes the storage
            ret.insert(1, FRNMonitor(monitor.PERIOD, WRITER_PERIOD))
        return ret

    def resume_or_load(self, resume=True):
        super().resume_or_load(resume=resume)
        if self.start_iter > 0:
            group = hooks.LRScheduler.get_best_param_group_id(self.optimizer)
            logger.info("Resumed at iteration %d with lr %.9g", self.start_iter,
                        self.optimizer.param_groups[group]["lr"])

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return COCOEvaluator(dataset_name, tasks=("bbox",), output_dir=output_folder)


def check_recipe_options(cfg):
    """MODEL.CENTER_PIXELS_PER_IMAGE is implemented by RetinaNetFRN only: one error rather than a key
    that another meta-architecture would ignore."""
    if cfg.MODEL.get("CENTER_PIXELS_PER_IMAGE", False) and cfg.MODEL.META_ARCHITECTURE != "RetinaNetFRN":
        raise ValueError(f"MODEL.CENTER_PIXELS_PER_IMAGE is implemented by META_ARCHITECTURE 'RetinaNetFRN' only; "
                         f"this config uses {cfg.MODEL.META_ARCHITECTURE!r}")


def check_batch_split(cfg, num_gpus, num_machines=1):
    """One clear error when SOLVER.IMS_PER_BATCH can't be split evenly across the processes
    (detectron2 asserts it deep inside the data loader, or in auto_scale_workers)."""
    ims, ref = cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.REFERENCE_WORLD_SIZE
    num_processes = num_gpus * num_machines
    if ims < 1:
        raise ValueError(f"SOLVER.IMS_PER_BATCH must be >= 1, got {ims}")
    if ref:  # auto_scale_workers keeps IMS_PER_BATCH / REFERENCE_WORLD_SIZE images per process
        if ims % ref:
            raise ValueError(
                f"SOLVER.IMS_PER_BATCH ({ims}) is not a multiple of SOLVER.REFERENCE_WORLD_SIZE ({ref}): "
                "the config's images per process must be a whole number"
            )
    elif ims % num_processes:
        raise ValueError(
            f"SOLVER.IMS_PER_BATCH ({ims}) can't be split evenly across {num_processes} processes "
            f"(--num-gpus {num_gpus} x --num-machines {num_machines}): use a multiple of {num_processes}, "
            "or set SOLVER.REFERENCE_WORLD_SIZE to keep the images per process fixed"
        )


def _keys(node, prefix=""):
    for k, v in node.items():
        yield from _keys(v, f"{prefix}{k}.") if isinstance(v, CfgNode) else (f"{prefix}{k}",)


def merge_config(cfg, config_file, opts):
    """merge_from_file + merge_from_list. An unknown key or a value of the wrong type is one ValueError
    naming the key, where it was given, and the closest valid keys (yacs asserts, or names only the key)."""
    for source, merge in ((config_file, lambda: cfg.merge_from_file(config_file)),
                          ("the command line", lambda: cfg.merge_from_list(opts))):
        try:
            merge()
        except (KeyError, ValueError, AssertionError) as e:
            message = e.args[0] if e.args else str(e)
            key = re.search(r"(?:key|for config key): (\S+)$", str(message))
            close = _close_keys(cfg, key.group(1)) if key else []
            hint = f" Did you mean {' or '.join(close)}?" if close and key.group(1) not in close else ""
            raise ValueError(f"Config error in {source}: {message}.{hint}") from e
    return cfg


def _close_keys(cfg, key):
    """Valid keys close to `key`: its siblings first (DEPHT -> DEPTH), else any key."""
    keys = list(_keys(cfg))
    parent, _, leaf = key.rpartition(".")
    siblings = [k.rpartition(".")[2] for k in keys if k.rpartition(".")[0] == parent]
    close = [f"{parent}.{k}" if parent else k for k in difflib.get_close_matches(leaf, siblings, n=2, cutoff=0.7)]
    return close or difflib.get_close_matches(key, keys, n=2, cutoff=0.8)


def build_cfg(config_file, opts=()):
    """get_cfg + add_frn_config + the file and command-line overrides (errors that name the key), with
    the embedded datasets registered. Not frozen: for tools that adjust it (export, batch study)."""
    from frn_det.data import register_default_datasets

    register_default_datasets()
    return merge_config(add_frn_config(get_cfg()), config_file, list(opts))


def prepare_datasets(names):
    """Generates the embedded datasets among `names` (once, on the main process), then checks that all
    are on disk and well-formed."""
    from frn_det.data import ensure_generated

    if comm.is_main_process():
        for name in names:
            ensure_generated(name)  # a no-op for others
    comm.synchronize()
    check_datasets(names)


def setup_cfg(args):
    """build_cfg, then detectron2's default_setup (logging, seed, OUTPUT_DIR), frn_det's options and
    the datasets the run needs."""
    cfg = build_cfg(args.config_file, args.opts)
    no_cuda = cfg.MODEL.DEVICE == "cuda" and not torch.cuda.is_available()
    if no_cuda:
        cfg.MODEL.DEVICE = "cpu"
    check_recipe_options(cfg)
    if not args.eval_only:
        check_batch_split(cfg, getattr(args, "num_gpus", 1), getattr(args, "num_machines", 1))
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="frn_det")
    if no_cuda:
        logger.warning("MODEL.DEVICE is 'cuda' but CUDA is not available: running on the CPU")
    apply_frn_options(cfg)
    prepare_datasets(cfg.DATASETS.TEST if args.eval_only else cfg.DATASETS.TRAIN + cfg.DATASETS.TEST)
    return cfg
