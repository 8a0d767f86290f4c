"""Filter Response Normalization and the Thresholded Linear Unit (Singh & Krishnan, CVPR 2020).

`frn_reference` is the one written-out copy of the paper's formula (eq. 1-3, Listing 1). Every faster
path in this package is tested against it.
"""
import torch
from torch import nn

EPS_FLOOR = 1e-6  # the paper's fixed eps, and the floor of the learnable one (section 3.3)
LEARNABLE_EPS_INIT = 1e-4


def effective_eps(eps, eps_l=None):
    """eps (fixed), or 1e-6 + |eps_l| (learnable, section 3.3) as a 0-d tensor."""
    return eps if eps_l is None else EPS_FLOOR + eps_l.abs()


def frn_reference(x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None):
    """z = max(gamma * x / sqrt(mean_spatial(x^2) + eps) + beta, tau).

    x: (N, C, H, W), or (N, C) for fully connected layers, where the mean runs over one element.
    Statistics are computed in fp32 at least, since x^2 overflows fp16 for |x| > 256; the result has
    the input's dtype. tau=None gives FRN without TLU.
    """
    dims = tuple(range(2, x.dim()))
    shape = (1, -1) + (1,) * len(dims)
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    nu2 = xf.pow(2).mean(dim=dims, keepdim=True) if dims else xf.pow(2)
    x_hat = xf * torch.rsqrt(nu2 + effective_eps(eps, eps_l))
    y = weight.view(shape) * x_hat + bias.view(shape)
    if tau is not None:
        y = torch.max(y, tau.view(shape))
    return y.to(x.dtype)


def check_frn_input(x, num_features):
    if x.dim() not in (2, 4):
        raise ValueError(
            f"FRN expects a 4-D (N, C, H, W) or 2-D (N, C) input; got shape {tuple(x.shape)} "
            f"({x.dim()}-D)"
        )
    if x.shape[1] != num_features:
        raise ValueError(f"FRN was built for {num_features} channels; input has {x.shape[1]}")


class TLU(nn.Module):
    """Thresholded Linear Unit z = max(y, tau), tau learned per channel (eq. 3)."""

    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features
        self.tau = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        from .frn_autograd import TLUFunction

        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            # TorchScript and ONNX can't hold a Python autograd function; the same max, as an aten op
            return torch.max(x, self.tau.view((1, -1) + (1,) * (x.dim() - 2)).to(x.dtype))
        return TLUFunction.apply(x, self.tau)

    def extra_repr(self):
        return f"{self.num_features}"


class FRN(nn.Module):
    """FRN (eq. 1-2) followed, when tlu=True, by TLU (eq. 3): a replacement for "norm + ReLU".

    Parameters: `weight` (gamma, init 1), `bias` (beta, init 0), `tau` (with TLU, init 0) and, with
    learnable_eps, `eps_l` (init 1e-4; effective eps = 1e-6 + |eps_l|).
    """

    def __init__(self, num_features, eps=EPS_FLOOR, learnable_eps=False, tlu=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.tau = nn.Parameter(torch.zeros(num_features)) if tlu else None
        self.eps_l = nn.Parameter(torch.tensor(LEARNABLE_EPS_INIT)) if learnable_eps else None

    def forward(self, x):
        check_frn_input(x, self.num_features)
        return frn_function(x, self.weight, self.bias, self.tau, self.eps, self.eps_l)

    def extra_repr(self):
        eps = f"learnable (1e-6 + |eps_l|)" if self.eps_l is not None else f"{self.eps:g}"
        return f"{self.num_features}, eps={eps}, tlu={self.tau is not None}"


def frn_function(x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None):
    """The fastest FRN path available for x (see frn_det.layers.frn_impl); the reference otherwise."""
    from .frn_impl import dispatch

    return dispatch(x, weight, bias, tau, eps, eps_l)
