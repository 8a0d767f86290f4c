"""FRN ResNet/FPN builders, RetinaNetFRN, and the paper-protocol configs."""
import glob
import os

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone, build_model

import frn_det
from frn_det.config.protocol import FINETUNE_WEIGHTS, finetune_solver, paper_solver
from frn_det.layers import FRN, TLU
from frn_det.modeling.backbone import FRNBottleneckBlock, FRNStem

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "retinanet_*img.yaml")))
SCRATCH_CONFIGS = [p for p in PAPER_CONFIGS if "_finetune_" not in p]
FINETUNE_CONFIGS = [p for p in PAPER_CONFIGS if "_finetune_" in p]


def load_cfg(path=None, **overrides):
    cfg = frn_det.add_frn_config(get_cfg())
    if path:
        cfg.merge_from_file(path)
    cfg.MODEL.DEVICE = "cpu"
    for k, v in overrides.items():
        cfg.merge_from_list([k, v])
    return cfg


def small(cfg, depth=50):
    cfg.MODEL.RESNETS.DEPTH = depth
    if depth < 50:
        cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    return cfg


def test_paper_rule():
    # Table 6: M in {64, 32, 16}; steps = 125000 * 64 / M; lr = base_lr * M / 64
    for m, steps in [(8, 125000), (4, 250000), (2, 500000)]:
        s = paper_solver(m, 8, base_lr=0.1)
        assert s["IMS_PER_BATCH"] == 8 * m and s["MAX_ITER"] == steps
        assert s["BASE_LR"] == pytest.approx(0.1 * 8 * m / 64)
        assert s["REFERENCE_WORLD_SIZE"] == 8
        assert s["MAX_ITER"] * s["IMS_PER_BATCH"] == 125000 * 64  # same number of images seen
    with pytest.raises(ValueError):
        paper_solver(0)


def test_auto_scale_workers_keeps_images_per_gpu_and_the_rule():
    from detectron2.engine import DefaultTrainer

    cfg = load_cfg(os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml"))
    one_gpu = DefaultTrainer.auto_scale_workers(cfg, 1)
    s = paper_solver(2, 1)
    assert one_gpu.SOLVER.IMS_PER_BATCH == 2
    assert one_gpu.SOLVER.MAX_ITER == s["MAX_ITER"] and one_gpu.SOLVER.BASE_LR == pytest.approx(s["BASE_LR"])


def test_committed_configs_are_the_generator_output(tmp_path):
    from frn_det.config import make_configs

    configs = os.path.join(ROOT, "configs")  # the default, configs/ in the working directory, from anywhere
    written = make_configs.write_configs(str(tmp_path), configs_dir=configs)
    assert len(written) == 12 and len(PAPER_CONFIGS) == 12 and len(FINETUNE_CONFIGS) == 3
    for path in written:
        committed = os.path.join(ROOT, "configs", os.path.basename(path))
        text = open(path).read().replace(os.path.relpath(os.path.join(ROOT, "configs"), str(tmp_path)) + "/", "")
        assert open(committed).read() == text, f"{committed} differs from tools/make_configs.py's output"
    # other base_lr values and GPU counts get output folders of their own: no run resumes another's
    output_dirs = {load_cfg(p).OUTPUT_DIR for p in written}
    for base_lr, gpus in [(0.1, 8), (0.05, 4)]:
        variant = make_configs.write_configs(str(tmp_path / f"{base_lr}_{gpus}"), base_lr=base_lr, num_gpus=gpus,
                                             configs_dir=configs)
        dirs = {load_cfg(p).OUTPUT_DIR for p in variant}
        assert len(dirs) == 12 and not dirs & output_dirs
        output_dirs |= dirs


@pytest.mark.parametrize("path", SCRATCH_CONFIGS, ids=os.path.basename)
def test_every_config_builds(path):
    cfg = load_cfg(path)
    assert cfg.MODEL.RESNETS.DEPTH == 101 and cfg.MODEL.WEIGHTS == "" and cfg.MODEL.BACKBONE.FREEZE_AT == 0
    assert cfg.SOLVER.MOMENTUM == 0.9 and cfg.SOLVER.WEIGHT_DECAY == 4e-4 and cfg.SOLVER.WARMUP_METHOD == "cosine"
    assert cfg.INPUT.MAX_SIZE_TRAIN == 1024 and cfg.MODEL.FPN.SQUARE_PAD == 1024
    model = build_model(cfg)
    norm = cfg.MODEL.RESNETS.NORM
    n_frn = sum(isinstance(m, FRN) for m in model.modules())
    if norm == "FRN":
        assert n_frn > 100 and not any(isinstance(m, torch.nn.ReLU) for m in model.head.modules())
    else:
        assert n_frn == 0
    assert model.backbone.padding_constraints["square_size"] == 1024


@pytest.mark.parametrize("m", [8, 4, 2])
def test_finetune_configs_follow_the_rule(m):
    """BN*: 25000 * 64 / M steps, lr and warmup by the paper's rule, BN everywhere, the BN row's
    recipe otherwise."""
    cfg = load_cfg(os.path.join(ROOT, "configs", f"retinanet_bn_finetune_{m}img.yaml"))
    bn = load_cfg(os.path.join(ROOT, "configs", f"retinanet_bn_{m}img.yaml"))
    total = 8 * m
    assert cfg.SOLVER.IMS_PER_BATCH == total and cfg.SOLVER.REFERENCE_WORLD_SIZE == 8
    assert cfg.SOLVER.MAX_ITER == 25000 * 64 // total and cfg.SOLVER.MAX_ITER * 5 == bn.SOLVER.MAX_ITER
    assert cfg.SOLVER.BASE_LR == pytest.approx(0.05 * total / 64) == bn.SOLVER.BASE_LR
    assert cfg.SOLVER.WARMUP_ITERS * total == 500 * 64  # 2% of the steps, as from scratch
    assert cfg.SOLVER.WARMUP_ITERS / cfg.SOLVER.MAX_ITER == bn.SOLVER.WARMUP_ITERS / bn.SOLVER.MAX_ITER
    assert {k: v for k, v in finetune_solver(m).items() if k != "CHECKPOINT_PERIOD"} == {
        k: cfg.SOLVER[k] for k in ("IMS_PER_BATCH", "BASE_LR", "MAX_ITER", "WARMUP_ITERS", "REFERENCE_WORLD_SIZE")}
    assert cfg.MODEL.WEIGHTS == FINETUNE_WEIGHTS
    assert (cfg.MODEL.RESNETS.NORM, cfg.MODEL.FPN.NORM, cfg.MODEL.RETINANET.NORM) == ("BN", "BN", "BN")
    assert cfg.OUTPUT_DIR == f"output/retinanet_bn_finetune_{m}img"
    # everything but the pretrained weights' needs and the schedule is the BN row's
    pretrained_keys = {"WEIGHTS", "PIXEL_STD", "FREEZE_AT", "STRIDE_IN_1X1", "MAX_ITER", "WARMUP_ITERS",
                       "CHECKPOINT_PERIOD", "OUTPUT_DIR"}
    assert _flat(cfg).keys() == _flat(bn).keys()
    differ = {k.split(".")[-1] for k in _flat(cfg) if _flat(cfg)[k] != _flat(bn)[k]}
    assert differ == pretrained_keys


def _flat(node, prefix=""):
    out = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def test_finetune_backbone_is_detectron2s_imagenet_resnet():
    """BN*'s model builds, and its ResNet-101 takes the MSRA weights as detectron2's own RetinaNet R101
    does: the same state names and shapes, strides (in the 1x1 conv), frozen stages and input
    normalisation; its BN is trainable, with statistics per GPU, outside the frozen stem and res2.
    No download: nothing loads MODEL.WEIGHTS."""
    from detectron2 import model_zoo as d2_zoo
    from detectron2.layers import FrozenBatchNorm2d

    d2_file = d2_zoo.get_config_file("COCO-Detection/retinanet_R_101_FPN_3x.yaml")
    assert load_cfg(FINETUNE_CONFIGS[0]).MODEL.WEIGHTS == load_cfg(d2_file).MODEL.WEIGHTS
    cfg = load_cfg(FINETUNE_CONFIGS[0], **{"MODEL.WEIGHTS": ""})
    d2 = load_cfg(d2_file, **{"MODEL.WEIGHTS": ""})
    for key in ("MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD", "INPUT.FORMAT", "MODEL.BACKBONE.FREEZE_AT",
                "MODEL.RESNETS.STRIDE_IN_1X1", "MODEL.RESNETS.DEPTH", "MODEL.RESNETS.OUT_FEATURES"):
        assert _flat(cfg)[key] == _flat(d2)[key], key
    model = build_model(cfg)
    assert type(model).__name__ == "RetinaNetFRN"
    ours, theirs = model.backbone.bottom_up, build_backbone(d2).bottom_up

    def layout(module):
        return {k: v.shape for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}

    assert layout(ours) == layout(theirs)
    for (name, a), (_, b) in zip(ours.named_modules(), theirs.named_modules()):
        if isinstance(a, torch.nn.Conv2d):
            assert a.stride == b.stride, name
    assert {n for n, p in ours.named_parameters() if not p.requires_grad} == {
        n for n, p in theirs.named_parameters() if not p.requires_grad} != set()
    norms = {name: type(m) for name, m in ours.named_modules() if name.endswith(".norm")}
    assert all(t is FrozenBatchNorm2d for n, t in norms.items() if n.startswith(("stem.", "res2.")))
    trainable = [t for n, t in norms.items() if not n.startswith(("stem.", "res2."))]
    assert len(trainable) > 90 and all(t is torch.nn.BatchNorm2d for t in trainable)


@pytest.mark.parametrize("backbone", ["build_retinanet_resnet_frn_fpn_backbone", "build_resnet_frn_fpn_backbone"])
def test_model_frn_keys_reach_build_model(backbone):
    """MODEL.FRN.* hold for the FRN layers of frn_det's build_model (no tools/train_net.py set-up),
    and only there; also for the R-CNN backbone builder on its own, inside the cfg's options scope."""
    from detectron2.layers import get_norm

    from frn_det.modeling import frn_options_of
    from frn_det.layers import frn_options_scope
    from frn_det.modeling import build_model as frn_build_model

    cfg = small(load_cfg(os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")), depth=18)
    cfg.merge_from_list(["MODEL.BACKBONE.NAME", backbone, "MODEL.FRN.EPS", "1e-3", "MODEL.FRN.LEARNABLE_EPS", "True"])
    if "retinanet" in backbone:
        model = frn_build_model(cfg)
    else:
        with frn_options_scope(*frn_options_of(cfg)):
            model = build_backbone(cfg)
    frns = [m for m in model.modules() if isinstance(m, FRN)]
    assert len(frns) > 20 and all(m.eps == 1e-3 and m.eps_l is not None for m in frns)
    if "retinanet" in backbone:
        assert any(isinstance(m, FRN) for m in model.head.modules())
    later = get_norm("FRN", 4)  # built after: the defaults again
    assert later.eps == 1e-6 and later.eps_l is None


def test_bottleneck_activation_placement():
    cfg = small(load_cfg(os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")))
    bottom_up = build_backbone(cfg).bottom_up
    assert isinstance(bottom_up.stem, FRNStem) and bottom_up.stem.conv1.norm.tau is not None
    block = bottom_up.res2[0]
    assert isinstance(block, FRNBottleneckBlock)
    assert block.conv1.norm.tau is not None and block.conv2.norm.tau is not None
    assert block.conv3.norm.tau is None and block.shortcut.norm.tau is None
    assert isinstance(block.tlu, TLU)


def test_negative_tlu_threshold_reaches_backbone_outputs():
    # With no ReLU after TLU, a threshold below 0 shows up in the outputs: z = max(y, tau) = tau < 0.
    cfg = small(load_cfg(os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")), depth=18)
    backbone = build_backbone(cfg)
    with torch.no_grad():
        for m in backbone.bottom_up.modules():
            if isinstance(m, TLU):
                m.tau.fill_(-0.5)
            if isinstance(m, FRN) and m.tau is not None:
                m.tau.fill_(-0.5)
        feats = backbone.bottom_up(torch.randn(1, 3, 64, 64))
    for name in ("res3", "res4", "res5"):
        assert feats[name].min().item() == pytest.approx(-0.5)
    # detectron2's stock ResNet (ReLU after the norm) clips it at 0
    stock = load_cfg(**{"MODEL.RESNETS.NORM": "FRN", "MODEL.RESNETS.DEPTH": 18,
                        "MODEL.RESNETS.RES2_OUT_CHANNELS": 64, "MODEL.RESNETS.OUT_FEATURES": ["res5"]})
    stock_model = build_backbone(stock)
    with torch.no_grad():
        for m in stock_model.modules():
            if isinstance(m, FRN):
                m.tau.fill_(-0.5)
        assert stock_model(torch.randn(1, 3, 64, 64))["res5"].min().item() == 0.0


@pytest.mark.parametrize("norm", ["FRN", "GN"])
def test_state_dicts_move_between_retinanet_and_rcnn_builders(norm, tmp_path):
    from detectron2.checkpoint import DetectionCheckpointer

    overrides = {"MODEL.RESNETS.NORM": norm, "MODEL.FPN.NORM": "FRN_NoTLU" if norm == "FRN" else norm}
    retina = build_backbone(small(load_cfg(os.path.join(ROOT, "configs", "Base-RetinaNet-FRN.yaml"), **overrides)))
    rcnn_cfg = small(load_cfg(**overrides))
    rcnn_cfg.MODEL.BACKBONE.NAME = "build_resnet_frn_fpn_backbone"
    rcnn_cfg.MODEL.RESNETS.OUT_FEATURES = rcnn_cfg.MODEL.FPN.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    rcnn_cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    rcnn = build_backbone(rcnn_cfg)
    r_keys, c_keys = set(retina.state_dict()), set(rcnn.state_dict())
    bottom_up = {k for k in r_keys if k.startswith("bottom_up.")}
    assert bottom_up == {k for k in c_keys if k.startswith("bottom_up.")}
    assert "bottom_up.res2.0.conv1.weight" in bottom_up
    # DetectionCheckpointer moves the shared weights across
    with torch.no_grad():
        for p in retina.parameters():
            p.normal_()
    DetectionCheckpointer(retina, save_dir=str(tmp_path)).save("retina")
    DetectionCheckpointer(rcnn).load(str(tmp_path / "retina.pth"))
    for k in bottom_up:
        assert torch.equal(rcnn.state_dict()[k], retina.state_dict()[k]), k


def test_gn_baseline_is_detectron2s_resnet():
    # Other norms go through the same builders and keep detectron2's behaviour and state names.
    from detectron2.modeling.backbone.resnet import build_resnet_backbone

    cfg = small(load_cfg(**{"MODEL.RESNETS.NORM": "GN"}))
    ours = frn_det.modeling.build_resnet_frn_backbone(cfg, ShapeSpec(channels=3))
    stock = build_resnet_backbone(cfg, ShapeSpec(channels=3))
    stock.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(ours(x)["res4"], stock(x)["res4"])


@pytest.mark.parametrize("norm, layers", [("GN_TLU", {"GroupNormTLU", "GroupNorm"}), ("GFRN", {"GFRN"}),
                                          ("FRN_ReLU", {"FRN"})])
def test_lazy_config_norm_edit_reaches_every_resnet_norm(norm, layers):
    """configs/lazy's ResNet takes its norm where detectron2's lazy ResNet does (stem.norm, stages.norm):
    the norms the FRN-aware blocks put in before each residual add follow it."""
    from detectron2.config import LazyConfig, instantiate

    cfg = LazyConfig.load(os.path.join(ROOT, "configs", "lazy", "retinanet_frn_R101_FPN.py"))
    resnet = cfg.model.backbone.bottom_up.resnet
    resnet.stem.norm = resnet.stages.norm = norm
    resnet.stages.depth = 50
    with torch.device("meta"):
        bottom_up = instantiate(cfg.model.backbone.bottom_up)
    assert {type(m).__name__ for n, m in bottom_up.named_modules() if n.endswith("norm")} == layers
