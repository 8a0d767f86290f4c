"""RetinaNet-FRN, ResNetV1-101 FPN from scratch at 1024x1024 (the paper, section 4.3), as a detectron2
LazyConfig: the counterpart of configs/Base-RetinaNet-FRN.yaml, built from detectron2's lazy model-zoo
pieces. Solver: the paper's rule at 8 images/GPU x 8 GPUs (total batch 64); retinanet_frn_{8,4,2}img.py
apply it to other batch sizes. Train with detectron2's tools/lazyconfig_train_net.py (loading this file
imports frn_det, which registers FRN). The total batch is dataloader.train.total_batch_size: lazy
configs have no REFERENCE_WORLD_SIZE, so on fewer GPUs each one takes more images.
"""
import torch
from fvcore.common.param_scheduler import CosineParamScheduler

import detectron2.data.transforms as T
from detectron2 import model_zoo
from detectron2.config import LazyCall as L

from frn_det.config.protocol import DEFAULT_BASE_LR, MOMENTUM, PAPER_GPUS, WEIGHT_DECAY, paper_solver
from frn_det.modeling.backbone import make_frn_aware
from frn_det.modeling.meta_arch import RetinaNetFRN, RetinaNetFRNHead
from frn_det.solver import WarmupParamScheduler, get_frn_optimizer_params

model = model_zoo.get_config("common/models/retinanet.py").model
model._target_ = RetinaNetFRN
resnet = model.backbone.bottom_up
resnet.stem.norm = resnet.stages.norm = "FRN"
resnet.stages.depth = 101
resnet.stages.stride_in_1x1 = False  # TF ResNetV1: the stride is in the 3x3 conv
resnet.freeze_at = 0  # from scratch
# detectron2's ResNet with FRN's activation placement (no ReLU after a TLU); state names unchanged. Its
# norm is the stages' own, so that an edit of resnet.stages.norm reaches the norms it puts in
model.backbone.bottom_up = L(make_frn_aware)(resnet=resnet, norm="${.resnet.stages.norm}")
model.backbone.norm = "FRN_NoTLU"  # FPN convs have no activation after their norm
model.backbone.square_pad = 1024
model.head._target_ = RetinaNetFRNHead
model.head.norm = "FRN"
model.smooth_l1_beta = 0.0
del resnet  # not a config entry

# Longer side 1024 (MIN_SIZE = MAX_SIZE = 1024 in the yaml configs), padded to 1024x1024 by the FPN.
dataloader = model_zoo.get_config("common/data/coco.py").dataloader
dataloader.train.mapper.use_instance_mask = False
dataloader.train.mapper.augmentations = [
    L(T.ResizeShortestEdge)(short_edge_length=1024, max_size=1024),
    L(T.RandomFlip)(horizontal=True),
]
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=1024, max_size=1024)]

optimizer = L(torch.optim.SGD)(
    # set params.model to the model before instantiating (as detectron2's lazy SGD); FRN/TLU
    # parameters count as norm parameters: no weight decay
    params=L(get_frn_optimizer_params)(weight_decay_norm=0.0),
    lr=DEFAULT_BASE_LR,
    momentum=MOMENTUM,
    weight_decay=WEIGHT_DECAY,
)
# cosine ramp-up from 0, then cosine decay (the paper, section 4.1)
lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(CosineParamScheduler)(start_value=1.0, end_value=0.0),
    warmup_length=0.02,
    warmup_factor=0.0,
    warmup_method="cosine",
)

train = model_zoo.get_config("common/train.py").train
train.init_checkpoint = ""  # from scratch
train.eval_period = 0  # evaluate at the end
train.output_dir = "output/lazy_retinanet_frn_R101_FPN"


def use_paper_solver(imgs_per_gpu, num_gpus=PAPER_GPUS, base_lr=DEFAULT_BASE_LR):
    """Table 6's rule for imgs_per_gpu x num_gpus (frn_det.config.protocol), applied to this file's
    dataloader, optimizer, lr_multiplier and train, which a config importing them shares."""
    s = paper_solver(imgs_per_gpu, num_gpus, base_lr)
    dataloader.train.total_batch_size = s["IMS_PER_BATCH"]
    optimizer.lr = s["BASE_LR"]
    train.max_iter = s["MAX_ITER"]
    train.checkpointer.period = s["CHECKPOINT_PERIOD"]
    lr_multiplier.warmup_length = s["WARMUP_ITERS"] / s["MAX_ITER"]


use_paper_solver(imgs_per_gpu=8)
