"""Recipe options beyond the paper (input centering, zero-init residual, per-level head norms, weight
decay on FRN parameters) and the FRN health monitor: each does what it claims."""
import json
import os
import subprocess
import sys

import pytest
import torch
from detectron2 import model_zoo
from detectron2.modeling import build_backbone, build_model
from detectron2.modeling.meta_arch.retinanet import RetinaNet

from coco_tree import ROOT, TINY, make_coco_tree
import frn_det
from frn_det.engine import between_images_share, record_norm_stats, uncentred_ratio
from frn_det.engine.monitor import group_of
from frn_det.layers import FRN, TLU
from frn_det.modeling.backbone import FRNBottleneckBlock
from frn_det.modeling.meta_arch.retinanet import LevelNorms
from frn_det.solver import build_optimizer
from test_modeling import load_cfg, small

BASE = os.path.join(ROOT, "configs", "Base-RetinaNet-FRN.yaml")


def tiny_retinanet(**overrides):
    cfg = small(load_cfg(BASE), depth=18)
    cfg.merge_from_list(["MODEL.FPN.OUT_CHANNELS", "32", "MODEL.RETINANET.NUM_CONVS", "2", "MODEL.FPN.SQUARE_PAD", "0",
                         "MODEL.RETINANET.NUM_CLASSES", "3"])
    for k, v in overrides.items():
        cfg.merge_from_list([k, v])
    return cfg, build_model(cfg).eval()


def images(*sizes):
    g = torch.Generator().manual_seed(0)
    # bright images with a colour cast: far from zero mean after PIXEL_MEAN/PIXEL_STD
    return [{"image": torch.rand(3, h, w, generator=g) * 80 + torch.tensor([200.0, 120.0, 30.0]).view(3, 1, 1)}
            for h, w in sizes]


def test_centered_inputs_have_zero_per_image_channel_mean_over_their_own_pixels():
    cfg, model = tiny_retinanet(**{"MODEL.CENTER_PIXELS_PER_IMAGE": "True"})
    batch = images((64, 96), (96, 64))
    out = model.preprocess_image(batch)
    for (h, w), img in zip(out.image_sizes, out.tensor):
        own = img[:, :h, :w]
        assert own.mean(dim=(1, 2)).abs().max() < 1e-5
        assert (img[:, h:, :] == 0).all() and (img[:, :, w:] == 0).all()  # padding is not counted
        # only a per-channel shift of detectron2's normalized image
    plain = RetinaNet.preprocess_image(model, batch)
    for (h, w), a, b in zip(out.image_sizes, out.tensor, plain.tensor):
        shift = b[:, :h, :w] - a[:, :h, :w]
        assert torch.allclose(shift, shift[:, :1, :1].expand_as(shift), atol=1e-5)
        assert shift[:, 0, 0].abs().min() > 0.5  # the images were far from centred


def test_centering_is_off_by_default_and_in_inference():
    _, model = tiny_retinanet()
    batch = images((64, 64))
    assert torch.equal(model.preprocess_image(batch).tensor, RetinaNet.preprocess_image(model, batch).tensor)
    # inference (what evaluation and export trace) goes through the same preprocess_image
    _, centred = tiny_retinanet(**{"MODEL.CENTER_PIXELS_PER_IMAGE": "True"})
    centred.load_state_dict(model.state_dict())
    seen = []
    centred.backbone.register_forward_pre_hook(lambda m, i: seen.append(i[0]))
    with torch.no_grad():
        centred(batch)
    assert seen[0][0].mean(dim=(1, 2)).abs().max() < 1e-5


@pytest.mark.parametrize("norm,depth", [("FRN", 50), ("GN", 18)])
def test_zero_init_residual_makes_every_block_start_as_its_shortcut(norm, depth):
    fpn_norm = "FRN_NoTLU" if norm == "FRN" else norm
    cfg = small(load_cfg(BASE, **{"MODEL.RESNETS.NORM": norm, "MODEL.FPN.NORM": fpn_norm,
                                  "MODEL.RESNETS.ZERO_INIT_RESIDUAL": "True"}), depth=depth)
    resnet = build_backbone(cfg).bottom_up
    blocks = [b for stage in resnet.stages for b in stage]
    last = "conv3" if depth >= 50 else "conv2"
    for block in blocks:
        assert (getattr(block, last).norm.weight == 0).all()
        assert (block.conv1.norm.weight == 1).all()
    x = torch.randn(2, blocks[3].in_channels, 16, 16)
    block = blocks[3]
    shortcut = block.shortcut(x) if block.shortcut is not None else x
    assert torch.allclose(block(x), block._add_shortcut(torch.zeros_like(shortcut), x))
    # off by default: gamma starts at 1
    cfg.MODEL.RESNETS.ZERO_INIT_RESIDUAL = False
    block = build_backbone(cfg).bottom_up.res2[0]
    assert (getattr(block, last).norm.weight == 1).all()


def test_zero_init_residual_reaches_the_c4_roi_heads_res5():
    """C4: res5 runs in the ROI heads, and its blocks start as their shortcut as the backbone's do."""
    cfg = frn_det.to_frn(frn_det.add_frn_config(model_zoo.get_config("COCO-Detection/faster_rcnn_R_50_C4_1x.yaml")))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.RESNETS.ZERO_INIT_RESIDUAL", "True",
                         "MODEL.RESNETS.RES2_OUT_CHANNELS", "32", "MODEL.RESNETS.WIDTH_PER_GROUP", "8"])
    model = frn_det.modeling.build_model(cfg)
    for part, blocks in (("backbone", 3 + 4 + 6), ("roi_heads", 3)):
        gammas = [m.conv3.norm.weight for m in getattr(model, part).modules() if isinstance(m, FRNBottleneckBlock)]
        assert len(gammas) == blocks and all((g == 0).all() for g in gammas), part


def test_input_centering_is_checked_against_the_architecture_a_converted_config_builds():
    """A to_frn config's META_ARCHITECTURE is FRNChecked: the check reads the one it builds."""
    from frn_det.engine import check_recipe_options

    for name, arch in [("COCO-Detection/retinanet_R_50_FPN_1x.yaml", None),
                       ("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml", "GeneralizedRCNN")]:
        cfg = frn_det.to_frn(frn_det.add_frn_config(model_zoo.get_config(name)))
        cfg.MODEL.CENTER_PIXELS_PER_IMAGE = True
        if arch is None:
            check_recipe_options(cfg)
        else:
            with pytest.raises(ValueError, match=f"'RetinaNetFRN' only; this config uses '{arch}'"):
                check_recipe_options(cfg)


@pytest.mark.parametrize("norm", ["FRN", "GN"])
def test_zero_init_residual_refuses_frozen_stages(norm):
    """A frozen gamma at 0 would leave the block dead: refused with FRN as with GN (detectron2's blocks)."""
    fpn_norm = "FRN_NoTLU" if norm == "FRN" else norm
    cfg = small(load_cfg(BASE, **{"MODEL.RESNETS.NORM": norm, "MODEL.FPN.NORM": fpn_norm,
                                  "MODEL.RESNETS.ZERO_INIT_RESIDUAL": "True", "MODEL.BACKBONE.FREEZE_AT": "2"}),
                depth=18)
    with pytest.raises(ValueError, match="ZERO_INIT_RESIDUAL needs trainable norms .* with a frozen gamma"):
        build_backbone(cfg)


@pytest.mark.parametrize("norm", ["FRN", "GN"])
def test_norm_per_level_gives_each_level_its_own_norm(norm):
    cfg, model = tiny_retinanet(**{"MODEL.RETINANET.NORM": norm, "MODEL.RETINANET.NORM_PER_LEVEL": "True"})
    head, levels = model.head, len(cfg.MODEL.RETINANET.IN_FEATURES)
    per_level = [m for m in head.modules() if isinstance(m, LevelNorms)]
    assert len(per_level) == 2 * cfg.MODEL.RETINANET.NUM_CONVS and all(len(m) == levels for m in per_level)
    assert "cls_subnet.1.4.weight" in head.state_dict()  # the level index comes last but one
    feats = [torch.randn(2, 32, s, s) for s in (16, 8, 4, 2, 1)]
    with torch.no_grad():
        before = head(feats)
        norm3 = head.cls_subnet[1][3]
        (norm3.tau if norm == "FRN" else norm3.bias).fill_(5.0)  # change level 3's first cls norm only
        after = head(feats)
    for level in range(levels):
        changed = not torch.equal(before[0][level], after[0][level])
        assert changed == (level == 3)
        assert torch.equal(before[1][level], after[1][level])  # the box tower has its own norms


def test_shared_head_norms_keep_detectron2_state_names():
    _, model = tiny_retinanet()
    names = set(model.head.state_dict())
    assert "cls_subnet.1.weight" in names and "cls_subnet.1.tau" in names
    assert not any(isinstance(m, LevelNorms) for m in model.head.modules())


def test_weight_decay_norm_option_reaches_frn_parameters():
    _, model = tiny_retinanet()
    cfg = load_cfg(BASE, **{"SOLVER.WEIGHT_DECAY_NORM": "0.0004"})
    decay = {p: g["weight_decay"] for g in build_optimizer(cfg, model).param_groups for p in g["params"]}
    frn = [m for m in model.modules() if isinstance(m, FRN) and m.tau is not None]
    assert frn and all(decay[m.weight] == decay[m.bias] == decay[m.tau] == 4e-4 for m in frn)
    cfg = load_cfg(BASE)  # the paper configs: none on norm parameters
    decay = {p: g["weight_decay"] for g in build_optimizer(cfg, model).param_groups for p in g["params"]}
    assert all(decay[m.weight] == decay[m.bias] == decay[m.tau] == 0.0 for m in frn)


def test_uncentred_ratio_by_hand():
    # one sample, two channels over 2x2: [1, 1, 3, 3] -> mean 2, mean sq 5 -> 0.8; [-1, 1, -1, 1] -> 0
    x = torch.tensor([[[[1.0, 1.0], [3.0, 3.0]], [[-1.0, 1.0], [-1.0, 1.0]]]])
    assert uncentred_ratio(x) == pytest.approx((0.8 + 0.0) / 2)
    assert uncentred_ratio(torch.full((2, 3, 4, 4), -7.0)) == pytest.approx(1.0)


def test_between_images_share_by_hand():
    # one channel, 2x2: sample 0 [0, 0, 2, 2] (mean 1, var 1), sample 1 [4, 4, 4, 4] (mean 4, var 0):
    # between var([1, 4]) = 2.25, within mean(1, 0) = 0.5, total 2.75 = the variance of all 8 values
    x = torch.tensor([[[[0.0, 0.0], [2.0, 2.0]]], [[[4.0, 4.0], [4.0, 4.0]]]])
    assert x.var(correction=0).item() == pytest.approx(2.75)
    assert between_images_share(x) == pytest.approx(2.25 / 2.75)
    y = torch.randn(4, 3, 6, 6)
    same_means = y - y.mean((2, 3), keepdim=True) + torch.tensor([1.0, -2.0, 3.0]).view(1, 3, 1, 1)
    assert between_images_share(same_means) == pytest.approx(0.0, abs=1e-6)
    constant_samples = torch.arange(5.0).view(5, 1, 1, 1).expand(5, 3, 2, 2)
    assert between_images_share(constant_samples) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="2 or more samples"):
        between_images_share(x[:1])


def test_group_names():
    assert group_of("backbone.bottom_up.res3.1.conv2.norm") == "res3"
    assert group_of("module.backbone.bottom_up.stem.conv1.norm") == "stem"
    assert group_of("backbone.fpn_lateral4.norm") == "fpn"
    assert group_of("head.cls_subnet.1") == "head"


def test_record_norm_stats_by_hand():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Sequential(FRN(2), TLU(2))

    net = Net()
    with torch.no_grad():
        net.head[0].tau.copy_(torch.tensor([0.0, 0.5]))
        net.head[1].tau.copy_(torch.tensor([-1.0, 1.0]))
    x = torch.randn(3, 2, 5, 5) + 1.0
    with record_norm_stats(net) as stats:
        with torch.no_grad():
            z = net.head[0](x)
            out = net.head[1](z)
    s = stats["head"]
    assert s["uncentred"] == pytest.approx(uncentred_ratio(x), rel=1e-5)
    assert s["between_images"] == pytest.approx(between_images_share(x), rel=1e-5)
    assert s["out_rms"] == pytest.approx(z.pow(2).mean().sqrt().item(), rel=1e-5)
    frac_frn = (z > net.head[0].tau.view(1, 2, 1, 1)).float().mean().item()
    frac_tlu = (out > net.head[1].tau.view(1, 2, 1, 1)).float().mean().item()
    assert s["tlu_active"] == pytest.approx((frac_frn + frac_tlu) / 2)
    taus = torch.tensor([0.0, 0.5, -1.0, 1.0])
    assert s["tau_mean"] == pytest.approx(taus.mean().item())
    assert s["tau_std"] == pytest.approx(taus.std(unbiased=False).item())
    with record_norm_stats(net) as one_sample, torch.no_grad():
        net.head(x[:1])
    assert "between_images" not in one_sample["head"] and "uncentred" in one_sample["head"]
    # hooks are gone after the block
    net.head[0](x)
    assert not net.head[0]._forward_hooks


def test_record_norm_stats_reports_learned_eps():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Sequential(FRN(2, learnable_eps=True), FRN(2, learnable_eps=True), FRN(2))
            self.backbone = torch.nn.Sequential(FRN(2))

    net = Net()
    with torch.no_grad():
        net.head[0].eps_l.fill_(-3e-3)  # eps = 1e-6 + |eps_l|
        net.head[1].eps_l.fill_(1e-3)
    with record_norm_stats(net) as stats, torch.no_grad():
        net.backbone(net.head(torch.randn(2, 2, 3, 3)))
    assert stats["head"]["eps_mean"] == pytest.approx(1e-6 + 2e-3)  # the fixed-eps layer does not count
    assert "eps_mean" not in stats["fpn"]  # no learnable eps there


def test_monitor_writes_to_metrics_json(tmp_path):
    datasets = make_coco_tree(tmp_path / "datasets")
    out = tmp_path / "out"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--config-file",
           os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml"), *TINY, "SOLVER.MAX_ITER", "2",
           "FRN_MONITOR.ENABLED", "True", "TEST.EVAL_PERIOD", "1", "OUTPUT_DIR", str(out)]
    proc = subprocess.run(cmd, env=dict(os.environ, DETECTRON2_DATASETS=str(datasets)), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = [json.loads(line) for line in open(out / "metrics.json")]
    last = [m for m in lines if "frn_monitor/res3/uncentred" in m]
    assert last and last[-1]["iteration"] == 1
    keys = set(last[-1])
    for group in ("stem", "res2", "res3", "res4", "res5", "head"):
        assert {f"frn_monitor/{group}/{s}" for s in ("uncentred", "out_rms", "tlu_active", "tau_mean", "tau_std")} <= keys
    assert {"frn_monitor/fpn/uncentred", "frn_monitor/fpn/out_rms"} <= keys
    assert 0.0 <= last[-1]["frn_monitor/res3/tlu_active"] <= 1.0


def test_monitor_stops_recording_before_evaluation_and_precise_bn(tmp_path):
    from types import SimpleNamespace

    from detectron2.engine import hooks

    from frn_det.engine import FRNMonitor, Trainer

    cfg = load_cfg(BASE, **{"FRN_MONITOR.ENABLED": "True", "TEST.PRECISE_BN.ENABLED": "True",
                            "MODEL.RESNETS.NORM": "BN", "OUTPUT_DIR": str(tmp_path)})
    trainer = Trainer.__new__(Trainer)  # build_hooks needs only these
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), torch.nn.BatchNorm2d(3))
    trainer._trainer = SimpleNamespace(model=model, data_loader=None, optimizer=None)
    trainer.cfg, trainer.max_iter, trainer.start_iter = cfg, 2, 0
    trainer.checkpointer = trainer.build_checkpointer(cfg, model)
    trainer.scheduler = None
    trainer.build_train_loader = lambda cfg: None
    kinds = [type(h) for h in trainer.build_hooks()]
    monitor = kinds.index(FRNMonitor)
    # after_step runs in list order: the monitor removes its forward hooks before these run forward passes
    assert monitor < kinds.index(hooks.EvalHook) and monitor < kinds.index(hooks.PreciseBN)
    assert monitor < kinds.index(hooks.PeriodicWriter)


def test_monitor_period_must_match_the_writers():
    from frn_det.engine import FRNMonitor

    with pytest.raises(ValueError, match="multiple of 20"):
        FRNMonitor(10, writer_period=20)
    assert FRNMonitor(40, writer_period=20).period == 40


def test_centering_is_in_the_traced_export_graph():
    from frn_det.export import model as tool

    _, model = tiny_retinanet(**{"MODEL.CENTER_PIXELS_PER_IMAGE": "True", "MODEL.RETINANET.SCORE_THRESH_TEST": "0.0"})
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, 64, 96, generator=g) * 255
    adapter = tool.traceable_model(model, image)
    with torch.no_grad():
        traced = torch.jit.trace(adapter, (image,), check_trace=False)
        # an image brighter by a constant gives the same detections only if the graph centres it
        for shifted in (image, image + 40.0):
            got, want = traced(shifted), adapter(shifted)
            torch.testing.assert_close(got[2], want[2], rtol=1e-4, atol=1e-5)  # scores
        a, b = traced(image), traced(image + 40.0)
    torch.testing.assert_close(a[2], b[2], rtol=1e-3, atol=1e-4)
