"""Filter Response Normalization and the Thresholded Linear Unit (Singh & Krishnan, CVPR 2020), as
modules. The math is in formula.py (the reference) and the path_* modules (the fast paths)."""
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from .dispatch import frn_function
from .formula import (EPS_FLOOR, LEARNABLE_EPS_INIT, channel_shape, check_frn_input, is_exporting, math_dtype,
                      spatial_dims)


class TLUFunction(torch.autograd.Function):
    """z = max(y, tau) that keeps only its output for backward: y > tau exactly where z > tau. The
    output is what the next conv saves anyway, so TLU adds no saved bytes (torch.max keeps y).
    At an exact tie y == tau the gradient goes to tau (torch.max splits it)."""

    @staticmethod
    def forward(ctx, y, tau):
        z = torch.maximum(y, tau.view(channel_shape(y)).to(y.dtype))
        ctx.save_for_backward(z, tau)
        return z

    @staticmethod
    @once_differentiable
    def backward(ctx, dz):
        z, tau = ctx.saved_tensors
        passed = z > tau.view(channel_shape(z)).to(z.dtype)
        dy = dz * passed
        dtau = (dz - dy).sum(dim=(0,) + spatial_dims(z), dtype=math_dtype(dz.dtype)).to(tau.dtype)
        return dy, dtau


class TLU(nn.Module):
    """Thresholded Linear Unit z = max(y, tau), tau learned per channel (eq. 3)."""

    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features
        self.tau = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        if is_exporting():
            # TorchScript and ONNX can't hold a Python autograd function; the same max, as an aten op
            return torch.max(x, self.tau.view(channel_shape(x)).to(x.dtype))
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
        eps = "learnable (1e-6 + |eps_l|)" if self.eps_l is not None else f"{self.eps:g}"
        return f"{self.num_features}, eps={eps}, tlu={self.tau is not None}"
