"""FRN_NORMS is the one registry of frn_det's norms: a norm added there is a get_norm name, and the
ReLU-after-TLU check, the optimizer's norm parameters and the FRN monitor know its layer."""
import pytest
import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d, get_norm
from torch import nn

import frn_det  # noqa: F401  (registers the norm names in get_norm)
from frn_det.engine import record_norm_stats
from frn_det.layers import FRN_NORMS, NormSpec
from frn_det.modeling.relu_after_tlu import check_no_relu_after_tlu, find_relu_after_tlu
from frn_det.solver.build import get_frn_optimizer_params


class ScaleTLU(nn.Module):
    """A norm of no one's: y = gamma * x + beta, then max(y, tau) where it has a tau."""

    def __init__(self, channels, tlu=True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.tau = nn.Parameter(torch.full((channels,), -0.5)) if tlu else None

    def forward(self, x):
        y = x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y if self.tau is None else torch.max(y, self.tau.view(1, -1, 1, 1))


@pytest.fixture
def scale_tlu(monkeypatch):
    monkeypatch.setitem(FRN_NORMS, "ScaleTLU", NormSpec(ScaleTLU, lambda c, eps, learnable: ScaleTLU(c), True,
                                                        "ScaleTLU_NoTLU", False))
    monkeypatch.setitem(FRN_NORMS, "ScaleTLU_NoTLU", NormSpec(ScaleTLU, lambda c, eps, learnable: ScaleTLU(c, tlu=False),
                                                              False, "ScaleTLU_NoTLU", False))


def _head(norm, activation):
    return nn.Sequential(Conv2d(3, 4, 3, padding=1, norm=get_norm(norm, 4), activation=activation))


def test_a_registered_norm_is_known_to_the_check_the_optimizer_and_the_monitor(scale_tlu):
    model = nn.Module()
    model.head = _head("ScaleTLU", F.relu)
    assert isinstance(model.head[0].norm, ScaleTLU)
    # the check: ReLU on its TLU output is refused, with its form without TLU as the alternative
    assert find_relu_after_tlu(model) == ["head.0"]
    with pytest.raises(ValueError, match='(?s)ScaleTLU with TLU.*"ScaleTLU_NoTLU"'):
        check_no_relu_after_tlu(model)
    model.head = _head("ScaleTLU", None)
    assert find_relu_after_tlu(model) == [] and check_no_relu_after_tlu(model) is model
    model.head = _head("ScaleTLU_NoTLU", F.relu)  # no TLU: a ReLU after it is a plain activation
    assert find_relu_after_tlu(model) == []
    # the optimizer: its weight, bias and tau are norm parameters (weight decay of norms)
    model.head = _head("ScaleTLU", None)
    groups = get_frn_optimizer_params(model, base_lr=0.1, weight_decay=1e-4, weight_decay_norm=0.0)
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    norm = model.head[0].norm
    assert [decay[id(p)] for p in (norm.weight, norm.bias, norm.tau)] == [0.0, 0.0, 0.0]
    assert decay[id(model.head[0].weight)] == 1e-4
    # the monitor: it records the layer's input, output and TLU
    x = torch.randn(2, 3, 6, 6)
    with record_norm_stats(model) as stats, torch.no_grad():
        out = model.head(x)
    assert {"uncentred", "out_rms", "tlu_active", "tau_mean"} <= set(stats["head"])
    assert stats["head"]["out_rms"] == pytest.approx(out.pow(2).mean().sqrt().item(), rel=1e-5)
    assert stats["head"]["tau_mean"] == pytest.approx(-0.5)


def test_without_the_entry_the_layer_is_no_norm_of_frn_det():
    model = nn.Module()
    model.head = nn.Sequential(Conv2d(3, 4, 3, padding=1, norm=ScaleTLU(4), activation=F.relu))
    assert find_relu_after_tlu(model) == []
    with record_norm_stats(model) as stats, torch.no_grad():
        model.head(torch.randn(2, 3, 6, 6))
    assert "head" not in stats
