"""Every FRN path (frn_det.layers.frn_impl) against frn_reference: outputs and all gradients."""
import io
import os

import pytest
import torch

from frn_det.layers import FRN, TLU, frn_impl, frn_reference

CPU_PATHS = ["python"] + (["cpp"] if frn_impl.cpp_available() else [])
GPU = torch.cuda.is_available()
# Tolerances relative to each quantity's scale (see `assert_agree`).
TOL = {torch.float64: 1e-10, torch.float32: 2e-5, torch.bfloat16: 1e-2, torch.float16: 2e-3}
PARAM_TOL = {torch.float64: 1e-10, torch.float32: 2e-5, torch.bfloat16: 1e-4, torch.float16: 1e-4}


def make_case(shape, dtype, learnable_eps, tlu, scale=1.0, zeros=False, device="cpu"):
    c = shape[1]
    pdt = torch.float64 if dtype == torch.float64 else torch.float32
    x = torch.zeros(shape) if zeros else torch.randn(shape, dtype=torch.float64) * scale
    params = {
        "weight": torch.empty(c, dtype=pdt).uniform_(0.5, 1.5),
        "bias": torch.empty(c, dtype=pdt).uniform_(-0.3, 0.3),
        "tau": torch.empty(c, dtype=pdt).uniform_(-0.2, 0.2) if tlu else None,
        "eps_l": torch.tensor(-3e-2, dtype=pdt) if learnable_eps else None,
    }
    dz = torch.randn(shape, dtype=torch.float64)
    to = lambda t: None if t is None else t.to(device)  # noqa: E731
    return to(x.to(dtype)), {k: to(v) for k, v in params.items()}, to(dz.to(dtype))


def run(fn, x, params, dz):
    """Output and gradients of x and of every parameter given, as a dict."""
    leaves = {"x": x.clone().requires_grad_()}
    leaves.update({k: v.clone().requires_grad_() for k, v in params.items() if v is not None})
    p = {k: leaves.get(k) for k in params}
    z = fn(leaves["x"], p["weight"], p["bias"], p["tau"], 1e-6, p["eps_l"])
    grads = torch.autograd.grad(z, list(leaves.values()), dz)
    return z, dict(zip(leaves, grads))


def assert_agree(x, params, dz, got, want):
    """Outputs to TOL of their size; dx to TOL of |gamma| r |dz| (the terms of eq. 7 that cancel);
    parameter gradients to PARAM_TOL of their size: their sums run in fp32 at least."""
    cpu = lambda t: None if t is None else t.cpu()  # noqa: E731
    x, dz, params = cpu(x), cpu(dz), {k: cpu(v) for k, v in params.items()}
    (z, g), (z_ref, g_ref) = [(cpu(r[0]), {k: cpu(v) for k, v in r[1].items()}) for r in (got, want)]
    assert z.dtype == z_ref.dtype and z.shape == z_ref.shape
    assert set(g) == set(g_ref)
    xf = x.double()
    dims = tuple(range(2, x.dim()))
    nu2 = xf.pow(2).mean(dims) if dims else xf.pow(2)
    r_max = torch.rsqrt(nu2 + 1e-6).max()
    dx_scale = params["weight"].abs().max().double() * r_max * dz.double().abs().max()
    tol, ptol = TOL[x.dtype], PARAM_TOL[x.dtype]

    def check(name, a, b, rel, scale=None):
        assert torch.isfinite(a).all(), name
        err = (a.double() - b.double()).abs().max()
        scale = b.double().abs().max() if scale is None else scale
        assert err <= rel * scale + 1e-30, f"{name}: max error {err:.3g}, scale {scale:.3g}"

    check("z", z, z_ref, tol)
    check("dx", g["x"], g_ref["x"], tol, dx_scale)
    for name in set(g) - {"x"}:
        assert g[name].dtype == g_ref[name].dtype, name
        check(name, g[name], g_ref[name], ptol)


CASES = [  # shape, input scale
    ((2, 3, 5, 7), 1.0),
    ((2, 4, 9, 11), 1.0),  # 99 elements: full vector blocks and a tail
    ((2, 4, 16, 16), 1.0),
    ((3, 4, 1, 1), 1.0),
    ((4, 6), 1.0),
    ((2, 3, 3, 5), 1e4),
    ((2, 3, 3, 5), 1e-4),
    ((5, 8), 1e4),
]


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape,scale", CASES)
@pytest.mark.parametrize("learnable_eps,tlu", [(False, True), (True, True), (False, False), (True, False)])
def test_agrees_with_reference(path, dtype, shape, scale, learnable_eps, tlu):
    x, params, dz = make_case(shape, dtype, learnable_eps, tlu, scale)
    got = run(frn_impl.PATHS[path], x, params, dz)
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(2, 4, 3, 5), (3, 5)])
def test_all_zero_input_at_init(path, dtype, shape):
    # x = 0 gives y = beta = tau = 0 at init: exact ties everywhere, split like torch.max's gradient
    x, params, dz = make_case(shape, dtype, learnable_eps=True, tlu=True, zeros=True)
    params = {k: torch.zeros_like(v) if k in ("bias", "tau") else v for k, v in params.items()}
    got = run(frn_impl.PATHS[path], x, params, dz)
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [torch.float16])
@pytest.mark.parametrize("shape", [(2, 3, 9, 11), (4, 6)])
def test_fp16(path, dtype, shape):
    x, params, dz = make_case(shape, dtype, learnable_eps=True, tlu=True, scale=300.0)  # x^2 > fp16 max
    got = run(frn_impl.PATHS[path], x, params, dz)
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("layout", ["permuted", "channels_last", "sliced"])
def test_non_contiguous_input(path, layout):
    base = torch.randn(2, 5, 6, 4)
    x = {
        "permuted": base.permute(0, 3, 1, 2),
        "channels_last": base.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last),
        "sliced": torch.randn(2, 4, 12, 5)[:, :, ::2],
    }[layout]
    _, params, _ = make_case(x.shape, torch.float32, learnable_eps=True, tlu=True)
    dz = torch.randn(x.shape).transpose(2, 3).contiguous().transpose(2, 3)  # non-contiguous too
    got = run(frn_impl.PATHS[path], x, params, dz)
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4)])
def test_gradcheck(path, shape):
    x, params, _ = make_case(shape, torch.float64, learnable_eps=True, tlu=True)
    names = list(params)

    def f(x, *ps):
        return frn_impl.PATHS[path](x, ps[0], ps[1], ps[2], 1e-6, ps[3])

    inputs = [x.requires_grad_()] + [params[k].requires_grad_() for k in names]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("shape,tlu,learnable_eps", [((2, 8, 6, 10), True, True), ((4, 16), False, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_saves_only_the_input(path, shape, tlu, learnable_eps, dtype):
    x, params, _ = make_case(shape, dtype, learnable_eps, tlu)
    layer_params = [p.requires_grad_() for p in params.values() if p is not None]
    skip = {p.untyped_storage().data_ptr() for p in layer_params}
    saved = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in skip:
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    x.requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        z = frn_impl.PATHS[path](x, params["weight"], params["bias"], params["tau"], 1e-6, params["eps_l"])
    n, c = shape[:2]
    assert sum(saved.values()) <= x.numel() * x.element_size() + n * c * 8
    z.sum().backward()  # the hooks' tensors still give gradients
    assert torch.isfinite(x.grad).all()


def test_default_path_and_override(monkeypatch):
    monkeypatch.delenv("FRN_DET_IMPL", raising=False)
    assert frn_impl.active_impl() == ("cpp" if frn_impl.cpp_available() else "python")
    assert frn_impl.active_impl(dtype=torch.bfloat16) == frn_impl.active_impl()
    for name in ("reference", "python"):
        monkeypatch.setenv("FRN_DET_IMPL", name)
        assert frn_impl.active_impl() == name
    monkeypatch.setenv("FRN_DET_IMPL", "nonsense")
    with pytest.raises(ValueError, match="FRN_DET_IMPL"):
        frn_impl.active_impl()


def test_without_the_extension_python_is_the_default(monkeypatch):
    monkeypatch.delenv("FRN_DET_IMPL", raising=False)
    monkeypatch.setattr(frn_impl, "cpp_available", lambda: False)
    assert frn_impl.active_impl() == "python"
    monkeypatch.setenv("FRN_DET_IMPL", "cpp")
    with pytest.raises(RuntimeError, match="C\\+\\+ kernel"):
        frn_impl.active_impl()


@pytest.mark.skipif(not frn_impl.cpp_available(), reason="C++ extension not built")
def test_module_uses_cpp_and_inference_mode(monkeypatch):
    monkeypatch.delenv("FRN_DET_IMPL", raising=False)
    layer = FRN(6, learnable_eps=True)
    x = torch.randn(2, 6, 5, 5)
    want = frn_reference(x, layer.weight, layer.bias, layer.tau, layer.eps, layer.eps_l)
    with torch.inference_mode():  # the op's plain CPU kernel, no autograd
        torch.testing.assert_close(layer(x), want)
    out = layer(x.requires_grad_())
    assert out.grad_fn.name().endswith("::FRNFunction>")  # the C++ node, not FRNFunctionBackward
    torch.testing.assert_close(out, want)


@pytest.mark.skipif(not os.environ.get("FRN_DET_TEST_COMPILE"), reason="slow; FRN_DET_TEST_COMPILE=1 runs it")
@pytest.mark.parametrize("shape", [(2, 4, 9, 11), (4, 6)])
def test_compile_path_on_cpu(shape):
    # the GPU path's torch.compile, checked where no GPU is: inductor compiles the same graphs for the CPU
    x, params, dz = make_case(shape, torch.float32, learnable_eps=True, tlu=True)
    got = run(frn_impl.PATHS["compile"], x, params, dz)
    kernels = frn_impl._compiled_kernels()
    assert kernels.forward.compiled is not None and kernels.backward.compiled is not None  # no fallback
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


@pytest.mark.skipif(not GPU, reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(2, 4, 9, 11), (4, 6)])
def test_gpu_path_agrees_with_reference(dtype, shape):
    assert frn_impl.active_impl("cuda") in ("compile", "python")
    for path in ("compile", "python"):
        x, params, dz = make_case(shape, dtype, learnable_eps=True, tlu=True, device="cuda")
        got = run(frn_impl.PATHS[path], x, params, dz)
        assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


def test_tracing_uses_plain_aten_ops(monkeypatch):
    monkeypatch.delenv("FRN_DET_IMPL", raising=False)

    layer = FRN(4).eval()
    traced = torch.jit.trace(layer, torch.randn(1, 4, 5, 5))
    assert "frn_det::" not in str(traced.graph)  # no custom op in the graph
    x = torch.randn(2, 4, 6, 3)
    torch.testing.assert_close(traced(x), frn_reference(x, layer.weight, layer.bias, layer.tau))

    tlu = TLU(4)
    with torch.no_grad():
        tlu.tau.copy_(torch.tensor([-0.5, 0.0, 0.3, 1.0]))
    buffer = io.BytesIO()  # an autograd.Function in the graph can't be saved
    torch.jit.save(torch.jit.trace(tlu, torch.randn(1, 4, 5, 5)), buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.jit.load(buffer)(x), torch.max(x, tlu.tau.view(1, 4, 1, 1)))
