"""FRN reached through detectron2's own code: get_norm, FPN/ResNet builders, optimizer, LR schedule."""
import math

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec, get_norm
from detectron2.modeling.backbone.fpn import build_resnet_fpn_backbone
from detectron2.solver import build_lr_scheduler as d2_build_lr_scheduler
from detectron2.modeling.backbone.resnet import BasicStem

import frn_det
from frn_det.layers import FRN, TLU
from frn_det.engine import Trainer
from frn_det.layers import FRNNorm, frn_options_scope
from frn_det.modeling import build_model
from frn_det.solver import build_lr_scheduler, build_optimizer


def _cfg(**overrides):
    cfg = frn_det.add_frn_config(get_cfg())
    for k, v in overrides.items():
        cfg.merge_from_list([k, v])
    return cfg


def test_stock_fpn_builds_with_frn():
    cfg = _cfg(**{"MODEL.FPN.NORM": "FRN_NoTLU", "MODEL.RESNETS.NORM": "FRN", "MODEL.RESNETS.DEPTH": 18,
                  "MODEL.RESNETS.RES2_OUT_CHANNELS": 64, "MODEL.RESNETS.OUT_FEATURES": ["res2", "res3", "res4", "res5"],
                  "MODEL.FPN.IN_FEATURES": ["res2", "res3", "res4", "res5"]})
    fpn = build_resnet_fpn_backbone(cfg, ShapeSpec(channels=3))
    # detectron2's FPN: lateral + output conv per level; ResNet-18: stem + 2 convs * 8 blocks + 3 shortcuts
    assert sum(1 for n, m in fpn.named_modules() if isinstance(m, FRN) and "bottom_up" not in n) == 8
    assert sum(1 for n, m in fpn.named_modules() if isinstance(m, FRN) and "bottom_up" in n) == 1 + 16 + 3
    assert all(m.tau is None for n, m in fpn.named_modules() if isinstance(m, FRN) and "bottom_up" not in n)
    out = fpn(torch.randn(1, 3, 64, 64))
    assert set(out) == {"p2", "p3", "p4", "p5", "p6"} and all(torch.isfinite(v).all() for v in out.values())


def test_get_norm_names_and_options():
    assert isinstance(get_norm("FRN", 4), FRN) and get_norm("FRN", 4).tau is not None
    assert get_norm("FRN_NoTLU", 4).tau is None
    assert isinstance(get_norm("GN", 64), torch.nn.GroupNorm)  # detectron2's names still work
    assert get_norm("", 4) is None
    # options travel as constructor arguments, in an FRNNorm that detectron2's get_norm calls
    layer = get_norm(FRNNorm("FRN", eps=1e-5, learnable_eps=True), 4)
    assert layer.eps_l is not None and layer.eps == 1e-5 and layer.tau is not None
    stem = BasicStem(3, 8, norm=FRNNorm("FRN", learnable_eps=True))
    assert stem.conv1.norm.eps_l is not None and stem.conv1.norm.tau is not None
    assert get_norm("FRN", 4).eps_l is None and get_norm("FRN", 4).eps == 1e-6  # nothing is left behind


class UserBoxHead(torch.nn.Module):
    """A user's box head, as a detectron2 user writes one: get_norm with the cfg's norm name."""

    def __init__(self, cfg, input_shape):
        super().__init__()
        channels = input_shape.channels * input_shape.height * input_shape.width
        self.fc = torch.nn.Linear(channels, 16)
        self.norm = get_norm(cfg.MODEL.ROI_BOX_HEAD.NORM, 16)
        self.output_shape = ShapeSpec(channels=16)

    def forward(self, x):
        return self.norm(self.fc(x.flatten(1))[:, :, None, None]).flatten(1)


def _rcnn_cfg(**overrides):
    """A small Mask R-CNN with frn_det's FRN ResNet-FPN, the user's box head and detectron2's mask head."""
    from detectron2.modeling import ROI_BOX_HEAD_REGISTRY

    if "UserBoxHead" not in ROI_BOX_HEAD_REGISTRY:
        ROI_BOX_HEAD_REGISTRY.register(UserBoxHead)
    return _cfg(**{
        "MODEL.DEVICE": "cpu", "MODEL.MASK_ON": True, "MODEL.BACKBONE.NAME": "build_resnet_frn_fpn_backbone",
        "MODEL.RESNETS.DEPTH": 18, "MODEL.RESNETS.RES2_OUT_CHANNELS": 64, "MODEL.RESNETS.NORM": "FRN",
        "MODEL.RESNETS.OUT_FEATURES": ["res2", "res3", "res4", "res5"], "MODEL.FPN.NORM": "FRN_NoTLU",
        "MODEL.FPN.IN_FEATURES": ["res2", "res3", "res4", "res5"], "MODEL.FPN.OUT_CHANNELS": 16,
        "MODEL.ROI_HEADS.NAME": "StandardROIHeads", "MODEL.ROI_BOX_HEAD.NAME": "UserBoxHead",
        "MODEL.ROI_BOX_HEAD.NORM": "FRN", "MODEL.ROI_MASK_HEAD.NORM": "FRN_NoTLU",
        "MODEL.ROI_MASK_HEAD.CONV_DIM": 8, "MODEL.ROI_MASK_HEAD.NUM_CONV": 2, "MODEL.RPN.IN_FEATURES": ["p2", "p3", "p4", "p5", "p6"],
        "MODEL.ROI_HEADS.IN_FEATURES": ["p2", "p3", "p4", "p5"],
        "MODEL.ANCHOR_GENERATOR.SIZES": [[32], [64], [128], [256], [512]], **overrides})


def test_config_options_reach_every_builder():
    """MODEL.FRN.* reach every FRN layer of a model frn_det builds: frn_det's backbone, detectron2's FPN
    and mask head, and a user's box head from detectron2's registry; the cfg is unchanged, and
    get_norm gives the paper's options again afterwards."""
    cfg = _rcnn_cfg(**{"MODEL.FRN.EPS": 1e-4, "MODEL.FRN.LEARNABLE_EPS": True})
    model = build_model(cfg)
    frns = {n: m for n, m in model.named_modules() if isinstance(m, FRN)}
    for part in ("backbone.bottom_up.", "backbone.fpn_", "roi_heads.box_head.norm", "roi_heads.mask_head."):
        assert any(n.startswith(part) for n in frns), part
    assert all(m.eps == 1e-4 and m.eps_l is not None for m in frns.values())
    assert cfg.MODEL.ROI_BOX_HEAD.NORM == "FRN" and cfg.MODEL.FRN.EPS == 1e-4
    assert get_norm("FRN", 4).eps == 1e-6 and get_norm("FRN", 4).eps_l is None


def test_options_that_would_not_reach_the_layers_are_refused():
    """detectron2's build_model alone cannot pass MODEL.FRN to get_norm: frn_det's builders say so
    instead of building the paper's options; with the paper's options, or with no norm that takes
    them (GN, GN_TLU), it builds."""
    from detectron2.modeling import build_model as detectron2_build_model

    with pytest.raises(ValueError, match=r"MODEL.FRN.EPS 0.0001 .* frn_det.modeling.build_model"):
        detectron2_build_model(_rcnn_cfg(**{"MODEL.FRN.EPS": 1e-4}))
    model = detectron2_build_model(_rcnn_cfg())
    assert all(m.eps == 1e-6 for m in model.modules() if isinstance(m, FRN))
    gn = {"MODEL.RESNETS.NORM": "GN_TLU", "MODEL.FPN.NORM": "GN", "MODEL.FPN.OUT_CHANNELS": 32,
          "MODEL.ROI_BOX_HEAD.NORM": "", "MODEL.ROI_MASK_HEAD.NORM": "GN", "MODEL.ROI_MASK_HEAD.CONV_DIM": 32,
          "MODEL.FRN.EPS": 1e-4}
    assert not any(isinstance(m, FRN) for m in detectron2_build_model(_rcnn_cfg(**gn)).modules())
    with frn_options_scope(eps=1e-4):  # the scope frn_det.modeling.build_model enters
        assert get_norm("FRN_NoTLU", 4).eps == 1e-4
        assert isinstance(detectron2_build_model(_rcnn_cfg(**{"MODEL.FRN.EPS": 1e-4})).roi_heads.box_head.norm, FRN)


def test_unknown_norm_lists_valid_names():
    with pytest.raises(ValueError) as e:
        get_norm("FNR", 8)
    for name in ("'FNR'", "'FRN'", "'FRN_NoTLU'", "'FRN_ReLU'", "'GFRN'", "'GFRN_NoTLU'", "'GN_TLU'", "'GN'", "'BN'",
                 "'SyncBN'"):
        assert name in str(e.value)


def test_frn_parameters_get_norm_weight_decay():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), FRN(4, learnable_eps=True),
                                torch.nn.Conv2d(4, 4, 1), torch.nn.GroupNorm(2, 4), TLU(4))
    cfg = _cfg(**{"SOLVER.WEIGHT_DECAY": 4e-4, "SOLVER.WEIGHT_DECAY_NORM": 0.0})
    opt = build_optimizer(cfg, model)
    decay = {p: g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    frn, tlu, gn = model[1], model[4], model[3]
    for p in [frn.weight, frn.bias, frn.tau, frn.eps_l, tlu.tau, gn.weight, gn.bias]:
        assert decay[p] == 0.0
    for p in [model[0].weight, model[0].bias, model[2].weight]:
        assert decay[p] == 4e-4
    assert len(decay) == len(list(model.parameters()))


def test_weight_decay_bias_still_wins_for_frn_bias():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), FRN(4))
    cfg = _cfg(**{"SOLVER.WEIGHT_DECAY": 1e-4, "SOLVER.WEIGHT_DECAY_NORM": 0.0, "SOLVER.WEIGHT_DECAY_BIAS": 5e-5})
    decay = {p: g["weight_decay"] for g in build_optimizer(cfg, model).param_groups for p in g["params"]}
    assert decay[model[1].bias] == 5e-5 and decay[model[0].bias] == 5e-5 and decay[model[1].tau] == 0.0


def _cosine_cfg():
    return _cfg(**{"SOLVER.WARMUP_METHOD": "cosine", "SOLVER.WARMUP_ITERS": 100, "SOLVER.WARMUP_FACTOR": 0.0,
                   "SOLVER.MAX_ITER": 1000, "SOLVER.LR_SCHEDULER_NAME": "WarmupCosineLR", "SOLVER.BASE_LR": 0.1})


@pytest.mark.parametrize("build", [build_lr_scheduler, Trainer.build_lr_scheduler])
def test_cosine_warmup_through_frn_det_build_lr_scheduler(build):
    cfg = _cosine_cfg()
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = build(cfg, opt)
    lrs = []
    for _ in range(1000):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = 0.1 * 0.5 * (1 + math.cos(math.pi * 100 / 1000))  # the cosine decay's value at the end of warmup
    for it in (0, 25, 50, 99):
        assert lrs[it] == pytest.approx(peak * 0.5 * (1 - math.cos(math.pi * it / 100)), abs=1e-9)
    for it in (100, 500, 999):
        assert lrs[it] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * it / 1000)), abs=1e-9)
    assert cfg.SOLVER.WARMUP_METHOD == "cosine"


def test_other_warmups_are_detectron2s():
    cfg = _cosine_cfg()
    cfg.SOLVER.WARMUP_METHOD = "linear"
    lrs = []
    for build in (build_lr_scheduler, d2_build_lr_scheduler):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        sched = build(cfg, opt)
        lrs.append([])
        for _ in range(300):
            lrs[-1].append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    assert lrs[0] == lrs[1] and lrs[0][50] == pytest.approx(lrs[0][99] * 50 / 99, rel=0.05)  # linear ramp


def test_detectron2s_own_scheduler_is_left_as_it_is():
    """frn_det does not teach detectron2's build_lr_scheduler (nor DefaultTrainer's) the cosine
    ramp-up; a cosine config there fails at once, and frn_det's Trainer builds it."""
    from detectron2.engine import DefaultTrainer

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="Unknown warmup method: cosine"):
        DefaultTrainer.build_lr_scheduler(_cosine_cfg(), opt)
    assert Trainer.build_lr_scheduler(_cosine_cfg(), opt) is not None


def test_unknown_warmup_method_is_a_clear_error():
    cfg = _cfg(**{"SOLVER.WARMUP_METHOD": "cosin"})
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="'cosin'.*constant, linear, cosine"):
        build_lr_scheduler(cfg, opt)


def test_detectron2_is_unchanged_but_the_norm_lookup():
    """Importing frn_det after detectron2 changes no attribute of any detectron2 module except the
    get_norm bindings; registries and catalogs only gain entries (checked in a fresh process)."""
    import subprocess
    import sys

    code = """
import importlib, pkgutil, sys, warnings
warnings.simplefilter("ignore")
import detectron2, detectron2.engine, detectron2.solver, detectron2.modeling, detectron2.data, detectron2.layers
import detectron2.checkpoint, detectron2.evaluation, detectron2.config
def snapshot():
    return {(m, a): id(v) for m, mod in list(sys.modules.items()) if m.startswith("detectron2")
            for a, v in list(vars(mod).items())}
before = snapshot()
backbones = set(detectron2.modeling.BACKBONE_REGISTRY._obj_map)
datasets = {n: detectron2.data.DatasetCatalog[n] for n in detectron2.data.DatasetCatalog.list()}
import frn_det, frn_det.engine, frn_det.model_zoo, frn_det.train_net
from frn_det.config import build_cfg
build_cfg(frn_det.model_zoo.get_config_file("demo/retinanet_frn_R18_shapes.yaml"))
after = snapshot()
changed = sorted(k for k in before if k in after and before[k] != after[k])
assert changed and all(a == "get_norm" for m, a in changed), changed
assert backbones < set(detectron2.modeling.BACKBONE_REGISTRY._obj_map)
assert all(detectron2.data.DatasetCatalog[n] is f for n, f in datasets.items())
print("ok", len(changed))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr[-3000:]


def test_model_zoo_builds_a_config_without_the_trainer():
    import subprocess
    import sys

    code = ("import sys, frn_det.model_zoo as z; cfg = z.get_config('retinanet_frn_2img.yaml'); "
            "assert cfg.MODEL.FRN.EPS == 1e-6; assert 'frn_det.engine' not in sys.modules, 'engine imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_import_registers_the_embedded_datasets_for_detectron2s_own_tools(tmp_path):
    """A fresh process: `import frn_det` alone adds the shapes datasets' names to detectron2's catalogs
    (keeping every name and function detectron2 had, and generating nothing), so that detectron2's
    LazyConfig path (tools/lazyconfig_train_net.py) builds its loaders and evaluator from them."""
    import json
    import os
    import subprocess
    import sys

    code = """
import json, warnings
warnings.simplefilter("ignore")
import detectron2.data
from detectron2.data import DatasetCatalog, MetadataCatalog
before = dict(DatasetCatalog)
meta_before = {n: MetadataCatalog.get(n).as_dict() for n in MetadataCatalog.list()}
import frn_det
after = dict(DatasetCatalog)
unchanged = all(after[n] is f for n, f in before.items()) and all(
    MetadataCatalog.get(n).as_dict() == m for n, m in meta_before.items())
from frn_det.data import DEFAULT_DATASETS, default_dataset_root
import os
generated_at_import = os.path.exists(default_dataset_root())
from detectron2.config import LazyConfig, instantiate
from frn_det import model_zoo
cfg = LazyConfig.load(model_zoo.get_config_file("lazy/retinanet_frn_2img.py"))
cfg.dataloader.train.dataset.names = "shapes_uniform_train"
cfg.dataloader.test.dataset.names = "shapes_uniform_val"
cfg.dataloader.train.total_batch_size = 2
cfg.dataloader.train.num_workers = cfg.dataloader.test.num_workers = 0
train = next(iter(instantiate(cfg.dataloader.train)))
test = next(iter(instantiate(cfg.dataloader.test)))
evaluator = instantiate(cfg.dataloader.evaluator)
print(json.dumps({"added": sorted(set(after) - set(before)), "unchanged": unchanged,
                  "generated_at_import": generated_at_import, "train": len(train),
                  "train_boxes": len(train[0]["instances"]), "test": test[0]["file_name"],
                  "evaluator": evaluator._metadata.name}))
"""
    env = dict(os.environ, FRN_DET_DATASETS=str(tmp_path / "data"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    from frn_det.data import DEFAULT_DATASETS

    assert result["added"] == sorted(DEFAULT_DATASETS) and result["unchanged"]
    assert not result["generated_at_import"]
    assert result["train"] == 2 and result["train_boxes"] > 0
    assert result["test"].startswith(str(tmp_path / "data" / "uniform_val"))
    assert result["evaluator"] == "shapes_uniform_val"
