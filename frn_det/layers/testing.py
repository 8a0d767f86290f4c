"""Checks of an FRN path against frn_reference, shared by the tests and the device check: a case
(input, parameters, upstream gradient), the output and every gradient of a path, and the comparison;
the same for TLU alone against tlu_reference, and cases for a residual block's end; the formula in
float64 (float64_frn) and a gradient penalty's gradients, for the edges."""
import torch

from .formula import channel_shape, frn_reference, mean_square, spatial_dims, tlu_reference

# Tolerances relative to each quantity's scale (see `assert_agree`).
TOL = {torch.float64: 1e-10, torch.float32: 2e-5, torch.bfloat16: 1e-2, torch.float16: 2e-3}
PARAM_TOL = {torch.float64: 1e-10, torch.float32: 2e-5, torch.bfloat16: 1e-4, torch.float16: 1e-4}


def make_case(shape, dtype, learnable_eps, tlu, scale=1.0, zeros=False, device="cpu"):
    """x (scaled N(0, 1) or zeros), parameters away from init (fp32; fp64 for fp64 x) and dz."""
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


def tie_case(shape, dtype, learnable_eps=True, device="cpu"):
    """make_case with exact ties y == tau: x = 0 at every third element makes y = beta there on every
    path (gamma x_hat + beta with x_hat = 0), and tau = beta; gamma = 0 in channel 0 ties all of it."""
    x, params, dz = make_case(shape, dtype, learnable_eps, tlu=True)
    x.view(-1)[::3] = 0
    params["tau"] = params["bias"].clone()
    params["weight"][0] = 0
    to = lambda t: None if t is None else t.to(device)  # noqa: E731
    return to(x), {k: to(v) for k, v in params.items()}, to(dz)


def tlu_tie_case(shape, dtype, device="cpu"):
    """y, tau (fp32; fp64 for fp64 y) and dz for TLU alone, with y == tau at every third element;
    values exact in every dtype."""
    pdt = torch.float64 if dtype == torch.float64 else torch.float32
    tau = torch.arange(shape[1], dtype=pdt) * 0.25 - 0.5
    y = torch.randn(shape, dtype=torch.float64)
    ties = (torch.arange(y.numel()) % 3 == 0).view(shape)
    y = torch.where(ties, tau.double().view(channel_shape(y)), y).to(dtype)
    dz = torch.randn(shape, dtype=torch.float64).to(dtype)
    return y.to(device), tau.to(device), dz.to(device)


def block_end_case(shape, dtype, learnable_eps, ties=False, far_tau=False, device="cpu"):
    """make_case's x, parameters and dz for max(FRN(x) + shortcut, tau), with the shortcut among the
    parameters. ties: x = 0 and shortcut = 0 at every third element and tau = beta, so that y == tau
    there on every path; far_tau: tau at -100 or 100 by channel, so that no rounding moves y across it."""
    x, params, dz = tie_case(shape, dtype, learnable_eps) if ties else make_case(shape, dtype, learnable_eps, tlu=True)
    shortcut = torch.randn(shape, dtype=torch.float64).to(dtype)
    if ties:
        shortcut.view(-1)[::3] = 0
    if far_tau:
        params["tau"] = torch.where(torch.arange(shape[1]) % 2 == 0, -100.0, 100.0).to(params["tau"].dtype)
    to = lambda t: None if t is None else t.to(device)  # noqa: E731
    return to(x), {k: to(v) for k, v in dict(params, shortcut=shortcut).items()}, to(dz)


BLOCK_END_ARGS = ("shortcut", "weight", "bias", "tau")  # outputs_and_grads' args for a block end's function


def block_end_outputs_and_grads(fn, x, params, dz, in_float64=False):
    """outputs_and_grads of a block end's fn(x, shortcut, weight, bias, tau, 1e-6, eps_l); in_float64:
    computed in float64, then cast to the case's dtypes (for half precision, where frn_add_tlu_reference
    rounds y twice and sums tau's gradient in half precision)."""
    if not in_float64:
        return outputs_and_grads(fn, x, params, dz, BLOCK_END_ARGS)
    return outputs_and_grads_in_float64(fn, x, params, dz, BLOCK_END_ARGS)


def outputs_and_grads_in_float64(fn, x, params, dz, args=("weight", "bias", "tau")):
    """outputs_and_grads computed in float64, then cast to the case's dtypes: a judge for cases where a
    reference in the case's own dtype rounds or underflows (half precision, |x| near fp32's limits)."""
    double = {k: None if v is None else v.double() for k, v in params.items()}
    z, g = outputs_and_grads(fn, x.double(), double, dz.double(), args)
    dtypes = dict({k: v.dtype for k, v in params.items() if v is not None}, x=x.dtype)
    return z.to(x.dtype), {k: v.to(dtypes[k]) for k, v in g.items()}


def outputs_and_grads(fn, x, params, dz, args=("weight", "bias", "tau")):
    """fn(x, *args, 1e-6, eps_l) (args: names in `params`), and the gradients of x and of every parameter
    given."""
    leaves = {"x": x.clone().requires_grad_()}
    leaves.update({k: v.clone().requires_grad_() for k, v in params.items() if v is not None})
    p = {k: leaves.get(k) for k in params}
    z = fn(leaves["x"], *(p[k] for k in args), 1e-6, p["eps_l"])
    grads = torch.autograd.grad(z, list(leaves.values()), dz)
    return z, dict(zip(leaves, grads))


def assert_agree(x, params, dz, got, want):
    """Outputs to TOL of their size; dx to TOL of |gamma| r |dz| (the terms of eq. 7 that cancel);
    parameter gradients to PARAM_TOL of their size or of the sum of |terms| they add up, whichever is
    larger: their sums run in fp32 at least, and terms of both signs can cancel to far below them."""
    cpu = lambda t: None if t is None else t.cpu()  # noqa: E731
    x, dz, params = cpu(x), cpu(dz), {k: cpu(v) for k, v in params.items()}
    (z, g), (z_ref, g_ref) = [(cpu(r[0]), {k: cpu(v) for k, v in r[1].items()}) for r in (got, want)]
    assert z.dtype == z_ref.dtype and z.shape == z_ref.shape
    assert set(g) == set(g_ref)
    r = inv_rms_bound(x)
    dx_scale = params["weight"].abs().max().double() * r.max() * dz.double().abs().max()
    tol, ptol = TOL[x.dtype], PARAM_TOL[x.dtype]
    sums = gradient_term_sums(x, params["weight"], dz, r)

    def check(name, a, b, rel, scale=None):
        assert torch.isfinite(a).all(), name
        err = (a.double() - b.double()).abs().max()
        scale = b.double().abs().max() if scale is None else scale
        assert err <= rel * scale + 1e-30, f"{name}: max error {err:.3g}, scale {scale:.3g}"

    check("z", z, z_ref, tol)
    check("dx", g["x"], g_ref["x"], tol, dx_scale)
    for name in set(g) - {"x"}:
        assert g[name].dtype == g_ref[name].dtype, name
        check(name, g[name], g_ref[name], ptol, max(g_ref[name].double().abs().max(), sums.get(name, 0.0)))


def inv_rms_bound(x):
    """1/sqrt(nu2 + 1e-6) per sample and channel, shaped to broadcast against x: no smaller than any
    path's r, whose eps is 1e-6 or more."""
    return torch.rsqrt(mean_square(x.double()) + 1e-6)


def gradient_term_sums(x, weight, dz, r):
    """The largest sum of |terms| that each parameter's gradient adds up, with |dy| <= |dz| (TLU passes
    dz, half of it or none): d gamma = sum dy x_hat, d beta = sum dy, d tau = sum of the rest of dz, and
    d eps = sum -gamma dy x r^3 / 2 (eq. 5-7)."""
    xf, dzf = x.double().abs(), dz.double().abs()
    per_channel = (0, *spatial_dims(x))
    gamma = weight.detach().double().abs().view(channel_shape(x))
    dz_sum = dzf.sum(per_channel).max()
    return {"weight": (dzf * xf * r).sum(per_channel).max(), "bias": dz_sum, "tau": dz_sum,
            "eps_l": (gamma * dzf * xf * r.pow(3)).sum() / 2}


def assert_tlu_agrees(fn, y, tau, dz):
    """fn(y, tau) against tlu_reference in float64: z and dy exactly (each is y, tau, dz, dz / 2 or 0),
    dtau to PARAM_TOL of its size (sums in fp32 at least)."""
    got, want = [], []
    for f, args, out in ((fn, (y, tau, dz), got), (tlu_reference, (y.double(), tau.double(), dz.double()), want)):
        leaves = [args[0].clone().requires_grad_(), args[1].clone().requires_grad_()]
        z = f(*leaves)
        out += [z, *torch.autograd.grad(z, leaves, args[2])]
    (z, dy, dtau), (z_ref, dy_ref, dtau_ref) = got, [t.cpu() for t in want]
    assert z.dtype == dy.dtype == y.dtype and dtau.dtype == tau.dtype
    assert torch.equal(z.cpu().double(), z_ref), "z"
    assert torch.equal(dy.cpu().double(), dy_ref), "dy"
    err, scale = (dtau.cpu().double() - dtau_ref).abs().max(), dtau_ref.abs().max()
    assert err <= PARAM_TOL[y.dtype] * scale, f"dtau: max error {err:.3g}, scale {scale:.3g}"


NON_CONTIGUOUS_LAYOUTS = ("permuted", "channels_last", "sliced")


def non_contiguous_case(layout):
    """x in a layout that is not contiguous NCHW, its parameters, and a non-contiguous dz."""
    base = torch.randn(2, 5, 6, 4)
    x = {
        "permuted": base.permute(0, 3, 1, 2),
        "channels_last": base.permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last),
        "sliced": torch.randn(2, 4, 12, 5)[:, :, ::2],
    }[layout]
    _, params, _ = make_case(x.shape, torch.float32, learnable_eps=True, tlu=True)
    dz = torch.randn(x.shape).transpose(2, 3).contiguous().transpose(2, 3)
    return x, params, dz


def saved_bytes(fn, x, params):
    """Bytes of the tensors autograd saves for backward in fn(x), each storage once, `params` not counted."""
    skip = {p.untyped_storage().data_ptr() for p in params}
    seen = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in skip:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)
    del out
    return sum(seen.values())


def assert_nans_agree(fn, tlu_fn, shape=(2, 3, 4, 5), dtype=torch.float32):
    """fn (an FRN path) and tlu_fn (a TLU) put NaN where the references do: an input NaN spoils its
    plane's r, so that plane's outputs and gradients; TLU keeps it in place, and its gradient passes
    dz to y there as torch.max's does (which passes it to tau as well: dtau is not compared)."""
    for tlu in (True, False):
        x, params, dz = make_case(shape, dtype, learnable_eps=False, tlu=tlu)
        x[0, 1].view(-1)[3] = float("nan")
        (z, g), (z_ref, g_ref) = outputs_and_grads(fn, x, params, dz), outputs_and_grads(frn_reference, x, params, dz)
        assert torch.equal(z.isnan(), z_ref.isnan()) and z_ref[0, 1].isnan().all(), f"z, tlu={tlu}"
        assert torch.equal(g["x"].isnan(), g_ref["x"].isnan()), f"dx, tlu={tlu}"
        for name in set(g) - {"x"}:
            assert torch.equal(g[name].isnan(), g_ref[name].isnan()), f"{name}, tlu={tlu}"
    y, tau, dz = tlu_tie_case(shape, dtype)
    y.view(-1)[1::7] = float("nan")
    got, want = [], []
    for f, out in ((tlu_fn, got), (tlu_reference, want)):
        leaf = y.clone().requires_grad_()
        z = f(leaf, tau)
        out += [z, *torch.autograd.grad(z, leaf, dz)]
    assert torch.allclose(got[0], want[0], rtol=0, atol=0, equal_nan=True), "TLU z"
    assert torch.allclose(got[1], want[1], rtol=0, atol=0, equal_nan=True), "TLU dy"


def float64_frn(x, weight, bias, tau=None, eps=1e-6, eps_l=None):
    """Eq. 1-3 in float64, written apart from frn_reference as the judge of the edges: nu2 = mean(x^2)
    over H, W (one element for (N, C); 0 for an empty plane), x_hat = x / sqrt(nu2 + eps), eps = 1e-6 +
    |eps_l| when learned, y = gamma x_hat + beta, z = max(y, tau)."""
    x4 = x.double() if x.dim() == 4 else x.double()[:, :, None, None]
    nu2 = (x4 * x4).sum(dim=(2, 3), keepdim=True) / max(x4.shape[2] * x4.shape[3], 1)
    e = eps if eps_l is None else 1e-6 + eps_l.double().abs()
    c = (1, -1, 1, 1)
    y = weight.double().view(c) * (x4 / torch.sqrt(nu2 + e)) + bias.double().view(c)
    return (y if tau is None else torch.max(y, tau.double().view(c))).reshape(x.shape)


def float64_block_end(x, shortcut, weight, bias, tau, eps=1e-6, eps_l=None):
    """max(FRN(x) + shortcut, tau), FRN without TLU, in float64."""
    return torch.max(float64_frn(x, weight, bias, None, eps, eps_l) + shortcut.double(), tau.double().view(1, -1, 1, 1))


def penalty_grads(fn, inputs, upstream):
    """The gradients of upstream(z) + |d upstream(z) / dx|^2 (a gradient penalty): second derivatives."""
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    z = fn(*leaves)
    (gx,) = torch.autograd.grad(upstream(z), leaves[0], create_graph=True)
    return torch.autograd.grad(upstream(z) + gx.square().sum(), leaves)
