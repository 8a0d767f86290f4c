"""Training and evaluation of a LazyConfig (.py) config, as detectron2's tools/lazyconfig_train_net.py
does it (cfg.model, cfg.dataloader, cfg.optimizer, cfg.lr_multiplier, cfg.train), with frn_det's CPU
parts: CPU-capable DDP, bf16 autocast on the CPU for train.amp, train.device "cuda" run on the CPU where
CUDA is not available, and the embedded datasets generated before use."""
import logging

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.engine import AMPTrainer, SimpleTrainer, default_setup, default_writers, hooks
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from frn_det.config import lazy_command_cfg
from frn_det.modeling import check_no_relu_after_tlu

from .amp import CPUAMPTrainer
from .ddp import create_ddp_model
from .setup import prepare_datasets

logger = logging.getLogger("frn_det")


def setup_lazy_cfg(args):
    """frn_det.config.lazy_command_cfg (the file, --frn, the overrides), then detectron2's default_setup
    and the datasets the run needs."""
    cfg, notes = lazy_command_cfg(args.config_file, args.opts, frn=getattr(args, "frn", None),
                                  keep_weights=getattr(args, "keep_weights", False))
    default_setup(cfg, args)
    setup_logger(output=cfg.train.output_dir, distributed_rank=comm.get_rank(), name="frn_det")
    for level, message in notes:
        logger.log(level, message)
    prepare_datasets(_dataset_names(cfg, train=not args.eval_only))
    return cfg


def _dataset_names(cfg, train=True):
    names = []
    for split in ("train", "test") if train else ("test",):
        dataset = cfg.dataloader.get(split, {}).get("dataset", {})
        value = dataset.get("names")
        names += [value] if isinstance(value, str) else list(value or ())
    return names


def evaluate_lazy(cfg, model):
    """inference_on_dataset with cfg.dataloader.test and cfg.dataloader.evaluator; {} without an evaluator."""
    if "evaluator" not in cfg.dataloader:
        return {}
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    print_csv_format(results)
    return results


def instantiate_model(cfg):
    """cfg.model on train.device, refused when a ReLU is applied to a TLU's output: detectron2's
    instantiate checks only a model that to_frn converted."""
    return check_no_relu_after_tlu(instantiate(cfg.model), config="lazy").to(cfg.train.device)


def train_lazy(cfg, resume=False):
    """detectron2's lazy training loop; returns the last evaluation's results (train.eval_period, and the
    end of training)."""
    model = instantiate_model(cfg)
    logger.info("Model:\n%s", model)
    cfg.optimizer.params.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)
    model = create_ddp_model(model, **cfg.train.ddp)
    amp = cfg.train.amp.enabled
    on_cpu = cfg.train.device == "cpu"
    loop = (CPUAMPTrainer if on_cpu else AMPTrainer) if amp else SimpleTrainer
    trainer = loop(model, train_loader, optimizer)
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    results = {}

    def evaluate():
        results.clear()
        results.update(evaluate_lazy(cfg, model))
        return results

    trainer.register_hooks([
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=instantiate(cfg.lr_multiplier)),
        hooks.PeriodicCheckpointer(checkpointer, **cfg.train.checkpointer) if comm.is_main_process() else None,
        hooks.EvalHook(cfg.train.eval_period, evaluate),
        hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter),
                             period=cfg.train.log_period) if comm.is_main_process() else None,
    ])
    checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=resume)
    start_iter = trainer.iter + 1 if resume and checkpointer.has_checkpoint() else 0
    trainer.train(start_iter, cfg.train.max_iter)
    return results


def lazy_main(args):
    cfg = setup_lazy_cfg(args)
    if args.eval_only:
        model = create_ddp_model(instantiate_model(cfg))
        DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
        return evaluate_lazy(cfg, model)
    return train_lazy(cfg, resume=args.resume)
