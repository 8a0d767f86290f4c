"""The set-up of a training or evaluation run (tools/train_net.py): the config, checked, with
detectron2's logging and seed, and the datasets the run needs on disk."""
import logging

from detectron2.engine import default_setup
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from frn_det.config import command_cfg
from frn_det.data.checks import check_datasets
from frn_det.modeling import meta_architecture_of

logger = logging.getLogger("frn_det")


def check_recipe_options(cfg):
    """MODEL.CENTER_PIXELS_PER_IMAGE is implemented by RetinaNetFRN only: one error rather than a key
    that another meta-architecture would ignore."""
    arch = meta_architecture_of(cfg)  # a to_frn config's is the one FRNChecked builds
    if cfg.MODEL.get("CENTER_PIXELS_PER_IMAGE", False) and arch != "RetinaNetFRN":
        raise ValueError(f"MODEL.CENTER_PIXELS_PER_IMAGE is implemented by META_ARCHITECTURE 'RetinaNetFRN' only; "
                         f"this config uses {arch!r}")


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
    """A training or evaluation run's config: frn_det.config.command_cfg (the file, --frn, the overrides),
    checked, then detectron2's default_setup (logging, seed, OUTPUT_DIR) and the datasets the run needs."""
    cfg, notes = command_cfg(args.config_file, args.opts, frn=getattr(args, "frn", None),
                             keep_weights=getattr(args, "keep_weights", False))
    check_recipe_options(cfg)
    if not args.eval_only:
        check_batch_split(cfg, getattr(args, "num_gpus", 1), getattr(args, "num_machines", 1))
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="frn_det")
    for level, message in notes:
        logger.log(level, message)
    prepare_datasets(cfg.DATASETS.TEST if args.eval_only else cfg.DATASETS.TRAIN + cfg.DATASETS.TEST)
    return cfg
