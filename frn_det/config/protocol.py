"""The paper's Table 6 training protocol as one rule (section 4.3).

Total batch M = images per GPU * GPUs; steps = 125000 * 64 / M; lr = base_lr * M / 64 with base_lr
in {0.01, 0.05, 0.1}; momentum 0.9, weight decay 4e-4, cosine decay. The warmup is scaled like
the steps. BN* (Table 6's first row) fine-tunes an ImageNet-pretrained ResNet-101 for 25000 steps
at M = 64 under the same rule. SOLVER.REFERENCE_WORLD_SIZE lets detectron2's auto_scale_workers
apply the same rule (linear lr, inverse steps) when a run uses fewer or more GPUs, keeping the
images per GPU.
"""
from typing import NamedTuple

PAPER_GPUS = 8
REFERENCE_BATCH = 64
REFERENCE_STEPS = 125000
PAPER_BASE_LRS = (0.01, 0.05, 0.1)
DEFAULT_BASE_LR = 0.05  # the paper reports the best of the three; this one is its middle value
REFERENCE_WARMUP = 2500  # 2% of the steps at M = 64 (the paper gives no length)
MOMENTUM = 0.9
WEIGHT_DECAY = 4e-4
IMGS_PER_GPU = (8, 4, 2)
REFERENCE_FINETUNE_STEPS = 25000
REFERENCE_FINETUNE_WARMUP = 500  # 2% of the steps at M = 64, as for training from scratch
# detectron2's ImageNet-pretrained ResNet-101 (the one its COCO-Detection/retinanet_R_101_FPN_3x.yaml uses)
FINETUNE_WEIGHTS = "detectron2://ImageNetPretrained/MSRA/R-101.pkl"


# Norm per place for each compared method: backbone and head take "norm + activation"; the FPN
# convs have no activation after their norm.
METHOD_NORMS = {
    "frn": {"RESNETS": "FRN", "FPN": "FRN_NoTLU", "RETINANET": "FRN"},
    "gn": {"RESNETS": "GN", "FPN": "GN", "RETINANET": "GN"},  # 32 groups
    "bn": {"RESNETS": "BN", "FPN": "BN", "RETINANET": "BN"},  # statistics per GPU (per process)
    # Table 3's ablations of FRN's parts
    "gn_tlu": {"RESNETS": "GN_TLU", "FPN": "GN", "RETINANET": "GN_TLU"},  # GN, TLU in place of ReLU
    "gfrn": {"RESNETS": "GFRN", "FPN": "GFRN_NoTLU", "RETINANET": "GFRN"},  # FRN over GN's groups, TLU
    "frn_relu": {"RESNETS": "FRN_ReLU", "FPN": "FRN_NoTLU", "RETINANET": "FRN_ReLU"},  # FRN, ReLU in place of TLU
}
PAPER_METHODS = ("frn", "gn", "bn")  # Table 6's: the committed configs and the study's default


class Table6Row(NamedTuple):
    name: str  # in the configs' file names and OUTPUT_DIRs
    norms: dict
    finetune: bool  # from FINETUNE_WEIGHTS, on finetune_solver's schedule


TABLE6_ROWS = {
    "BN*": Table6Row("bn_finetune", METHOD_NORMS["bn"], True),
    "BN": Table6Row("bn", METHOD_NORMS["bn"], False),
    "GN": Table6Row("gn", METHOD_NORMS["gn"], False),
    "FRN": Table6Row("frn", METHOD_NORMS["frn"], False),
}


def method_opts(method):
    """detectron2 command-line style overrides that select a method's norms."""
    if method not in METHOD_NORMS:
        raise ValueError(f"Unknown method {method!r}; valid: {', '.join(METHOD_NORMS)}")
    return [item for key, norm in METHOD_NORMS[method].items() for item in (f"MODEL.{key}.NORM", norm)]


def scaled_solver(imgs_per_gpu, num_gpus, reference_batch, reference_steps, reference_lr,
                  reference_warmup, reference_checkpoint_period=None):
    """The rule: lr in proportion to the total batch M, steps and warmup in inverse proportion,
    so that every batch size sees the same number of images."""
    if imgs_per_gpu < 1 or num_gpus < 1:
        raise ValueError(f"images per GPU and GPUs must be >= 1 (got {imgs_per_gpu}, {num_gpus})")
    total = imgs_per_gpu * num_gpus
    scale = reference_batch / total
    solver = {
        "IMS_PER_BATCH": total,
        "BASE_LR": reference_lr * total / reference_batch,
        "MAX_ITER": round(reference_steps * scale),
        "WARMUP_ITERS": round(reference_warmup * scale),
        "REFERENCE_WORLD_SIZE": num_gpus,
    }
    if reference_checkpoint_period:
        solver["CHECKPOINT_PERIOD"] = max(1, round(reference_checkpoint_period * scale))
    return solver


def paper_solver(imgs_per_gpu, num_gpus=PAPER_GPUS, base_lr=DEFAULT_BASE_LR):
    """SOLVER keys for m images on each of g GPUs under the paper's rule (reference: M = 64)."""
    return scaled_solver(imgs_per_gpu, num_gpus, REFERENCE_BATCH, REFERENCE_STEPS, base_lr,
                         REFERENCE_WARMUP, reference_checkpoint_period=5000)


def finetune_solver(imgs_per_gpu, num_gpus=PAPER_GPUS, base_lr=DEFAULT_BASE_LR):
    """SOLVER keys of BN*: the same rule from 25000 steps at M = 64."""
    return scaled_solver(imgs_per_gpu, num_gpus, REFERENCE_BATCH, REFERENCE_FINETUNE_STEPS, base_lr,
                         REFERENCE_FINETUNE_WARMUP, reference_checkpoint_period=1000)
