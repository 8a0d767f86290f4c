"""Filter Response Normalization and the Thresholded Linear Unit (Singh & Krishnan, CVPR 2020), as
modules. The math is in formula.py (the reference) and the path_* modules (the fast paths)."""
import torch
from torch import nn

from .dispatch import frn_function, tlu_function
from .formula import EPS_FLOOR, LEARNABLE_EPS_INIT, check_frn_input


class TLU(nn.Module):
    """Thresholded Linear Unit z = max(y, tau), tau learned per channel (eq. 3)."""

    def __init__(self, num_features):
        super().__init__()
        self.num_features = num_features
        self.tau = nn.Parameter(torch.zeros(num_features))

    def forward(self, x):
        return tlu_function(x, self.tau)

    def extra_repr(self):
        return f"{self.num_features}"


class FRNParameters(nn.Module):
    """The parameters FRN and GFRN share: `weight` (gamma, init 1), `bias` (beta, init 0), `tau` (with
    TLU, init 0) and, with learnable_eps, `eps_l` (init 1e-4; effective eps = EPS_FLOOR + |eps_l|)."""

    def __init__(self, num_features, eps=EPS_FLOOR, learnable_eps=False, tlu=True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.tau = nn.Parameter(torch.zeros(num_features)) if tlu else None
        self.eps_l = nn.Parameter(torch.tensor(LEARNABLE_EPS_INIT)) if learnable_eps else None

    def eps_repr(self):
        return f"learnable ({EPS_FLOOR:g} + |eps_l|)" if self.eps_l is not None else f"{self.eps:g}"


class FRN(FRNParameters):
    """FRN (eq. 1-2) followed, when tlu=True, by TLU (eq. 3): a replacement for "norm + ReLU"."""

    def forward(self, x):
        check_frn_input(x, self.num_features)
        return frn_function(x, self.weight, self.bias, self.tau, self.eps, self.eps_l)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps_repr()}, tlu={self.tau is not None}"
