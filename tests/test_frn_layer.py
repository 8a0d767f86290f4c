"""FRN against a float64 reference written from the paper: Listing 1 (forward) and eq. 4-7 (backward)."""
import pytest
import torch
from torch import nn

from frn_det.layers import FRN, TLU


def paper_forward(x, gamma, beta, tau, eps):
    """Listing 1, channels-first: nu2 = mean(x^2) over the spatial extent, N = 1 for (N, C)."""
    x4 = x if x.dim() == 4 else x[:, :, None, None]
    g, b = gamma.view(1, -1, 1, 1), beta.view(1, -1, 1, 1)
    nu2 = (x4 * x4).sum(dim=(2, 3), keepdim=True) / (x4.shape[2] * x4.shape[3])
    x_hat = x4 / torch.sqrt(nu2 + eps)
    y = g * x_hat + b
    z = y if tau is None else torch.where(y >= tau.view(1, -1, 1, 1), y, tau.view(1, -1, 1, 1))
    return z.reshape(x.shape), (x4, nu2, x_hat, y)


def paper_backward(dz, x, gamma, beta, tau, eps):
    """Eq. 4-7, with eq. 7 written for nu2 = mean: dL/dx = (I - x_hat x_hat^T / N) dL/dx_hat / sqrt(nu2+eps)."""
    _, (x4, nu2, x_hat, y) = paper_forward(x, gamma, beta, tau, eps)
    dz = dz.reshape(x4.shape)
    n = x4.shape[2] * x4.shape[3]
    if tau is None:
        dy, dtau = dz, None
    else:
        blocked = y < tau.view(1, -1, 1, 1)  # eq. 4: dz/dtau = 1 where y < tau, dz/dy = 1 elsewhere
        dtau = (dz * blocked).sum(dim=(0, 2, 3))  # eq. 5
        dy = dz * ~blocked
    dgamma = (dy * x_hat).sum(dim=(0, 2, 3))  # eq. 6
    dbeta = dy.sum(dim=(0, 2, 3))
    dxhat = gamma.view(1, -1, 1, 1) * dy
    proj = (x_hat * dxhat).sum(dim=(2, 3), keepdim=True) / n
    dx = (dxhat - x_hat * proj) / torch.sqrt(nu2 + eps)  # eq. 7
    # d x_hat / d eps = -x_hat / (2 (nu2 + eps))
    deps = (dxhat * (-0.5) * x_hat / (nu2 + eps)).sum()
    return dx.reshape(x.shape), dgamma, dbeta, dtau, deps


SHAPES = [(2, 3, 5, 7), (3, 4, 1, 1), (4, 6)]


def _layer(c, learnable_eps, tlu):
    layer = FRN(c, learnable_eps=learnable_eps, tlu=tlu).double()
    with torch.no_grad():  # away from init so every term matters
        layer.weight.uniform_(0.5, 1.5)
        layer.bias.uniform_(-0.3, 0.3)
        if tlu:
            layer.tau.uniform_(-0.2, 0.2)
        if learnable_eps:
            layer.eps_l.fill_(-3e-2)  # negative: exercises |eps_l|
    return layer


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("learnable_eps", [False, True])
@pytest.mark.parametrize("tlu", [True, False])
def test_forward_and_gradients_match_paper(shape, learnable_eps, tlu):
    layer = _layer(shape[1], learnable_eps, tlu)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    z = layer(x)
    dz = torch.randn_like(z)
    z.backward(dz)

    eps = 1e-6 + abs(layer.eps_l.item()) if learnable_eps else 1e-6
    tau = layer.tau.detach() if tlu else None
    w, b = layer.weight.detach(), layer.bias.detach()
    ref_z, _ = paper_forward(x.detach(), w, b, tau, eps)
    dx, dgamma, dbeta, dtau, deps = paper_backward(dz, x.detach(), w, b, tau, eps)

    torch.testing.assert_close(z, ref_z, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x.grad, dx, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(layer.weight.grad, dgamma, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(layer.bias.grad, dbeta, rtol=1e-8, atol=1e-10)
    if tlu:
        torch.testing.assert_close(layer.tau.grad, dtau, rtol=1e-8, atol=1e-10)
        assert dtau.abs().sum() > 0  # some responses were below tau: TLU trains tau
    if learnable_eps:
        torch.testing.assert_close(layer.eps_l.grad, -deps, rtol=1e-8, atol=1e-12)  # d|e|/de = -1


def test_gradient_is_orthogonal_to_input_when_eps_is_zero():
    # eq. 7's projection: with eps = 0, dL/dx . x = 0 per (sample, channel)
    layer = FRN(3, eps=0.0, tlu=False).double()
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    layer(x).backward(torch.randn(2, 3, 4, 4, dtype=torch.float64))
    dots = (x.grad * x.detach()).sum(dim=(2, 3))
    assert dots.abs().max() < 1e-12


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4)])
@pytest.mark.parametrize("learnable_eps", [False, True])
def test_gradcheck(shape, learnable_eps):
    # the layer as users get it: FRN's default path, all parameters included
    layer = _layer(shape[1], learnable_eps, tlu=True)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    names, params = zip(*layer.named_parameters())

    def f(x, *ps):
        return torch.func.functional_call(layer, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5)


def test_parameters_and_init():
    layer = FRN(5, learnable_eps=True)
    params = dict(layer.named_parameters())
    assert set(params) == {"weight", "bias", "tau", "eps_l"}
    assert torch.equal(params["weight"], torch.ones(5)) and torch.equal(params["bias"], torch.zeros(5))
    assert torch.equal(params["tau"], torch.zeros(5))
    assert params["eps_l"].item() == pytest.approx(1e-4)
    assert set(dict(FRN(5, tlu=False).named_parameters())) == {"weight", "bias"}


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4, 4)])
def test_n_equals_one_is_a_softsign_of_x(shape):
    # N = 1 (a 1x1 map or an FC input): x_hat = x / sqrt(x^2 + eps)
    x = torch.randn(*shape, dtype=torch.float64)[..., :1, :1] if len(shape) == 4 else torch.randn(*shape, dtype=torch.float64)
    out = FRN(3, eps=0.01, tlu=False).double()(x)
    torch.testing.assert_close(out, x / torch.sqrt(x * x + 0.01))


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), (2, 3, 4, 4, 4)])
def test_unsupported_rank_is_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"4-D \(N, C, H, W\) or 2-D \(N, C\)"):
        FRN(3)(torch.randn(*shape))


def test_tlu_alone():
    tlu = TLU(2)
    with torch.no_grad():
        tlu.tau.copy_(torch.tensor([-0.5, 0.25]))
    x = torch.tensor([[[[-1.0, 0.0]], [[0.0, 1.0]]]])
    assert torch.equal(tlu(x), torch.tensor([[[[-0.5, 0.0]], [[0.25, 1.0]]]]))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3)])
def test_tlu_gradients_match_torch_max(shape):
    tlu = TLU(3).double()
    with torch.no_grad():
        tlu.tau.uniform_(-0.5, 0.5)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    tau_ref = tlu.tau.detach().clone().requires_grad_()
    dz = torch.randn(*shape, dtype=torch.float64)
    tlu(x).backward(dz)
    torch.max(x_ref, tau_ref.view((1, -1) + (1,) * (len(shape) - 2))).backward(dz)
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(tlu.tau.grad, tau_ref.grad)


def test_tlu_saves_its_output_and_one_bit_per_element():
    # the output is saved by whatever consumes it (a conv); the bits mark ties y == tau for backward
    tlu = TLU(4)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        z = tlu(x * 1.0)
    activation_storages = {t.untyped_storage().data_ptr() for t in saved if t.numel() > 4}
    ties = [t for t in saved if t.dtype == torch.uint8]
    assert len(ties) == 1 and ties[0].untyped_storage().nbytes() == z.numel() // 8
    assert activation_storages == {z.untyped_storage().data_ptr(), ties[0].untyped_storage().data_ptr()}


def test_batch_independence_in_train_mode():
    x = torch.randn(4, 8, 6, 6) * torch.rand(4, 1, 1, 1) * 10
    frn, bn = FRN(8).train(), nn.Sequential(nn.BatchNorm2d(8), nn.ReLU()).train()
    frn_alone = torch.cat([frn(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(frn(x), frn_alone, rtol=0, atol=1e-6)
    bn_alone = torch.cat([bn(x[i : i + 2]) for i in (0, 2)])  # BN, for contrast: depends on the batch
    assert (bn(x) - bn_alone).abs().max() > 0.1


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("tlu", [True, False])
def test_half_precision_large_inputs_stay_finite(dtype, tlu):
    layer = _layer(16, False, tlu).float()
    x = torch.randn(2, 16, 8, 8) * 1e4  # x^2 ~ 1e8 overflows fp16
    out = layer(x.to(dtype))
    assert out.dtype == dtype and torch.isfinite(out).all()
    ref = layer(x.to(dtype).float())
    torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)


def test_bf16_autocast():
    layer = FRN(8)
    x = torch.randn(2, 8, 5, 5) * 1e4
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x.bfloat16())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), layer(x.bfloat16().float()), rtol=1e-2, atol=1e-2)
