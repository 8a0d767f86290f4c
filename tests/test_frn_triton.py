"""The triton FRN path against frn_reference, output and every gradient, with no GPU: Triton's
interpreter runs the kernels on CPU tensors. TRITON_INTERPRET must be set before triton is imported,
so `test_kernels_in_the_interpreter` runs this file's other tests in a pytest of their own, with
TRITON_INTERPRET=1 FRN_DET_IMPL=triton (the same command runs them by hand). Shapes stay small: the
interpreter runs the programs one after another."""
import os
import re
import subprocess
import sys

import pytest
import torch

from frn_det.layers import (FRN, TLU, dispatch, frn_add_tlu_function, frn_add_tlu_reference, frn_function,
                            frn_reference, path_torch, path_triton)
from frn_det.layers.testing import (BLOCK_END_ARGS, NON_CONTIGUOUS_LAYOUTS, assert_agree, assert_nans_agree,
                                    assert_tlu_agrees, block_end_case, block_end_outputs_and_grads, float64_block_end,
                                    float64_frn, make_case, non_contiguous_case, outputs_and_grads,
                                    outputs_and_grads_in_float64, penalty_grads, saved_bytes, tie_case, tlu_tie_case)

INTERPRETER = os.environ.get("TRITON_INTERPRET") == "1"
in_interpreter = pytest.mark.skipif(not INTERPRETER, reason="runs in test_kernels_in_the_interpreter's pytest")
VARIANTS = [(False, True), (True, True), (False, False), (True, False)]  # (learnable_eps, tlu)
NAMES = ("weight", "bias", "tau", "eps_l")
DTYPES = [torch.float32, torch.bfloat16, torch.float16]
CASES = [  # shape, input scale
    ((2, 3, 5, 7), 1.0),  # odd sizes
    ((2, 4, 9, 11), 1.0),
    ((2, 3, 2, 2), 1.0),
    ((3, 4, 1, 1), 1.0),
    ((4, 6), 1.0),  # (N, C): a 1x1 map
    ((2, 3, 3, 5), 1e4),  # x^2 past fp16's range: statistics in fp32
    ((2, 3, 3, 5), 1e-4),  # eps matters
    ((2, 40, 3, 3), 1.0),  # more channels than one program of the per-channel sums takes
]
# Plans that cover every kernel branch at small shapes: rows looped over in blocks, and rows split
# across programs; then the default plan at a row longer than a block and at a long row it splits.
PLANS = [((2, 4, 9, 11), dict(block=16)), ((2, 4, 9, 11), dict(block=16, chunk=32)),
         ((1, 3, 10, 13), dict(block=16, chunk=48)), ((1, 2, 70, 70), {}), ((1, 1, 260, 260), {})]


def test_kernels_in_the_interpreter():
    if INTERPRETER:
        pytest.skip("already in the interpreter")
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", FRN_DET_IMPL="triton", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 100, out[-2000:]  # the cases ran, not skipped


DATA = {"x_ptr", "z_ptr", "dx_ptr", "dz_ptr", "y_ptr", "dy_ptr", "s_ptr", "ds_ptr"}  # tensors in the input's dtype
BYTES = {"ties_ptr"}  # uint8; the rest are fp32


def gpu_compile(kernel, dtype, constexprs, num_warps=4):
    """Compiles `kernel` to an H100/H200 (sm_90) binary here, without a GPU: what the interpreter can't
    check (types across branches, constexpr use, code generation) fails here as it would on the device."""
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    acc = "fp64" if dtype == "fp64" else "fp32"  # statistics, partial sums and parameters
    signature = {}
    for p in kernel.params:
        if p.is_constexpr:
            signature[p.name] = "constexpr"
        elif p.name.endswith("_ptr"):
            signature[p.name] = "*" + (dtype if p.name in DATA else "u8" if p.name in BYTES else acc)
        else:
            signature[p.name] = "fp32" if p.name in ("eps", "eps_lo") else "i32"
    names = {p.name for p in kernel.params}
    constexprs = {"ACC": tl.float64 if acc == "fp64" else tl.float32, "ADD": False, **constexprs}
    constexprs = {k: v for k, v in constexprs.items() if k in names}
    return triton.compile(ASTSource(kernel, signature, constexprs), target=GPUTarget("cuda", 90, 32),
                          options={"num_warps": num_warps})


ROW_BRANCHES = ((False, True), (False, False), (True, False))  # (SPLIT, ONE_BLOCK)
GPU_VARIANTS = [  # (kernel name, constexprs, warps): every branch of the kernels, at the plan's warps
    *[("frn_forward_kernel", dict(HAS_TAU=t, HAS_EPS_L=e, SPLIT=s, SPLITS_P2=4 if s else 1, BLOCK=1024, ONE_BLOCK=o), 4)
      for t in (False, True) for e in (False, True) for s, o in ROW_BRANCHES],
    *[("frn_backward_kernel", dict(HAS_TAU=t, SPLIT=s, SPLITS_P2=4 if s else 1, BLOCK=1024, ONE_BLOCK=o), 4)
      for t in (False, True) for s, o in ROW_BRANCHES],
    *[(name, dict(HAS_TAU=True, SPLIT=s, SPLITS_P2=8 if s else 1, BLOCK=block, ONE_BLOCK=o, HAS_EPS_L=True), warps)
      for name in ("frn_forward_kernel", "frn_backward_kernel") for s, o in ROW_BRANCHES
      for block, warps in ((16, 1), (4096, 8))],
    *[("frn_grad_sums_kernel", dict(HAS_TAU=t, BLOCK=block), warps) for t in (False, True)
      for block, warps in ((1024, 4), (4096, 8))],
    # a residual block's end (ADD), every row branch
    *[(name, dict(HAS_TAU=True, HAS_EPS_L=e, SPLIT=s, SPLITS_P2=4 if s else 1, BLOCK=block, ONE_BLOCK=o, ADD=True),
       warps) for name in ("frn_forward_kernel", "frn_backward_kernel") for e in (False, True)
      for s, o in ROW_BRANCHES for block, warps in ((16, 1), (1024, 4))],
    *[("frn_grad_sums_kernel", dict(HAS_TAU=True, BLOCK=1024, ADD=True), 4)],
    *[("frn_sum_squares_kernel", dict(BLOCK=block), warps) for block, warps in ((1024, 4), (4096, 8))],
    *[("frn_param_grads_kernel", dict(HAS_TAU=t, HAS_EPS_L=e, BLOCK_C=32), 4)
      for t in (False, True) for e in (False, True)],
    *[(name, dict(BLOCK=block), warps) for name in ("tlu_forward_kernel", "tlu_backward_kernel")
      for block, warps in ((16, 1), (1024, 4))],
    ("channel_sums_kernel", dict(BLOCK_C=32), 4),
]


@pytest.mark.skipif(INTERPRETER, reason="compiles for the GPU, outside the interpreter")
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16", "fp64"])
def test_kernels_compile_for_the_gpu(dtype):
    pytest.importorskip("triton")
    from frn_det.layers import triton_kernels

    for name, constexprs, warps in GPU_VARIANTS:
        compiled = gpu_compile(getattr(triton_kernels, name), dtype, constexprs, warps)
        assert compiled.asm["cubin"], (name, constexprs, warps)


def triton_plan(**plan):
    return lambda x, w, b, tau, eps, eps_l: path_triton.frn_triton(x, w, b, tau, eps, eps_l, **plan)


@in_interpreter
def test_frn_runs_the_triton_kernels():
    assert dispatch.active_impl() == "triton" and dispatch.active_impl(dtype=torch.bfloat16) == "triton"
    layer = FRN(4, learnable_eps=True)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    z = layer(x)
    assert type(z.grad_fn).__name__ == "TritonFRNFunctionBackward"
    torch.testing.assert_close(z, frn_reference(x, layer.weight, layer.bias, layer.tau, layer.eps, layer.eps_l))


@in_interpreter
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,scale", CASES)
@pytest.mark.parametrize("learnable_eps,tlu", VARIANTS)
def test_agrees_with_reference(dtype, shape, scale, learnable_eps, tlu):
    x, params, dz = make_case(shape, dtype, learnable_eps, tlu, scale)
    got = outputs_and_grads(frn_function, x, params, dz)
    assert_agree(x, params, dz, got, outputs_and_grads(frn_reference, x, params, dz))


@in_interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape,plan", PLANS)
@pytest.mark.parametrize("learnable_eps,tlu", [(True, True), (False, False)])
def test_long_rows_and_split_rows(dtype, shape, plan, learnable_eps, tlu):
    x, params, dz = make_case(shape, dtype, learnable_eps, tlu)
    got = outputs_and_grads(triton_plan(**plan), x, params, dz)
    assert_agree(x, params, dz, got, outputs_and_grads(frn_reference, x, params, dz))


DETECTION_SHAPES = [  # (N, C, H, W) FRN sees in RetinaNet and R-CNN at 1024 px and 800x1216
    (2, 64, 512, 512), (1, 64, 400, 608), (2, 64, 256, 256), (2, 256, 256, 256), (1, 256, 200, 304),
    (2, 256, 128, 128), (2, 512, 128, 128), (2, 256, 16, 16), (2, 256, 8, 8), (512, 256, 14, 14)]


@pytest.mark.parametrize("sms", [132, 78])  # H100 SXM, and a smaller GPU
@pytest.mark.parametrize("shape", DETECTION_SHAPES)
def test_plans_fill_the_gpu(shape, sms):
    pytest.importorskip("triton")
    rows, length = shape[0] * shape[1], shape[2] * shape[3]
    p = path_triton.plan(rows, length, sms=sms)
    assert p.splits * p.chunk >= length > (p.splits - 1) * p.chunk and (p.splits == 1 or p.chunk % p.block == 0)
    assert p.num_warps == min(8, max(1, p.block // 256))
    programs = rows * p.splits
    if length >= 2 * path_triton.MIN_CHUNK:  # rows long enough to split: at least 2 programs per SM
        assert programs >= path_triton.SPLIT_BELOW * sms, p
    if p.splits > 1:  # split only as far as the GPU needs, in chunks worth a program
        assert rows < path_triton.SPLIT_BELOW * sms and p.chunk >= path_triton.MIN_CHUNK
        assert programs < 2 * path_triton.SPLIT_TARGET * sms, p


def test_plans():
    pytest.importorskip("triton")
    assert path_triton.plan(512, 128 * 128).splits == 1  # P3 at 1024: one program a row
    assert path_triton.plan(128, 512 * 512).splits == 5  # the stem at 1024 on 132 SMs: 640 programs
    assert path_triton.plan(4, 99, block=16, chunk=40) == path_triton.Plan(16, 3, 48, 1)


@in_interpreter
@pytest.mark.parametrize("plan", [{}, dict(block=16, chunk=32)])
def test_backward_is_deterministic(plan):
    x, params, dz = make_case((3, 4, 9, 11), torch.float32, True, True)
    first = outputs_and_grads(triton_plan(**plan), x, params, dz)[1]
    second = outputs_and_grads(triton_plan(**plan), x, params, dz)[1]
    assert all(torch.equal(first[k], second[k]) for k in first)


@in_interpreter
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 4, 3, 5), (3, 5)])
def test_all_zero_input_at_init(dtype, shape):
    # x = 0 gives y = beta = tau = 0 at init: exact ties everywhere, split like torch.max's gradient
    x, params, dz = make_case(shape, dtype, learnable_eps=True, tlu=True, zeros=True)
    params = {k: torch.zeros_like(v) if k in ("bias", "tau") else v for k, v in params.items()}
    got = outputs_and_grads(frn_function, x, params, dz)
    assert_agree(x, params, dz, got, outputs_and_grads(frn_reference, x, params, dz))


@in_interpreter
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,plan", [((2, 4, 5, 7), {}), ((2, 4, 9, 11), dict(block=16)),
                                        ((1, 3, 10, 13), dict(block=16, chunk=48)), ((6, 5), {})])
@pytest.mark.parametrize("learnable_eps", [False, True])
def test_ties_agree_with_reference(dtype, shape, plan, learnable_eps):
    # y == tau at every third element and in all of channel 0: split in half, as the reference does
    x, params, dz = tie_case(shape, dtype, learnable_eps)
    got = outputs_and_grads(triton_plan(**plan), x, params, dz)
    assert_agree(x, params, dz, got, outputs_and_grads(frn_reference, x, params, dz))


@in_interpreter
@pytest.mark.parametrize("layout", NON_CONTIGUOUS_LAYOUTS)
def test_non_contiguous_input(layout):
    x, params, dz = non_contiguous_case(layout)
    got = outputs_and_grads(frn_function, x, params, dz)
    assert_agree(x, params, dz, got, outputs_and_grads(frn_reference, x, params, dz))


@in_interpreter
@pytest.mark.parametrize("shape,plan", [((2, 3, 4, 5), {}), ((1, 2, 7, 5), dict(block=16, chunk=16)), ((3, 4), {})])
def test_gradcheck(shape, plan):
    x, params, _ = make_case(shape, torch.float64, learnable_eps=True, tlu=True)
    names = list(params)

    def f(x, *ps):
        return path_triton.frn_triton(x, ps[0], ps[1], ps[2], 1e-6, ps[3], **plan)

    inputs = [x.requires_grad_()] + [params[k].requires_grad_() for k in names]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, fast_mode=True)  # few interpreted calls


@in_interpreter
@pytest.mark.parametrize("shape,tlu,learnable_eps", [((2, 8, 6, 10), True, True), ((4, 16), False, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_saves_only_the_input(shape, tlu, learnable_eps, dtype):
    x, params, _ = make_case(shape, dtype, learnable_eps, tlu)
    layer_params = [p.requires_grad_() for p in params.values() if p is not None]
    x.requires_grad_()

    def layer(x):
        return frn_function(x, params["weight"], params["bias"], params["tau"], 1e-6, params["eps_l"])

    saved = saved_bytes(layer, x, layer_params)
    n, c = shape[:2]
    assert saved <= x.numel() * x.element_size() + n * c * 4  # x and one fp32 per row
    layer(x).sum().backward()
    assert torch.isfinite(x.grad).all()


@in_interpreter
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,block", [((2, 3, 5, 7), None), ((2, 4, 9, 11), 16), ((3, 4, 1, 1), None),
                                         ((4, 6), None)])
def test_tlu_agrees_with_the_torch_op_tlu(dtype, shape, block):
    y = torch.randn(shape, dtype=torch.float64).to(dtype)
    y.view(-1)[::3] = 0.25  # exact ties with one channel's tau: the gradient splits in half
    tau = torch.tensor([-0.3, 0.25, 0.0, 0.1, -0.1, 0.2])[: shape[1]]
    dz = torch.randn(shape).to(dtype)
    got, want = [], []
    for fn, out in ((lambda y, t: path_triton.tlu_triton(y, t, block), got), (path_torch.TLUFunction.apply, want)):
        leaves = [y.clone().requires_grad_(), tau.clone().requires_grad_()]
        z = fn(*leaves)
        out += [z, *torch.autograd.grad(z, leaves, dz)]
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])  # z and dy: the same ops
    torch.testing.assert_close(got[2], want[2], rtol=1e-5, atol=1e-5)  # dtau: sums in another order


@in_interpreter
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,block", [((2, 3, 5, 7), None), ((2, 4, 9, 11), 16), ((3, 4, 1, 1), None),
                                         ((6, 5), None), ((2, 40, 3, 3), None)])
def test_tlu_ties_agree_with_reference(dtype, shape, block):
    assert_tlu_agrees(lambda y, t: path_triton.tlu_triton(y, t, block), *tlu_tie_case(shape, dtype))


@in_interpreter
def test_tlu_module_runs_the_triton_kernels():
    layer = TLU(3)
    z = layer(torch.randn(2, 3, 4, 4, requires_grad=True))
    assert type(z.grad_fn).__name__ == "TritonTLUFunctionBackward"


@in_interpreter
@pytest.mark.parametrize("plan", [{}, dict(block=16, chunk=32)])
def test_nan_propagates_as_in_the_reference(plan):
    assert_nans_agree(triton_plan(**plan), path_triton.tlu_triton, shape=(2, 3, 9, 11))


def triton_block_end(**plan):
    return lambda x, s, w, b, tau, eps, eps_l: path_triton.frn_add_tlu_triton(x, s, w, b, tau, eps, eps_l, **plan)


BLOCK_END_PLANS = [((2, 3, 5, 7), {}), ((2, 4, 9, 11), dict(block=16)), ((2, 4, 9, 11), dict(block=16, chunk=32)),
                   ((1, 3, 10, 13), dict(block=16, chunk=48)), ((3, 4, 1, 1), {})]


@in_interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,plan", BLOCK_END_PLANS)
@pytest.mark.parametrize("learnable_eps,ties", [(False, False), (True, False), (True, True)])
def test_block_end_agrees_with_reference(dtype, shape, plan, learnable_eps, ties):
    x, params, dz = block_end_case(shape, dtype, learnable_eps, ties)
    got = block_end_outputs_and_grads(triton_block_end(**plan), x, params, dz)
    assert_agree(x, params, dz, got, block_end_outputs_and_grads(frn_add_tlu_reference, x, params, dz))


@in_interpreter
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape,plan", [((2, 4, 9, 11), {}), ((1, 3, 10, 13), dict(block=16, chunk=48))])
def test_block_end_half_precision(dtype, shape, plan):
    x, params, dz = block_end_case(shape, dtype, learnable_eps=True, far_tau=True)
    got = block_end_outputs_and_grads(triton_block_end(**plan), x, params, dz)
    assert_agree(x, params, dz, got, block_end_outputs_and_grads(frn_add_tlu_reference, x, params, dz, True))


@in_interpreter
def test_block_end_runs_the_fused_kernels_and_keeps_x_z_and_a_bit_per_element():
    x, params, dz = block_end_case((2, 8, 6, 10), torch.float32, learnable_eps=True)
    leaves = {k: v.requires_grad_() for k, v in params.items()}
    args = [leaves[k] for k in ("shortcut", "weight", "bias", "tau")]
    z = frn_add_tlu_function(x.requires_grad_(), *args, 1e-6, leaves["eps_l"])
    assert type(z.grad_fn).__name__ == "TritonFRNAddTLUFunctionBackward"
    saved = saved_bytes(lambda x: frn_add_tlu_function(x, *args, 1e-6, leaves["eps_l"]), x, list(leaves.values()))
    # x, z (which the next layer keeps anyway), rstd per row, the tie bits (a block of 64 a row)
    assert saved == 2 * x.numel() * 4 + 16 * 4 + 16 * 64 // 8


@in_interpreter
@pytest.mark.parametrize("plan", [{}, dict(block=16, chunk=32)])
def test_block_end_nan_propagates_as_in_the_reference(plan):
    x, params, dz = block_end_case((2, 3, 9, 11), torch.float32, learnable_eps=False)
    x[0, 1].view(-1)[3] = float("nan")  # spoils plane (0, 1)
    params["shortcut"][1, 2].view(-1)[5] = float("nan")  # one element
    (z, g), (z_ref, g_ref) = [block_end_outputs_and_grads(fn, x, params, dz)
                              for fn in (triton_block_end(**plan), frn_add_tlu_reference)]
    assert torch.equal(z.isnan(), z_ref.isnan()) and z_ref.isnan().sum() == 100
    for name in g:
        assert torch.equal(g[name].isnan(), g_ref[name].isnan()), name


EMPTY = [(0, 4, 5, 5), (2, 4, 0, 5), (0, 4)]


@in_interpreter
@pytest.mark.parametrize("shape", EMPTY)
def test_empty_input_gives_zero_gradients(shape):
    # N = 0 (R-CNN heads on zero ROIs) or H = 0: every input and parameter gets a zero gradient
    x, dz = torch.randn(shape), torch.randn(shape)
    _, params, _ = make_case((1, 4), torch.float32, learnable_eps=True, tlu=True)
    calls = [(path_triton.frn_triton, params, ("weight", "bias", "tau"))]
    if len(shape) == 4:
        calls += [(path_triton.frn_add_tlu_triton, dict(params, shortcut=torch.randn(shape)), BLOCK_END_ARGS),
                  (lambda y, tau, eps, eps_l: path_triton.tlu_triton(y, tau), {"tau": params["tau"], "eps_l": None},
                   ("tau",))]
    for fn, used, args in calls:
        z, g = outputs_and_grads(fn, x, used, dz, args)
        want = dict({k: v for k, v in used.items() if v is not None}, x=x)
        assert z.shape == x.shape and set(g) == set(want)
        assert all(not g[k].any() and g[k].shape == v.shape for k, v in want.items()), fn


@in_interpreter
def test_parameters_in_any_layout():
    # a strided weight and an expanded tau are read per channel, as any path reads them
    x, params, dz = make_case((2, 4, 3, 5), torch.float32, learnable_eps=True, tlu=True)
    bases = dict(params, weight=torch.rand(8) + 0.5, tau=torch.rand(1) - 0.5)
    views = {"weight": lambda w: w[::2], "tau": lambda t: t.expand(4), "bias": lambda b: b, "eps_l": lambda e: e}
    shortcut = torch.randn(x.shape)
    for fn, ref in ((path_triton.frn_triton, float64_frn), (path_triton.frn_add_tlu_triton, float64_block_end)):
        results = []
        for f, dtype in ((fn, torch.float32), (ref, torch.float64)):
            leaves = [x.to(dtype).requires_grad_()] + [bases[k].to(dtype).requires_grad_() for k in NAMES]
            p = {k: views[k](v) for k, v in zip(NAMES, leaves[1:])}
            args = (p["weight"], p["bias"], p["tau"], 1e-6, p["eps_l"])
            z = f(leaves[0], *args) if fn is path_triton.frn_triton else f(leaves[0], shortcut.to(dtype), *args)
            results.append([z, *torch.autograd.grad(z, leaves, dz.to(dtype))])
        for got, want in zip(*results):
            torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    y, tau = torch.randn(2, 4, 3, 5), torch.rand(1).expand(4)
    torch.testing.assert_close(path_triton.tlu_triton(y, tau), torch.max(y, tau.view(1, 4, 1, 1)))


@in_interpreter
@pytest.mark.parametrize("name,size", [("weight", 1), ("bias", 3), ("tau", 5)])
def test_a_parameter_of_the_wrong_size_is_refused(name, size):
    x, params, _ = make_case((2, 4, 3, 5), torch.float32, learnable_eps=False, tlu=True)
    params[name] = torch.ones(size)
    w, b, t = params["weight"], params["bias"], params["tau"]
    calls = [lambda: path_triton.frn_triton(x, w, b, t), lambda: path_triton.frn_add_tlu_triton(x, x, w, b, t)]
    if name == "tau":
        calls.append(lambda: path_triton.tlu_triton(x, t))
    for call in calls:
        with pytest.raises(ValueError, match="per channel"):
            call()


@in_interpreter
@pytest.mark.parametrize("learnable_eps", [False, True])
@pytest.mark.parametrize("shape,plan", [((2, 3, 4, 5), {}), ((1, 2, 7, 5), dict(block=16, chunk=16)), ((3, 4), {})])
def test_float64_keeps_eps_in_float64(learnable_eps, shape, plan):
    # x ~ 1e-4, where eps = 1e-6 (+ |eps_l| ~ 3e-7 here) matters; eps rounded to fp32 is 1e-9 of it off
    x, params, dz = make_case(shape, torch.float64, learnable_eps, tlu=True, scale=1e-4)
    if learnable_eps:
        params["eps_l"] = torch.tensor(-3e-7, dtype=torch.float64)
    got = outputs_and_grads(triton_plan(**plan), x, params, dz)
    assert_agree(x, params, dz, got, outputs_and_grads_in_float64(float64_frn, x, params, dz))


@in_interpreter
@pytest.mark.parametrize("scale", [1e15, 1e-15])
@pytest.mark.parametrize("shape,plan", [((2, 3, 4, 5), {}), ((1, 2, 7, 5), dict(block=16, chunk=16)), ((4, 6), {})])
def test_large_and_small_activations(scale, shape, plan):
    # FRN is scale invariant: fp32 holds it while x^2 does (below about 1e19)
    x, params, dz = make_case(shape, torch.float32, learnable_eps=True, tlu=True, scale=scale)
    got = outputs_and_grads(triton_plan(**plan), x, params, dz)
    assert_agree(x, params, dz, got, outputs_and_grads_in_float64(float64_frn, x, params, dz))
    if len(shape) == 4:
        x, params, dz = block_end_case(shape, torch.float32, learnable_eps=True)
        x = x * scale
        got = block_end_outputs_and_grads(triton_block_end(**plan), x, params, dz)
        assert_agree(x, params, dz, got, outputs_and_grads_in_float64(float64_block_end, x, params, dz, BLOCK_END_ARGS))


UPSTREAMS = {"sum": lambda z: z.sum(), "square": lambda z: z.square().sum()}


@in_interpreter
def test_second_derivatives():
    # a gradient penalty (create_graph) through FRN+TLU, the block end and TLU, against the formula
    x, params, _ = block_end_case((2, 3, 4, 5), torch.float64, learnable_eps=True)
    s = params["shortcut"]
    cases = [  # (the path's function, the formula's, inputs)
        (lambda x, w, b, t, e: path_triton.frn_triton(x, w, b, t, 1e-6, e),
         lambda x, w, b, t, e: float64_frn(x, w, b, t, 1e-6, e), [x] + [params[k] for k in NAMES]),
        (lambda x, s, w, b, t, e: path_triton.frn_add_tlu_triton(x, s, w, b, t, 1e-6, e),
         lambda x, s, w, b, t, e: float64_block_end(x, s, w, b, t, 1e-6, e), [x, s] + [params[k] for k in NAMES]),
        (path_triton.tlu_triton, lambda y, t: torch.max(y, t.view(1, -1, 1, 1)), [s, params["tau"]]),
    ]
    for fn, formula, inputs in cases:
        for name, upstream in UPSTREAMS.items():
            for got, want in zip(penalty_grads(fn, inputs, upstream), penalty_grads(formula, inputs, upstream)):
                torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12, msg=name)
        assert torch.autograd.gradgradcheck(fn, [t.clone().requires_grad_() for t in inputs], eps=1e-6, atol=1e-5,
                                            fast_mode=True)
