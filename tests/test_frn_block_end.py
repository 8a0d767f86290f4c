"""The end of a residual block, max(FRN(x) + shortcut, tau) with FRN without TLU: every path of
dispatch.frn_add_tlu_function (fused on cpp, FRN + add + TLU elsewhere) against frn_add_tlu_reference,
and the FRN ResNet blocks that call it."""
import pytest
import torch

from frn_det.benchmark.launches import aten_ops
from frn_det.layers import (dispatch, frn_add_tlu_function, frn_add_tlu_reference, frn_options_scope, frn_reference,
                            path_cpp)
from frn_det.layers.testing import BLOCK_END_ARGS as ARGS
from frn_det.layers.testing import assert_agree, block_end_case, block_end_outputs_and_grads, saved_bytes
from frn_det.modeling.backbone.resnet import FRNBasicBlock, FRNBottleneckBlock

CPP = path_cpp.cpp_available()
needs_cpp = pytest.mark.skipif(not CPP, reason="C++ extension not built")
CPU_PATHS = ["python"] + (["cpp"] if CPP else [])


def run(fn, x, params, dz):
    return block_end_outputs_and_grads(fn, x, params, dz)


def reference(x, params, dz, in_float64=False):
    return block_end_outputs_and_grads(frn_add_tlu_reference, x, params, dz, in_float64)


def through(path):
    def fn(*args):
        with dispatch.force_impl(path):
            return frn_add_tlu_function(*args)

    return fn


# float32 on the fused kernel; the python path's float32 is FRN's and TLU's, tested in test_frn_paths
@pytest.mark.parametrize("path,dtype", [(p, torch.float64) for p in CPU_PATHS]
                         + ([("cpp", torch.float32)] if CPP else []))
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (2, 4, 9, 11), (2, 4, 16, 16), (3, 4, 1, 1), (4, 6)])
@pytest.mark.parametrize("learnable_eps", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_agrees_with_reference(path, dtype, shape, learnable_eps, ties, fresh_choice):
    x, params, dz = block_end_case(shape, dtype, learnable_eps, ties)
    assert_agree(x, params, dz, run(through(path), x, params, dz), reference(x, params, dz))


def test_the_tie_case_ties():
    x, params, _ = block_end_case((2, 4, 5, 7), torch.float64, learnable_eps=True, ties=True)
    y = frn_reference(x, params["weight"], params["bias"], None, 1e-6, params["eps_l"]) + params["shortcut"]
    assert (y == params["tau"].view(1, -1, 1, 1)).sum() >= x.numel() / 3


@needs_cpp
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(2, 4, 9, 11), (2, 3, 1, 1)])
def test_half_precision(dtype, shape):
    # y + shortcut rounds once in the fused kernel, twice in FRN + add: tau far from y keeps both sides;
    # against float64, as the reference's own tau gradient sums in half precision
    x, params, dz = block_end_case(shape, dtype, learnable_eps=True, far_tau=True)
    got = run(path_cpp.frn_add_tlu_cpp, x, params, dz)
    assert_agree(x, params, dz, got, reference(x, params, dz, in_float64=True))


@needs_cpp
def test_fused_ties_in_half_precision_compare_in_its_dtype():
    # the tie is decided on y + shortcut rounded to x's dtype against tau rounded so, as TLU decides it
    x, params, dz = block_end_case((2, 3, 4, 8), torch.bfloat16, learnable_eps=False, ties=True)
    params["tau"] = params["tau"].to(torch.bfloat16).float()  # beta, exact in bf16, so y == tau where x = 0
    params["bias"] = params["tau"].clone()
    z, g = run(path_cpp.frn_add_tlu_cpp, x, params, dz)
    share = g["shortcut"].double() / dz.double()
    tied = (x == 0) & (params["shortcut"] == 0)
    assert torch.equal(share[tied], torch.full_like(share[tied], 0.5))


@needs_cpp
def test_gradcheck():
    x, params, _ = block_end_case((2, 3, 4, 5), torch.float64, learnable_eps=True)
    names = ["shortcut", "weight", "bias", "tau", "eps_l"]
    inputs = [x.requires_grad_()] + [params[k].requires_grad_() for k in names]

    def f(x, s, w, b, t, e):
        return path_cpp.frn_add_tlu_cpp(x, s, w, b, t, 1e-6, e)

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


@needs_cpp
@pytest.mark.parametrize("shape", [(2, 8, 6, 10), (2, 3, 5, 7)])
def test_fused_saves_the_input_its_output_and_one_bit_per_element(shape):
    x, params, _ = block_end_case(shape, torch.float32, learnable_eps=True)
    layer_params = [params[k].requires_grad_() for k in ("weight", "bias", "tau", "eps_l")]
    x.requires_grad_()
    s = params["shortcut"].requires_grad_()

    def layer(x):
        return path_cpp.frn_add_tlu_cpp(x, s, *layer_params[:3], 1e-6, layer_params[3])

    n, c, h, w = shape
    # x, z (which the next conv keeps anyway), r per plane, the tie bits (each plane from a byte)
    assert saved_bytes(layer, x, layer_params + [s]) == 2 * x.numel() * 4 + n * c * 4 + n * c * -(-h * w // 8)


@needs_cpp
def test_dispatch_fuses_on_cpp_only(fresh_choice):
    x, params, _ = block_end_case((2, 3, 4, 5), torch.float32, learnable_eps=False)
    p = {k: v.requires_grad_() for k, v in params.items() if v is not None}
    args = (x.requires_grad_(), p["shortcut"], p["weight"], p["bias"], p["tau"])
    names = {}
    for path in ("cpp", "python"):
        with dispatch.force_impl(path):
            names[path] = frn_add_tlu_function(*args).grad_fn.name()
            # no fused kernel for (N, C) inputs or a shortcut of another dtype: FRN, add, TLU
            assert "TLUFunction" in frn_add_tlu_function(x[:, :, 0, 0], *(a[:, :, 0, 0] for a in args[1:2]),
                                                         *args[2:]).grad_fn.name()
            assert "TLUFunction" in frn_add_tlu_function(x, p["shortcut"].double(), *args[2:]).grad_fn.name()
    assert names["cpp"].endswith("::FRNAddTLUFunction>") and "TLUFunction" in names["python"]


@needs_cpp
def test_fused_launches_are_its_two_kernels():
    # forward and backward are one op each (their allocations inside them), no aten op around them
    x, params, dz = block_end_case((2, 8, 6, 5), torch.float32, learnable_eps=False)
    leaves = [x.requires_grad_()] + [params[k].requires_grad_() for k in ARGS]
    ops = aten_ops(lambda: torch.autograd.grad(path_cpp.frn_add_tlu_cpp(*leaves), leaves, dz))
    assert ops == {"frn_det.frn_add_tlu_forward.default": 1, "frn_det.frn_add_tlu_backward.default": 1}, ops


@pytest.mark.parametrize("path", CPU_PATHS)
def test_nan_propagates_as_in_the_reference(path, fresh_choice):
    x, params, dz = block_end_case((2, 3, 4, 5), torch.float32, learnable_eps=False)
    x[0, 1].view(-1)[3] = float("nan")  # spoils plane (0, 1)
    params["shortcut"][1, 2].view(-1)[5] = float("nan")  # one element
    (z, g), (z_ref, g_ref) = run(through(path), x, params, dz), run(frn_add_tlu_reference, x, params, dz)
    assert torch.equal(z.isnan(), z_ref.isnan()) and z_ref[0, 1].isnan().all() and z_ref.isnan().sum() == 21
    for name in g:
        assert torch.equal(g[name].isnan(), g_ref[name].isnan()), name


def _block_outputs_and_grads(block, x, fused):
    block.fuse_block_end = fused
    x = x.clone().requires_grad_()
    out = block(x)
    dz = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    params = [p for p in block.parameters()]
    return out, torch.autograd.grad(out, [x] + params, dz)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("block_cls", ["basic", "bottleneck"])
@pytest.mark.parametrize("learnable_eps", [False, True])
@pytest.mark.parametrize("projection", [False, True])
def test_block_fused_and_unfused_agree(path, block_cls, learnable_eps, projection, fresh_choice):
    torch.manual_seed(0)
    cin, cout = (8, 16) if projection else (16, 16)
    with frn_options_scope(learnable_eps=learnable_eps):
        if block_cls == "basic":
            block = FRNBasicBlock(cin, cout, stride=1, norm="FRN")
        else:
            block = FRNBottleneckBlock(cin, cout, bottleneck_channels=4, stride=1, norm="FRN")
    with torch.no_grad():  # parameters away from init, tau where it cuts
        for name, p in block.named_parameters():
            if name.endswith(("norm.weight", "norm.bias", "tau")):
                p.uniform_(-0.5, 1.0)
    keys = list(block.state_dict())
    x = torch.randn(2, cin, 6, 7)
    with dispatch.force_impl(path):
        fused, unfused = _block_outputs_and_grads(block, x, True), _block_outputs_and_grads(block, x, False)
        block.fuse_block_end = True
        assert (block(x).grad_fn.name().endswith("::FRNAddTLUFunction>")) == (path == "cpp")
    assert list(block.state_dict()) == keys
    torch.testing.assert_close(fused[0], unfused[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(fused[1], unfused[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@needs_cpp
def test_non_contiguous_inputs_and_inference_mode():
    x = torch.randn(2, 6, 5, 4).contiguous(memory_format=torch.channels_last)
    s = torch.randn(2, 6, 4, 5).transpose(2, 3)
    _, params, dz = block_end_case(x.shape, torch.float32, learnable_eps=True)
    params["shortcut"] = s
    assert_agree(x, params, dz, run(path_cpp.frn_add_tlu_cpp, x, params, dz), reference(x, params, dz))
    with torch.inference_mode():  # the op's plain CPU kernel, no autograd
        torch.testing.assert_close(path_cpp.frn_add_tlu_cpp(x, s, *(params[k] for k in ARGS[1:]), 1e-6, None),
                                   frn_add_tlu_reference(x, s, *(params[k] for k in ARGS[1:])))


@needs_cpp
def test_the_auto_check_leaves_out_a_wrong_fused_block_end(monkeypatch):
    from frn_det.engine import frn_path

    monkeypatch.setattr(frn_path, "_checked", {})
    assert frn_path.path_problem("cpp", "cpu", torch.float32) is None
    monkeypatch.setattr(frn_path, "_checked", {})
    monkeypatch.setitem(dispatch.FUSED_ADD_TLU, "cpp", lambda x, s, w, b, t, eps, eps_l: frn_add_tlu_reference(
        x, s, w, b, t, eps, eps_l) * 1.01)
    assert "disagrees" in frn_path.path_problem("cpp", "cpu", torch.float32)


def test_tracing_a_block_records_plain_aten_ops(fresh_choice):
    block = FRNBottleneckBlock(8, 16, bottleneck_channels=4, stride=1, norm="FRN").eval()
    x = torch.randn(1, 8, 6, 6)
    traced = torch.jit.trace(block, x)
    assert "frn_det::" not in str(traced.graph)
    x = torch.randn(2, 8, 5, 7)
    torch.testing.assert_close(traced(x), block(x))


def test_a_hooked_block_runs_its_modules_so_the_monitor_sees_them():
    """The FRN monitor's hooks on the last norm and the residual TLU fire: with hooks the block end runs
    unfused, and its statistics are those of the unfused block."""
    from frn_det.engine import record_norm_stats

    torch.manual_seed(0)
    res2 = torch.nn.Module()
    res2.block = FRNBottleneckBlock(8, 8, bottleneck_channels=4, norm="FRN")
    x = torch.randn(2, 8, 6, 6)
    got = {}
    for fuse in (True, False):
        res2.block.fuse_block_end = fuse
        with record_norm_stats(res2) as stats, torch.no_grad():
            res2.block(x)
        got[fuse] = stats
    assert got[True] == got[False] and {"tlu_active", "uncentred", "out_rms"} <= set(got[True]["block"])
