"""The group norms of the paper's Table 3 ablation, as modules: GFRN (FRN's normalization over GN's
groups of channels) and GroupNorm followed by TLU. Plain PyTorch: ablations, not speed paths."""
import torch
from torch import nn

from .dispatch import tlu_function
from .formula import EPS_FLOOR, GN_GROUPS, check_frn_input, gfrn_reference
from .frn import FRNParameters


def _check_groups(layer, num_features, num_groups):
    if num_groups < 1 or num_features % num_groups:
        raise ValueError(f"{layer} splits its channels into {num_groups} groups: the number of channels must be a "
                         f"positive multiple of {num_groups}; got {num_features}")


class GFRN(FRNParameters):
    """Group FRN (Table 3), followed when tlu=True by TLU: per sample and per group of channels,
    nu2 = mean(x^2) over the group's channels and H x W, no mean subtraction (gfrn_reference). Its
    parameters are FRN's, per channel."""

    def __init__(self, num_features, num_groups=GN_GROUPS, eps=EPS_FLOOR, learnable_eps=False, tlu=True):
        _check_groups("GFRN", num_features, num_groups)
        super().__init__(num_features, eps, learnable_eps, tlu)
        self.num_groups = num_groups

    def forward(self, x):
        check_frn_input(x, self.num_features, "GFRN")
        return gfrn_reference(x, self.weight, self.bias, self.tau, self.eps, self.eps_l, self.num_groups)

    def extra_repr(self):
        return f"{self.num_features}, groups={self.num_groups}, eps={self.eps_repr()}, tlu={self.tau is not None}"


class GroupNormTLU(nn.GroupNorm):
    """GroupNorm (eq. 8 over groups of channels) followed by TLU with a per-channel `tau` (Table 3's
    GN + TLU). A GroupNorm, so detectron2 (weight decay, conversions) treats it as one."""

    def __init__(self, num_groups, num_channels, eps=1e-5):
        _check_groups("GroupNorm", num_channels, num_groups)
        super().__init__(num_groups, num_channels, eps=eps)
        self.tau = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x):
        return tlu_function(super().forward(x), self.tau)
