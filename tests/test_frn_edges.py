"""FRN at the edges of its inputs, on every CPU path, judged by the paper's formula evaluated in float64
(testing.float64_frn, written apart from the repo's reference): empty batches and planes, long planes, second
derivatives, parameters of the wrong size, activations near fp32's limits, and torch.compile of the
C++ op. The triton path's cases are in test_frn_triton.py (Triton's interpreter)."""
import pytest
import torch

from frn_det.layers import GFRN, TLU, dispatch, frn_add_tlu_function, path_cpp
from frn_det.layers.testing import (BLOCK_END_ARGS, assert_agree, block_end_case, float64_block_end, float64_frn,
                                    make_case, outputs_and_grads, outputs_and_grads_in_float64, penalty_grads)

CPP = path_cpp.cpp_available()
needs_cpp = pytest.mark.skipif(not CPP, reason="C++ extension not built")
PATHS = ["reference", "python"] + (["cpp"] if CPP else [])
NAMES = ("weight", "bias", "tau", "eps_l")


def through(path, fn):
    def run(*args):
        with dispatch.force_impl(path):
            return fn(*args)

    return run


EMPTY = [(0, 4, 5, 5), (2, 4, 0, 5), (2, 4, 5, 0), (0, 4)]


def assert_zero_grads(z, g, x, params):
    assert z.shape == x.shape and z.dtype == x.dtype
    want = dict({k: v for k, v in params.items() if v is not None}, x=x)
    assert set(g) == set(want)
    for k, v in want.items():  # a gradient for each (DDP needs every parameter's), zero, none NaN
        assert g[k].shape == v.shape and g[k].dtype == v.dtype and not g[k].any(), (k, g[k])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", EMPTY)
@pytest.mark.parametrize("learnable_eps,tlu", [(True, True), (False, False)])
def test_empty_input_gives_zero_gradients(path, shape, learnable_eps, tlu):
    # N = 0: R-CNN heads on zero ROIs; H or W = 0
    x, params, dz = make_case(shape, torch.float32, learnable_eps, tlu)
    assert_zero_grads(*outputs_and_grads(dispatch.PATHS[path], x, params, dz), x, params)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", EMPTY[:3])
def test_empty_block_end_gives_zero_gradients(path, shape, fresh_choice):
    x, params, dz = block_end_case(shape, torch.float32, learnable_eps=True)
    z, g = outputs_and_grads(through(path, frn_add_tlu_function), x, params, dz, BLOCK_END_ARGS)
    assert_zero_grads(z, g, x, params)


@pytest.mark.parametrize("shape", EMPTY)
def test_empty_gfrn_and_tlu_give_zero_gradients(shape):
    for layer in (GFRN(32, learnable_eps=True), TLU(32)):
        x = torch.randn(shape[0], 32, *shape[2:], requires_grad=True)
        z = layer(x)
        grads = torch.autograd.grad(z, [x, *layer.parameters()], torch.randn_like(z))
        assert z.shape == x.shape and all(g is not None and not g.any() for g in grads), layer


@needs_cpp
def test_long_planes_stay_at_fp32_rounding():
    # a 1024x2048 plane: constant 0.1 in channel 0 (16-lane float sums of it drift by 5e-4), N(0.5, 1) in channel 1
    x = torch.full((1, 2, 1024, 2048), 0.1)
    x[0, 1] = torch.randn(1024, 2048) + 0.5
    _, params, _ = make_case((1, 2, 1, 1), torch.float32, learnable_eps=True, tlu=False)
    dz = torch.randn(x.shape) + 0.25
    z, g = outputs_and_grads(path_cpp.frn_cpp, x, params, dz)
    double = {k: None if v is None else v.double() for k, v in params.items()}
    z_ref, g_ref = outputs_and_grads(float64_frn, x.double(), double, dz.double())
    dx_scale = g_ref["x"].abs().max()
    assert (z.double() - z_ref).abs().max() <= 1e-6 * z_ref.abs().max()
    assert (g["x"].double() - g_ref["x"]).abs().max() <= 2e-6 * dx_scale
    for name in ("weight", "bias", "eps_l"):
        assert (g[name].double() - g_ref[name]).abs().max() <= 2e-6 * g_ref[name].abs().max(), name


UPSTREAMS = {"sum": lambda z: z.sum(), "square": lambda z: z.square().sum()}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4)])
def test_second_derivatives(path, shape):
    x, params, _ = make_case(shape, torch.float64, learnable_eps=True, tlu=True)
    inputs = [x] + [params[k] for k in NAMES]

    def f(x, w, b, t, e):
        return dispatch.PATHS[path](x, w, b, t, 1e-6, e)

    def paper(x, w, b, t, e):
        return float64_frn(x, w, b, t, 1e-6, e)

    for name, upstream in UPSTREAMS.items():
        for got, want in zip(penalty_grads(f, inputs, upstream), penalty_grads(paper, inputs, upstream)):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12, msg=name)
    assert torch.autograd.gradgradcheck(f, [t.requires_grad_() for t in inputs], eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("path", PATHS)
def test_block_end_second_derivatives(path, fresh_choice):
    x, params, _ = block_end_case((2, 3, 4, 5), torch.float64, learnable_eps=True)
    inputs = [x] + [params[k] for k in ("shortcut", *NAMES)]

    def f(x, s, w, b, t, e):
        with dispatch.force_impl(path):
            return frn_add_tlu_function(x, s, w, b, t, 1e-6, e)

    def paper(x, s, w, b, t, e):
        return float64_block_end(x, s, w, b, t, 1e-6, e)

    for name, upstream in UPSTREAMS.items():
        for got, want in zip(penalty_grads(f, inputs, upstream), penalty_grads(paper, inputs, upstream)):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12, msg=name)
    assert torch.autograd.gradgradcheck(f, [t.requires_grad_() for t in inputs], eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name,size", [("weight", 1), ("bias", 3), ("tau", 5)])
def test_a_parameter_of_the_wrong_size_is_refused(path, name, size):
    # one value would broadcast over the channels, as no FRN layer has it
    x, params, _ = make_case((2, 4, 3, 5), torch.float32, learnable_eps=False, tlu=True)
    params[name] = torch.ones(size)
    with pytest.raises((ValueError, RuntimeError), match="per channel"):
        dispatch.PATHS[path](x, params["weight"], params["bias"], params["tau"], 1e-6, None)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 6)])
@pytest.mark.parametrize("scale", [1e15, 1e-15])
def test_large_and_small_activations(path, shape, scale):
    # FRN is scale invariant: fp32 holds it while x^2 does (below about 1e19)
    x, params, dz = make_case(shape, torch.float32, learnable_eps=True, tlu=True, scale=scale)
    got = outputs_and_grads(dispatch.PATHS[path], x, params, dz)
    assert_agree(x, params, dz, got, outputs_and_grads_in_float64(float64_frn, x, params, dz))


@needs_cpp
@pytest.mark.parametrize("scale", [1e15, 1.0])
def test_large_activations_at_the_block_end(scale):
    x, params, dz = block_end_case((2, 3, 4, 5), torch.float32, learnable_eps=True)
    x = x * scale
    got = outputs_and_grads(path_cpp.frn_add_tlu_cpp, x, params, dz, BLOCK_END_ARGS)
    assert_agree(x, params, dz, got, outputs_and_grads_in_float64(float64_block_end, x, params, dz, BLOCK_END_ARGS))


@needs_cpp
def test_torch_compile_runs_the_cpp_kernels(monkeypatch, fresh_choice):
    # the ops' fake kernels let torch.compile trace them (aot_eager: fake tensors, no inductor build)
    from frn_det.layers import FRN

    monkeypatch.setenv("FRN_DET_IMPL", "cpp")
    dispatch.reset()
    torch._dynamo.reset()

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.frn = torch.nn.Conv2d(3, 4, 3, padding=1), FRN(4, learnable_eps=True)

        def forward(self, x, s):
            f = self.frn
            return frn_add_tlu_function(f(self.conv(x)), s, f.weight, f.bias, f.tau, f.eps, f.eps_l)

    block, x, s = Block(), torch.randn(2, 3, 6, 5), torch.randn(2, 4, 6, 5, requires_grad=True)
    results = []
    for fn in (block, torch.compile(block, backend="aot_eager")):
        z = fn(x, s)
        results.append([z, *torch.autograd.grad(z.square().sum(), [s, *block.parameters()])])
    torch._dynamo.reset()
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (2, 3, 1, 1)])
def test_half_precision_block_end(path, dtype, shape, fresh_choice):
    # tau's gradient sums in fp32 on every path, the reference's TLU after the add included
    x, params, dz = block_end_case(shape, dtype, learnable_eps=True, far_tau=True)
    got = outputs_and_grads(through(path, frn_add_tlu_function), x, params, dz, BLOCK_END_ARGS)
    assert_agree(x, params, dz, got, outputs_and_grads_in_float64(float64_block_end, x, params, dz, BLOCK_END_ARGS))


@pytest.mark.parametrize("path", PATHS)
def test_gradients_with_a_graph_hold_at_large_activations(path):
    # create_graph runs each path's differentiable formula: its first derivatives must hold where the
    # plain backward's do (fp32, |x| about 1e15)
    x, params, dz = make_case((2, 3, 4, 5), torch.float32, learnable_eps=True, tlu=True, scale=1e15)
    inputs = [x] + [params[k] for k in NAMES]

    def grads(fn, inputs):
        leaves = [t.detach().clone().requires_grad_() for t in inputs]
        z = fn(*leaves[:4], 1e-6, leaves[4])
        return [z.detach(), *torch.autograd.grad((z * dz.to(z.dtype)).sum(), leaves, create_graph=True)]

    got = grads(dispatch.PATHS[path], inputs)
    want = grads(float64_frn, [t.double() for t in inputs])
    for name, g, w in zip(["z", "x", *NAMES], got, want):
        torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-4 * w.abs().max().item(), msg=name)


@pytest.mark.parametrize("size", [1, 3])
def test_a_tlu_tau_of_the_wrong_size_is_refused_in_forward(size, fresh_choice):
    # one tau would broadcast over the channels; refused where it is given, not at backward in autograd's words
    from frn_det.layers.dispatch import tlu_function

    with pytest.raises(ValueError, match="tau has .* expected one per channel"):
        tlu_function(torch.randn(2, 4, 3, 5), torch.zeros(size))
