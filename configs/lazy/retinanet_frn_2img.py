# RetinaNet-FRN R101-FPN at 2 images/GPU x 8 GPUs under the paper's rule (Table 6; see
# retinanet_frn_R101_FPN.py). Other shapes: use_paper_solver(imgs_per_gpu, num_gpus, base_lr).
from .retinanet_frn_R101_FPN import dataloader, lr_multiplier, model, optimizer, train, use_paper_solver

use_paper_solver(imgs_per_gpu=2)
train.output_dir = "output/lazy_retinanet_frn_2img"
