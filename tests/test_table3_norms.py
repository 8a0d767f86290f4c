"""The paper's Table 3 ablation norms ("GN_TLU", "GFRN", "GFRN_NoTLU", "FRN_ReLU") as norm names:
their layers against float64 formulas written here from the paper (eq. 1-3 over GN's groups, eq. 8),
their activation placement in frn_det's ResNet and RetinaNet head, MODEL.FRN's options, the
optimizer, the monitor and the study methods that use them."""
import os

import pytest
import torch
import torch.nn.functional as F
from detectron2.config import get_cfg
from detectron2.layers import get_norm
from detectron2.modeling.backbone.resnet import BasicBlock
from detectron2.utils.events import EventStorage

import frn_det
from coco_tree import ROOT, TINY_MODEL
from frn_det.config.protocol import METHOD_NORMS, method_opts
from frn_det.engine import record_norm_stats
from frn_det.layers import FRN, GFRN, TLU, FRNNorm, GroupNormTLU, norm_has_tlu, norm_without_tlu
from frn_det.modeling import build_model
from frn_det.modeling.backbone import FRNStem
from frn_det.modeling.backbone.resnet import FRNBasicBlock

CONFIG = os.path.join(ROOT, "configs", "retinanet_frn_2img.yaml")
GROUPS = 32


# --- the paper's formulas, float64 -------------------------------------------------------------------

def _per_channel(v, x):
    return v.view((1, -1) + (1,) * (x.dim() - 2))


def _affine_tlu(x_hat, gamma, beta, tau):
    y = _per_channel(gamma, x_hat) * x_hat + _per_channel(beta, x_hat)  # eq. 2
    return y if tau is None else torch.maximum(y, _per_channel(tau, x_hat))  # eq. 3


def gfrn_formula(x, gamma, beta, tau, eps):
    """GFRN: eq. 1 with nu2 the mean of x^2 over a sample's group of channels and H x W."""
    g = x.reshape(x.shape[0], GROUPS, -1)
    nu2 = (g * g).mean(dim=-1, keepdim=True)
    return _affine_tlu((g / torch.sqrt(nu2 + eps)).reshape(x.shape), gamma, beta, tau)


def gn_tlu_formula(x, gamma, beta, tau, eps=1e-5):
    """GroupNorm (eq. 8 over a sample's group of channels and H x W, biased variance), then TLU."""
    g = x.reshape(x.shape[0], GROUPS, -1)
    mu = g.mean(dim=-1, keepdim=True)
    var = ((g - mu) ** 2).mean(dim=-1, keepdim=True)
    return _affine_tlu(((g - mu) / torch.sqrt(var + eps)).reshape(x.shape), gamma, beta, tau)


def frn_formula(x, gamma, beta, tau, eps=1e-6):
    """FRN (eq. 1-3): nu2 the mean of x^2 over one channel's H x W."""
    nu2 = (x * x).mean(dim=(2, 3), keepdim=True)
    return _affine_tlu(x / torch.sqrt(nu2 + eps), gamma, beta, tau)


def _randomize(layer):
    """Parameters away from their init, so that every gradient is exercised."""
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-0.3, 0.3)
        if getattr(layer, "tau", None) is not None:
            layer.tau.uniform_(-0.2, 0.2)
        if getattr(layer, "eps_l", None) is not None:
            layer.eps_l.fill_(-3e-2)
    return layer


def _check_against_formula(layer, formula, shape):
    """Output and the gradients of x and of every parameter, layer (float64) against formula."""
    layer = _randomize(layer).double()
    x = (torch.randn(shape, dtype=torch.float64) * 2 + 0.3).requires_grad_()
    dz = torch.randn(shape, dtype=torch.float64)
    params = dict(layer.named_parameters())
    z = layer(x)
    grads = torch.autograd.grad(z, [x, *params.values()], dz)

    ref_params = {k: v.detach().clone().requires_grad_() for k, v in params.items()}
    x_ref = x.detach().clone().requires_grad_()
    eps = 1e-6 + ref_params["eps_l"].abs() if "eps_l" in ref_params else getattr(layer, "eps", None)
    z_ref = formula(x_ref, ref_params["weight"], ref_params["bias"], ref_params.get("tau"), eps)
    ref_grads = torch.autograd.grad(z_ref, [x_ref, *ref_params.values()], dz)

    torch.testing.assert_close(z, z_ref, rtol=1e-10, atol=1e-10)
    for name, g, g_ref in zip(["x", *params], grads, ref_grads):
        torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-9, msg=lambda m: f"d{name}: {m}")
    return set(params)


@pytest.mark.parametrize("shape", [(2, 64, 5, 3), (3, 64)], ids=["NCHW", "NC"])
@pytest.mark.parametrize("learnable_eps", [False, True], ids=["eps", "learnable_eps"])
@pytest.mark.parametrize("name", ["GFRN", "GFRN_NoTLU"])
def test_gfrn_forward_and_gradients_match_the_formula(name, learnable_eps, shape):
    layer = FRNNorm(name, learnable_eps=learnable_eps)(64)
    assert isinstance(layer, GFRN) and layer.num_groups == GROUPS
    names = _check_against_formula(layer, gfrn_formula, shape)
    assert names == {"weight", "bias"} | ({"tau"} if name == "GFRN" else set()) | ({"eps_l"} if learnable_eps else set())


def test_gfrn_float32_keeps_to_the_float64_formula():
    layer = _randomize(get_norm("GFRN", 64))
    x = torch.randn(2, 64, 6, 6, dtype=torch.float64) * 50
    with torch.no_grad():
        z = layer(x.float())
        z_ref = gfrn_formula(x, *(p.double() for p in (layer.weight, layer.bias, layer.tau)), 1e-6)
    torch.testing.assert_close(z.double(), z_ref, rtol=1e-5, atol=1e-5)


def test_gn_tlu_forward_and_gradients_match_the_formula():
    layer = get_norm("GN_TLU", 64)
    stock = get_norm("GN", 64)  # detectron2's GN: the same groups and eps
    assert isinstance(layer, GroupNormTLU) and (layer.num_groups, layer.eps) == (stock.num_groups, stock.eps) == (32, 1e-5)
    assert _check_against_formula(layer, lambda x, g, b, t, eps: gn_tlu_formula(x, g, b, t, stock.eps),
                                  (2, 64, 5, 3)) == {"weight", "bias", "tau"}


def test_one_channel_per_group_gfrn_is_frn():
    layer = _randomize(GFRN(8, num_groups=8))
    x = torch.randn(2, 8, 4, 4)
    frn = FRN(8)
    frn.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), frn(x))


def test_groups_must_divide_the_channels():
    with pytest.raises(ValueError, match="multiple of 32; got 48"):
        get_norm("GFRN", 48)
    with pytest.raises(ValueError, match="multiple of 32; got 40"):
        get_norm("GN_TLU", 40)


# --- names, options and placement ------------------------------------------------------------------

def test_names_say_which_activation_they_carry():
    assert [n for n in ("FRN", "GFRN", "GN_TLU", "FRN_NoTLU", "GFRN_NoTLU", "FRN_ReLU", "GN", "BN") if norm_has_tlu(n)] \
        == ["FRN", "GFRN", "GN_TLU"]
    assert [norm_without_tlu(n) for n in ("FRN", "GFRN", "GN_TLU", "FRN_ReLU", "GN")] == \
        ["FRN_NoTLU", "GFRN_NoTLU", "GN", "FRN_ReLU", "GN"]
    assert get_norm("FRN_ReLU", 8).tau is None and get_norm("GFRN_NoTLU", 64).tau is None
    assert isinstance(get_norm("GN", 64), torch.nn.GroupNorm) and not isinstance(get_norm("GN", 64), GroupNormTLU)
    # options travel with FRNNorm; GN_TLU's GroupNorm keeps its own eps
    assert norm_without_tlu(FRNNorm("GFRN", eps=1e-5, learnable_eps=True)) == FRNNorm("GFRN_NoTLU", 1e-5, True)
    assert norm_without_tlu(FRNNorm("GN_TLU")) == "GN"
    with pytest.raises(ValueError, match="'GN_TLU' takes no eps or learnable_eps.*'GFRN'"):
        FRNNorm("GN_TLU", eps=1e-4)
    with frn_det.layers.frn_options_scope(eps=1e-4, learnable_eps=True):
        gfrn, gn_tlu = get_norm("GFRN", 64), get_norm("GN_TLU", 64)
    assert gfrn.eps == 1e-4 and gfrn.eps_l is not None and gn_tlu.eps == 1e-5


def test_unknown_name_lists_the_new_names():
    with pytest.raises(ValueError) as e:
        get_norm("GFNR", 64)
    for name in ("'GFNR'", "'FRN'", "'FRN_NoTLU'", "'FRN_ReLU'", "'GFRN'", "'GFRN_NoTLU'", "'GN_TLU'", "'GN'"):
        assert name in str(e.value)


def test_frn_relu_block_is_relu_after_frn_without_tlu():
    """An FRN_ReLU block: relu(FRN(conv2(relu(FRN(conv1 x)))) + FRN(shortcut x)), the formula by hand,
    and detectron2's own BasicBlock with FRN_NoTLU layers."""
    block = FRNBasicBlock(32, 64, stride=2, norm="FRN_ReLU")
    assert not block.use_tlu and not hasattr(block, "tlu")
    stock = BasicBlock(32, 64, stride=2, norm="FRN_NoTLU")
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0, 0.3)
    stock.load_state_dict(block.state_dict())
    x = torch.randn(2, 32, 8, 8)

    def conv_frn(conv, x, stride):
        y = F.conv2d(x.double(), conv.weight.double(), stride=stride, padding=conv.padding)
        return frn_formula(y, conv.norm.weight.double(), conv.norm.bias.double(), None)

    out = conv_frn(block.conv2, F.relu(conv_frn(block.conv1, x, 2)), 1)
    want = F.relu(out + conv_frn(block.shortcut, x, 2))
    with torch.no_grad():
        torch.testing.assert_close(block(x).double(), want, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(block(x), stock(x))


def _tiny_cfg(method, *opts):
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list([*TINY_MODEL, "MODEL.DEVICE", "cpu", "MODEL.RETINANET.NUM_CONVS", "2",
                         *method_opts(method), *opts])
    return cfg


def _block_outputs(model, x):
    """The outputs of the stem's conv (with its norm), the stem and every residual block of the
    bottom-up ResNet."""
    outs, handles = {}, []
    for name, m in model.backbone.bottom_up.named_modules():
        if isinstance(m, (FRNStem, FRNBasicBlock)) or name == "stem.conv1":
            # a copy: the stem's ReLU (FRN_ReLU) runs in place on its conv's output
            handles.append(m.register_forward_hook(lambda m, i, o, name=name: outs.__setitem__(name, o.clone())))
    with torch.no_grad():
        model.backbone.bottom_up(x)
    for h in handles:
        h.remove()
    stem_conv, stem = outs.pop("stem.conv1"), outs.pop("stem")
    assert isinstance(model.backbone.bottom_up.stem, FRNStem) and len(outs) == 8  # R18: 8 BasicBlocks
    return stem_conv, stem, outs


@pytest.mark.parametrize("method,norm_type", [("gn_tlu", GroupNormTLU), ("gfrn", GFRN)])
def test_tlu_names_have_no_relu_behind_them(method, norm_type):
    model = build_model(_tiny_cfg(method))
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.head.modules())
    assert sum(isinstance(m, norm_type) for m in model.head.modules()) == 4  # 2 convs per tower
    fpn_norms = [m.norm for name, m in model.backbone.named_modules() if name.startswith("fpn_") and "." not in name]
    assert len(fpn_norms) == 6 and all(getattr(n, "tau", None) is None for n in fpn_norms)  # lateral, output: P3-P5
    with torch.no_grad():
        for m in model.modules():
            if getattr(m, "tau", None) is not None:
                m.tau.fill_(-1.0)
    stem_conv, stem, blocks = _block_outputs(model, torch.randn(1, 3, 64, 64))
    assert stem_conv.min().item() == pytest.approx(-1.0)  # max(y, tau) = tau: nothing clips TLU at 0
    torch.testing.assert_close(stem, F.max_pool2d(stem_conv, kernel_size=3, stride=2, padding=1))
    for name, out in blocks.items():
        assert -1.0 - 1e-6 <= out.min().item() < 0, name


def test_frn_relu_blocks_and_head_keep_relu():
    model = build_model(_tiny_cfg("frn_relu"))
    assert not any(isinstance(m, TLU) for m in model.modules())
    assert all(m.tau is None for m in model.modules() if isinstance(m, FRN))
    assert sum(isinstance(m, torch.nn.ReLU) for m in model.head.modules()) == 4
    stem_conv, stem, blocks = _block_outputs(model, torch.randn(1, 3, 64, 64))
    assert stem_conv.min().item() < 0  # FRN without TLU; the stem's ReLU follows
    torch.testing.assert_close(stem, F.max_pool2d(F.relu(stem_conv), kernel_size=3, stride=2, padding=1))
    for name, out in blocks.items():
        assert out.min().item() >= 0, name


def test_model_frn_options_reach_gfrn_layers():
    model = build_model(_tiny_cfg("gfrn", "MODEL.FRN.EPS", "1e-4", "MODEL.FRN.LEARNABLE_EPS", "True"))
    layers = {name: m for name, m in model.named_modules() if isinstance(m, GFRN)}
    assert {name.split(".")[0] for name in layers} == {"backbone", "head"}
    assert any(".fpn_" in name for name in layers)
    assert all(m.eps == 1e-4 and m.eps_l is not None for m in layers.values())
    # GN_TLU builds under the same options, with GroupNorm's own eps
    model = build_model(_tiny_cfg("gn_tlu", "MODEL.FRN.EPS", "1e-4"))
    assert all(m.eps == 1e-5 for m in model.modules() if isinstance(m, torch.nn.GroupNorm))


@pytest.mark.parametrize("method", ["gn_tlu", "gfrn", "frn_relu"])
def test_study_methods_build_and_train_a_step(method):
    assert set(METHOD_NORMS[method]) == {"RESNETS", "FPN", "RETINANET"}
    model = build_model(_tiny_cfg(method))
    model.train()
    image = {"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8), "height": 64, "width": 64,
             "instances": _instances()}
    with EventStorage():
        losses = model([image, image])
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    # the monitor reports what applies: TLU stats where there is TLU
    with record_norm_stats(model) as stats, torch.no_grad():
        model.eval()
        model.backbone(torch.randn(2, 3, 64, 64))
    assert {"res2", "res5", "fpn"} <= set(stats)
    assert ("tlu_active" in stats["res3"]) == (method != "frn_relu")
    assert "tlu_active" not in stats["fpn"]


def _instances():
    from detectron2.structures import Boxes, Instances

    inst = Instances((64, 64))
    inst.gt_boxes = Boxes(torch.tensor([[8.0, 8.0, 40.0, 40.0]]))
    inst.gt_classes = torch.tensor([0])
    return inst


def test_weight_decay_norm_covers_the_new_layers():
    from frn_det.solver import build_optimizer

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), FRNNorm("GFRN", learnable_eps=True)(64),
                                torch.nn.Conv2d(64, 64, 1), get_norm("GN_TLU", 64),
                                torch.nn.Conv2d(64, 64, 1), get_norm("FRN_ReLU", 64))
    cfg = frn_det.add_frn_config(get_cfg())
    cfg.merge_from_list(["SOLVER.WEIGHT_DECAY", "4e-4", "SOLVER.WEIGHT_DECAY_NORM", "0.0"])
    decay = {p: g["weight_decay"] for g in build_optimizer(cfg, model).param_groups for p in g["params"]}
    gfrn, gn_tlu, frn_relu = model[1], model[3], model[5]
    for p in [gfrn.weight, gfrn.bias, gfrn.tau, gfrn.eps_l, gn_tlu.weight, gn_tlu.bias, gn_tlu.tau,
              frn_relu.weight, frn_relu.bias]:
        assert decay[p] == 0.0
    assert all(decay[model[i].weight] == 4e-4 for i in (0, 2, 4))
    assert len(decay) == len(list(model.parameters()))


def test_monitor_reports_gfrn_eps_and_tlu():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), FRNNorm("GFRN", learnable_eps=True)(64),
                              torch.nn.Conv2d(64, 64, 1), get_norm("GN_TLU", 64))
    with record_norm_stats(net) as stats, torch.no_grad():
        net(torch.randn(2, 3, 8, 8))
    gfrn, gn_tlu = stats["1"], stats["3"]  # the groups are the modules' names here
    assert gfrn["eps_mean"] == pytest.approx(1e-6 + 1e-4) and "eps_mean" not in gn_tlu
    for group in (gfrn, gn_tlu):
        assert 0 < group["tlu_active"] < 1 and group["tau_mean"] == 0.0
        assert {"uncentred", "between_images", "out_rms"} <= set(group)


# --- the study -------------------------------------------------------------------------------------

def test_study_plans_names_and_summarizes_the_methods(tmp_path):
    from frn_det.study import batch
    from frn_det.study.run_name import RunName
    from frn_det.study.summary.runs import load_runs
    from frn_det.study.summary.tables import markdown
    from test_study_summary import _run

    runs = batch.plan_runs(["gn_tlu", "gfrn", "frn_relu"], [8, 2], [0], {})
    assert {r["name"] for r in runs} >= {"gn_tlu_8img_seed0", "gfrn_2img_seed0", "frn_relu_8img_seed0"}
    for r in runs:
        assert method_opts(r["method"])  # what train_argv passes to train_net
        assert RunName.parse(r["name"]).method == r["method"]
    study = tmp_path / "study"
    for i, name in enumerate(["frn", "gn", "bn", "gn_tlu", "gfrn", "frn_relu"]):
        for imgs in (8, 2):
            _run(study, "shapes", f"{name}_{imgs}img_seed0", 60.0 + i, imgs)
    loaded = load_runs(str(study))
    assert {r["method"] for r in loaded} == set(METHOD_NORMS)
    text = markdown(loaded)
    for label in ("GN + TLU (Table 3)", "GFRN + TLU (Table 3)", "FRN + ReLU (Table 3)"):
        assert f"| {label} |" in text
    assert "| GFRN + TLU (Table 3) | 64.0 (lr 0.02) | 64.0 (lr 0.02) |" in text
    table = batch.markdown_table(batch.summarize(
        [{**r, "result": {"val": {"AP": 1.0, "AP50": 2.0, "AP75": 3.0}}} for r in runs]), ["gfrn"], [8, 2])
    assert "| GFRN | 1.0 | 1.0 | 2.0 | 2.0 | 3.0 | 3.0 |" in table
