"""detectron2's DefaultTrainer with frn_det's optimizer and COCO evaluation, and the config set-up
that tools/train_net.py and tools/batch_study.py share."""
import logging
import os
import weakref

import torch
from detectron2.config import get_cfg
from detectron2.engine import DefaultTrainer, default_setup
from detectron2.evaluation import COCOEvaluator
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from frn_det.config import add_frn_config
from frn_det.config.defaults import apply_frn_options
from frn_det.data.datasets import check_datasets
from frn_det.solver import build_optimizer

from .checkpoint import AtomicCheckpointer

logger = logging.getLogger("frn_det")


class Trainer(DefaultTrainer):
    def build_hooks(self):
        # before PeriodicCheckpointer captures self.checkpointer
        self.checkpointer = AtomicCheckpointer(
            self.checkpointer.model, self.cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
        )
        return super().build_hooks()

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return COCOEvaluator(dataset_name, tasks=("bbox",), output_dir=output_folder)


def setup_cfg(args):
    """get_cfg + add_frn_config + the file and command-line overrides, then detectron2's default_setup."""
    from frn_det.data import ensure_generated, register_default_datasets

    register_default_datasets()
    cfg = add_frn_config(get_cfg())
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    if cfg.MODEL.DEVICE == "cuda" and not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"  # detectron2's default; this machine has no GPU
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="frn_det")
    apply_frn_options(cfg)
    names = cfg.DATASETS.TEST if args.eval_only else cfg.DATASETS.TRAIN + cfg.DATASETS.TEST
    if comm.is_main_process():
        for name in names:
            ensure_generated(name)  # the embedded datasets; a no-op for others
    comm.synchronize()
    check_datasets(names)
    return cfg
