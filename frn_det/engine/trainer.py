"""detectron2's DefaultTrainer with frn_det's parts, each from its own build_* method, as detectron2's
projects do it: FRN options in the model, the FRN path (MODEL.FRN.IMPL), FRN-aware optimizer, cosine
warmup, CPU-capable DDP, loss checks, atomic checkpoints, the FRN monitor, COCO evaluation and
strict-JSON metrics.json."""
import logging
import os
import weakref

from detectron2.engine import DefaultTrainer, TrainerBase, hooks
from detectron2.utils.events import CommonMetricPrinter, TensorboardXWriter
from detectron2.evaluation import COCOEvaluator
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from frn_det.data.checks import naming_malformed_datasets
from frn_det.modeling import build_model
from frn_det.solver import build_lr_scheduler, build_optimizer

from .checkpoint import FiniteAtomicCheckpointer
from .ddp import create_ddp_model
from .frn_path import FRNPathChoice, configured_impl, use_configured_path
from .monitor import FRNMonitor
from .train_loop import build_train_loop
from .writers import StrictJSONWriter

logger = logging.getLogger("frn_det")
WRITER_PERIOD = 20  # DefaultTrainer.build_hooks' PeriodicWriter period (fixed in detectron2)


class Trainer(DefaultTrainer):
    def __init__(self, cfg):
        # DefaultTrainer.__init__'s order, with the train loop, DDP wrapper and checkpointer from
        # this class's methods (DefaultTrainer hard-codes them)
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):  # setup_logger is not called for d2
            setup_logger()
        cfg = self.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = self.build_ddp_model(cfg, model)
        self._trainer = self.build_train_loop(cfg, model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = self.build_checkpointer(cfg, model)
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_model(cls, cfg):
        """frn_det.modeling.build_model: MODEL.FRN's options in every FRN layer, whichever builder makes it;
        MODEL.FRN.IMPL's path (under auto, the run's recorded choice) for FRN."""
        use_configured_path(cfg)
        model = build_model(cfg)
        logging.getLogger(__name__).info("Model:\n{}".format(model))
        return model

    @classmethod
    def build_ddp_model(cls, cfg, model):
        return create_ddp_model(model, broadcast_buffers=False)

    @classmethod
    def build_train_loop(cls, cfg, model, data_loader, optimizer):
        return build_train_loop(cfg, model, data_loader, optimizer)

    def build_checkpointer(self, cfg, model):
        return FiniteAtomicCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))

    def build_hooks(self):
        ret = super().build_hooks()
        monitor = self.cfg.get("FRN_MONITOR")
        if monitor is not None and monitor.ENABLED:
            # right after IterationTimer: its after_step removes the forward hooks before EvalHook and
            # PreciseBN run forward passes of their own, and before the writer writes the storage
            ret.insert(1, FRNMonitor(monitor.PERIOD, WRITER_PERIOD))
        if configured_impl(self.cfg) == "auto":  # times its iterations right after IterationTimer starts them
            ret.insert(1, FRNPathChoice.from_config(self.cfg))
        return ret

    def build_writers(self):
        """detectron2's default_writers, with metrics.json as strict JSON (NaN as null)."""
        os.makedirs(self.cfg.OUTPUT_DIR, exist_ok=True)
        return [CommonMetricPrinter(self.max_iter), StrictJSONWriter(os.path.join(self.cfg.OUTPUT_DIR, "metrics.json")),
                TensorboardXWriter(self.cfg.OUTPUT_DIR)]

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
    def build_lr_scheduler(cls, cfg, optimizer):
        return build_lr_scheduler(cfg, optimizer)

    @classmethod
    def build_train_loader(cls, cfg):
        with naming_malformed_datasets(cfg.DATASETS.TRAIN):
            return super().build_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        with naming_malformed_datasets([dataset_name]):
            return super().build_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        tasks = ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)
        return COCOEvaluator(dataset_name, tasks=tasks, output_dir=output_folder)
