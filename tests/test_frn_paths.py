"""Every FRN path (frn_det.layers.dispatch.PATHS) against frn_reference: outputs and all gradients."""
import io
import logging
import os

import pytest
import torch

from frn_det.benchmark.launches import aten_ops
from frn_det.layers import FRN, TLU, dispatch, frn_reference, path_cpp, path_torch, tlu_reference
from frn_det.layers.formula import channel_shape
from frn_det.layers.testing import (NON_CONTIGUOUS_LAYOUTS, PARAM_TOL, assert_agree, assert_nans_agree,
                                    assert_tlu_agrees, gradient_term_sums, inv_rms_bound, make_case,
                                    non_contiguous_case, saved_bytes, tie_case, tlu_tie_case)
from frn_det.layers.testing import outputs_and_grads as run

CPU_PATHS = ["python"] + (["cpp"] if path_cpp.cpp_available() else [])
GPU = torch.cuda.is_available()
PATHS = dispatch.PATHS
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
    got = run(PATHS[path], x, params, dz)
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(2, 4, 3, 5), (3, 5)])
def test_all_zero_input_at_init(path, dtype, shape):
    # x = 0 gives y = beta = tau = 0 at init: exact ties everywhere, split like torch.max's gradient
    x, params, dz = make_case(shape, dtype, learnable_eps=True, tlu=True, zeros=True)
    params = {k: torch.zeros_like(v) if k in ("bias", "tau") else v for k, v in params.items()}
    got = run(PATHS[path], x, params, dz)
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


def test_reference_splits_ties_in_half():
    # what the reference's autograd gives at y == tau, written out: half of dz to y, half to tau
    x, params, dz = tie_case((2, 3, 4, 5), torch.float64)
    w, b, tau, eps_l = (params[k] for k in ("weight", "bias", "tau", "eps_l"))
    y = frn_reference(x, w, b, None, 1e-6, eps_l)
    t = tau.view(channel_shape(y))
    share = (y > t).double() + 0.5 * (y == t).double()
    assert (y == t).sum() > x.numel() / 3  # every third element, and all of channel 0
    _, g = run(frn_reference, x, params, dz)
    torch.testing.assert_close(g["tau"], (dz * (1 - share)).sum((0, 2, 3)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g["bias"], (dz * share).sum((0, 2, 3)), rtol=1e-12, atol=1e-12)
    yl, tl = y.detach().requires_grad_(), tau.clone().requires_grad_()
    dy, dtau = torch.autograd.grad(tlu_reference(yl, tl), [yl, tl], dz)
    assert torch.equal(dy, dz * share)
    torch.testing.assert_close(dtau, (dz * (1 - share)).sum((0, 2, 3)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(2, 4, 5, 7), (6, 5)])
@pytest.mark.parametrize("learnable_eps", [False, True])
def test_ties_agree_with_reference(path, dtype, shape, learnable_eps):
    x, params, dz = tie_case(shape, dtype, learnable_eps)
    got = run(PATHS[path], x, params, dz)
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


@pytest.mark.parametrize("path", CPU_PATHS + ["compile", "reference"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (6, 5)])
def test_tlu_ties_agree_with_reference(path, dtype, shape, fresh_choice):
    # TLU alone runs TLUFunction beside every CPU path; its float64 reference is tlu_reference
    y, tau, dz = tlu_tie_case(shape, dtype)
    with dispatch.force_impl(path):
        assert_tlu_agrees(dispatch.tlu_function, y, tau, dz)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("dtype", [torch.float16])
@pytest.mark.parametrize("shape", [(2, 3, 9, 11), (4, 6)])
def test_fp16(path, dtype, shape):
    x, params, dz = make_case(shape, dtype, learnable_eps=True, tlu=True, scale=300.0)  # x^2 > fp16 max
    got = run(PATHS[path], x, params, dz)
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("layout", NON_CONTIGUOUS_LAYOUTS)
def test_non_contiguous_input(path, layout):
    x, params, dz = non_contiguous_case(layout)
    got = run(PATHS[path], x, params, dz)
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4)])
def test_gradcheck(path, shape):
    x, params, _ = make_case(shape, torch.float64, learnable_eps=True, tlu=True)
    names = list(params)

    def f(x, *ps):
        return PATHS[path](x, ps[0], ps[1], ps[2], 1e-6, ps[3])

    inputs = [x.requires_grad_()] + [params[k].requires_grad_() for k in names]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("shape,tlu,learnable_eps", [((2, 8, 6, 10), True, True), ((4, 16), False, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_saves_only_the_input(path, shape, tlu, learnable_eps, dtype):
    x, params, _ = make_case(shape, dtype, learnable_eps, tlu)
    layer_params = [p.requires_grad_() for p in params.values() if p is not None]
    x.requires_grad_()

    def layer(x):
        return PATHS[path](x, params["weight"], params["bias"], params["tau"], 1e-6, params["eps_l"])

    saved = saved_bytes(layer, x, layer_params)
    n, c = shape[:2]
    assert saved <= x.numel() * x.element_size() + n * c * 8
    layer(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_default_path_and_override(monkeypatch, fresh_choice):
    assert dispatch.active_impl() == ("cpp" if path_cpp.cpp_available() else "python")
    assert dispatch.active_impl(dtype=torch.bfloat16) == dispatch.active_impl()
    for name in ("reference", "python"):
        monkeypatch.setenv("FRN_DET_IMPL", name)
        assert dispatch.active_impl() == ("cpp" if path_cpp.cpp_available() else "python")  # read once
        dispatch.reset()
        assert dispatch.active_impl() == name
        with dispatch.force_impl(None):
            assert dispatch.active_impl() == ("cpp" if path_cpp.cpp_available() else "python")
        assert dispatch.active_impl() == name
        monkeypatch.delenv("FRN_DET_IMPL")
        dispatch.reset()
        dispatch.active_impl()  # reads the environment, without FRN_DET_IMPL
    monkeypatch.setenv("FRN_DET_IMPL", "nonsense")
    dispatch.reset()
    with pytest.raises(ValueError, match="FRN_DET_IMPL"):
        dispatch.active_impl()
    with pytest.raises(ValueError, match="force_impl"):
        with dispatch.force_impl("nonsense"):
            pass


def test_the_module_runs_the_forced_path(monkeypatch, fresh_choice):
    calls = []
    monkeypatch.setitem(PATHS, "python", lambda *args: calls.append("python") or frn_reference(*args))
    layer, x = FRN(3), torch.randn(2, 3, 4, 4)
    with dispatch.force_impl("python"):
        layer(x)
    layer(x)
    assert calls == ["python"]


def test_a_parameter_gradient_is_judged_against_the_terms_it_sums():
    torch.manual_seed(686)  # the second case drawn: d eps cancels to 0.1 from terms whose |sum| is 115
    make_case((2, 4, 5, 7), torch.float32, learnable_eps=True, tlu=True)
    x, params, dz = make_case((2, 4, 5, 7), torch.float32, learnable_eps=True, tlu=False)
    got, want = run(PATHS["python"], x, params, dz), run(frn_reference, x, params, dz)
    sums = gradient_term_sums(x, params["weight"], dz, inv_rms_bound(x))
    assert want[1]["eps_l"].abs() < sums["eps_l"] / 1000
    assert_agree(x, params, dz, got, want)  # fp32's rounding of the terms is 4e-5 of the result here
    for name in ("weight", "bias", "eps_l"):  # 5x the tolerance on one gradient is caught
        wrong = dict(got[1], **{name: got[1][name] + 5 * PARAM_TOL[torch.float32] * sums[name]})
        with pytest.raises(AssertionError, match=name):
            assert_agree(x, params, dz, (got[0], wrong), want)


def test_without_the_extension_python_is_the_default(monkeypatch, fresh_choice):
    monkeypatch.setattr(path_cpp, "cpp_available", lambda: False)
    assert dispatch.active_impl() == "python"
    with pytest.raises(RuntimeError, match="C\\+\\+ kernel"):
        with dispatch.force_impl("cpp"):
            dispatch.active_impl()


@pytest.mark.skipif(not path_cpp.cpp_available(), reason="C++ extension not built")
def test_a_source_newer_than_the_build_leaves_the_kernel_out(monkeypatch, tmp_path, caplog):
    from frn_det.layers import _frn_cpu

    (tmp_path / "csrc").mkdir()
    ages = {"_frn_cpu.so": 2000, "csrc/frn_cpu.cpp": 1000, "csrc/frn_kernels.h": 3000, "csrc/notes.txt": 3000}
    for name, mtime in ages.items():
        (tmp_path / name).touch()
        os.utime(tmp_path / name, (mtime, mtime))
    monkeypatch.setattr(_frn_cpu, "__file__", str(tmp_path / "_frn_cpu.so"))
    monkeypatch.setattr(path_cpp, "__file__", str(tmp_path / "path_cpp.py"))  # its csrc/ is tmp_path's
    path_cpp.cpp_available.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="frn_det"):
            assert not path_cpp.cpp_available()  # the header alone is newer than the build
        assert "frn_kernels.h is newer than its build" in caplog.text
        os.utime(tmp_path / "csrc/frn_kernels.h", (1000, 1000))
        path_cpp.cpp_available.cache_clear()
        assert path_cpp.cpp_available()  # other files in csrc/ do not count
    finally:
        monkeypatch.undo()
        path_cpp.cpp_available.cache_clear()
    assert path_cpp.cpp_available()


def test_triton_unavailable_on_the_cpu_without_the_interpreter(fresh_choice):
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("the interpreter runs Triton on the CPU")
    assert dispatch.active_impl("cuda") == "python"  # the fastest in training on the GPU measured (benchmarks/gpu.md)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET|triton"):
        with dispatch.force_impl("triton"):
            dispatch.active_impl()


@pytest.mark.skipif(not path_cpp.cpp_available(), reason="C++ extension not built")
def test_module_uses_cpp_and_inference_mode(fresh_choice):
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
@pytest.mark.parametrize("ties", [False, True])
def test_compile_path_on_cpu(shape, ties):
    # the GPU path's torch.compile, checked where no GPU is: inductor compiles the same graphs for the CPU
    if ties:
        x, params, dz = tie_case(shape, torch.float32)
    else:
        x, params, dz = make_case(shape, torch.float32, learnable_eps=True, tlu=True)
    got = run(PATHS["compile"], x, params, dz)
    assert not path_torch.compile_fell_back()
    assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))


@pytest.mark.skipif(not GPU, reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(2, 4, 9, 11), (4, 6)])
def test_gpu_path_agrees_with_reference(dtype, shape):
    assert dispatch.active_impl("cuda") == "python"
    for path in ("triton", "compile", "python"):
        for x, params, dz in (make_case(shape, dtype, learnable_eps=True, tlu=True, device="cuda"),
                              tie_case(shape, dtype, device="cuda")):
            got = run(PATHS[path], x, params, dz)
            assert_agree(x, params, dz, got, run(frn_reference, x, params, dz))
        with dispatch.force_impl(path):
            assert_tlu_agrees(dispatch.tlu_function, *tlu_tie_case(shape, dtype, device="cuda"))


def test_tracing_uses_plain_aten_ops(fresh_choice):
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


def _fwd_bwd_step(fn, x, params, dz):
    leaves = [x] + [p for p in params.values() if p is not None]
    return lambda: torch.autograd.grad(fn(x, *(params[k] for k in ("weight", "bias", "tau")), 1e-6,
                                          params["eps_l"]), leaves, dz)


@pytest.mark.parametrize("tlu,most", [(True, 24), (False, 16)])
def test_eager_path_launches(tlu, most):
    # each non-view aten op is at least one CUDA launch; GPU time follows them at detection shapes
    x, params, dz = make_case((2, 8, 6, 5), torch.float32, learnable_eps=False, tlu=tlu)
    params = {k: None if v is None else v.requires_grad_() for k, v in params.items()}
    ops = aten_ops(_fwd_bwd_step(PATHS["python"], x.requires_grad_(), params, dz))
    assert sum(ops.values()) <= most, ops


def test_tlu_launches():
    y, tau, dz = tlu_tie_case((2, 8, 6, 5), torch.float32)
    y, tau = y.requires_grad_(), tau.requires_grad_()
    ops = aten_ops(lambda: torch.autograd.grad(path_torch.TLUFunction.apply(y, tau), [y, tau], dz))
    assert sum(ops.values()) < 15, ops


@pytest.mark.parametrize("path", CPU_PATHS + ["reference"])
def test_nan_propagates_as_in_the_reference(path, fresh_choice):
    with dispatch.force_impl(path):
        assert_nans_agree(PATHS[path], dispatch.tlu_function)
