"""frn_det in a detectron2 project that keeps its own train_net: detectron2's DefaultTrainer (whose
build_model is detectron2's) with `import frn_det` and `cfg = frn_det.to_frn(cfg)` builds a checked model,
and its build_optimizer override gives FRN's parameters the norm weight decay (frn_det.solver)."""
import math

import pytest
import torch
from detectron2 import model_zoo
from detectron2.config import get_cfg
from detectron2.engine import DefaultTrainer
from detectron2.solver import build_optimizer as detectron2_build_optimizer

import frn_det
import frn_det.solver
from frn_det.data.render import SHAPE_CLASSES
from frn_det.layers import FRN
from frn_det.modeling import find_relu_after_tlu

WEIGHT_DECAY = 1e-4


class ProjectTrainer(DefaultTrainer):
    """A project's train_net Trainer: detectron2's, with frn_det's optimizer."""

    @classmethod
    def build_optimizer(cls, cfg, model):
        return frn_det.solver.build_optimizer(cfg, model)


def _project_cfg(tmp_path, dataset=""):
    """As a project's setup does it: get_cfg, a model-zoo file, its options; then to_frn."""
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Detection/retinanet_R_50_FPN_1x.yaml"))
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
        "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.RETINANET.NUM_CONVS", "1", "MODEL.RETINANET.NUM_CLASSES",
        str(len(SHAPE_CLASSES)), "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "2", "SOLVER.BASE_LR", "0.001",
        "SOLVER.WARMUP_ITERS", "1", "SOLVER.STEPS", "()", "SOLVER.WEIGHT_DECAY", str(WEIGHT_DECAY),
        "SOLVER.WEIGHT_DECAY_NORM", "0.0", "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "128",
        "DATALOADER.NUM_WORKERS", "0", "DATASETS.TRAIN", f"('{dataset}',)", "DATASETS.TEST", "()",
        "OUTPUT_DIR", str(tmp_path)])
    return frn_det.to_frn(cfg)


def _decay(optimizer):
    return {p: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}


def _frn_and_conv_params(model):
    frns = [m for m in model.modules() if isinstance(m, FRN)]
    frn = [p for m in frns for p in (m.weight, m.bias, m.tau) if p is not None]
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert frns and any(m.tau is not None for m in frns) and convs
    return frn, convs


def test_project_default_trainer_trains_a_checked_model_with_frn_weight_decay(tiny_shapes, tmp_path):
    trainer = ProjectTrainer(_project_cfg(tmp_path, tiny_shapes))
    model = trainer.model
    assert type(model).__name__ == "RetinaNetFRN" and find_relu_after_tlu(model) == []
    frn, convs = _frn_and_conv_params(model)
    decay = _decay(trainer.optimizer)
    assert all(decay[p] == 0.0 for p in frn) and all(decay[p] == WEIGHT_DECAY for p in convs)
    # detectron2's build_optimizer knows torch's norm classes only: FRN's gamma, beta and tau get the convs'
    stock = _decay(detectron2_build_optimizer(trainer.cfg, model))
    assert all(stock[p] == WEIGHT_DECAY for p in frn)

    trainer.resume_or_load(resume=False)
    trainer.train()
    assert (tmp_path / "model_final.pth").is_file()
    assert math.isfinite(trainer.storage.history("total_loss").latest())


def test_project_default_trainer_refuses_a_stock_head_put_back(tmp_path):
    """detectron2's DefaultTrainer as it is: its build_model refuses RetinaNet's stock head after to_frn,
    before any data is read."""
    cfg = _project_cfg(tmp_path)
    cfg.MODEL.FRN.META_ARCHITECTURE = "RetinaNet"
    with pytest.raises(ValueError, match=r"head.cls_subnet.2, head.bbox_subnet.2 \(RetinaNetHead\): use "
                                         r'MODEL.FRN.META_ARCHITECTURE "RetinaNetFRN"'):
        DefaultTrainer(cfg)


def test_frn_optimizer_params_for_a_projects_own_optimizer(tmp_path):
    """frn_optimizer_params_of: detectron2's parameter groups from cfg.SOLVER, FRN's with the norm weight
    decay, for an optimizer other than SGD; the other groups take the optimizer's weight decay."""
    cfg = _project_cfg(tmp_path)
    cfg.MODEL.DEVICE = "meta"
    with torch.device("meta"):
        model = ProjectTrainer.build_model(cfg)
    optimizer = torch.optim.AdamW(frn_det.solver.frn_optimizer_params_of(cfg, model), lr=cfg.SOLVER.BASE_LR,
                                  weight_decay=cfg.SOLVER.WEIGHT_DECAY)
    frn, convs = _frn_and_conv_params(model)
    decay = _decay(optimizer)
    assert all(decay[p] == 0.0 for p in frn) and all(decay[p] == WEIGHT_DECAY for p in convs)
    assert len(decay) == len(list(model.parameters()))
