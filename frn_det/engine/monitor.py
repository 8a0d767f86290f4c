"""FRN health monitor: what the norm layers see and do, per ResNet stage, FPN and head.

Every FRN_MONITOR.PERIOD iterations, forward hooks on the norm layers record for one iteration:
- `uncentred`: mean over samples and channels of mean(x)^2 / mean(x^2) over the spatial extent, at
  each norm's input; 0 for zero-mean responses, 1 for constant ones. FRN does not subtract the mean,
  so a high value means its output carries the mean (e.g. an image's brightness) through;
- `tlu_active`: the fraction of TLU outputs above tau (norm layers with TLU: FRN, GFRN, GN+TLU; and
  the TLUs after residual adds);
- `tau_mean`, `tau_std`: tau over the group's TLU channels;
- `eps_mean`: the effective eps (1e-6 + |eps_l|) averaged over the group's FRN/GFRN layers with a learnable
  eps (section 3.3): how far training moved it from its 1e-4 start, e.g. on small maps;
- `out_rms`: the root mean square of the norm layers' outputs;
- `between_images`: mean over channels of the share of a channel's variance over the batch (samples
  and positions) that lies between the samples' spatial means: the part of BN's batch statistics
  that an image's batch companions set, which per-image norms (GN, FRN) do not see; 0 when every
  sample has the same channel means, 1 when each sample is constant. Not recorded for one sample per
  process; a batch's padding counts as pixels, as it does for BN.
The values go to detectron2's EventStorage as `frn_monitor/<group>/<stat>` (metrics.json, TensorBoard).
GN and BN layers get `uncentred`, `between_images` and `out_rms` too, for comparison (GN+TLU also the
TLU's stats).
"""
import contextlib
import re
from collections import defaultdict

import torch
from detectron2.engine import HookBase
from detectron2.layers import FrozenBatchNorm2d
from detectron2.utils import comm
from torch import nn

from frn_det.layers import TLU, norm_layer_types
from frn_det.layers.formula import effective_eps

TORCH_NORM_TYPES = (nn.GroupNorm, nn.modules.batchnorm._BatchNorm, FrozenBatchNorm2d)


def norm_types():
    """The norm layers the monitor records: frn_det's (frn_det.layers.FRN_NORMS) and GN's and BN's."""
    return (*norm_layer_types(), *TORCH_NORM_TYPES)
_STAGE = re.compile(r"^(stem|res\d+)$")


def _spatial_var_mean(x):
    """(var, mean), each (N, C): x's variance and mean over the spatial extent of (N, C, H, W)."""
    return torch.var_mean(x.detach().float().flatten(2), dim=2, correction=0)


def uncentred_ratio(x, var_mean=None):
    """mean over (N, C) of mean(x)^2 / mean(x^2), the means over the spatial extent of (N, C, H, W)."""
    var, mean = var_mean or _spatial_var_mean(x)  # mean(x^2) = var + mean^2
    mean_sq = mean.pow(2)
    return (mean_sq / (var + mean_sq).clamp_min(1e-12)).mean().item()


def between_images_share(x, var_mean=None):
    """mean over C of var_n(mean_hw x) / var_{n,hw}(x) for (N, C, H, W), N >= 2 (equal spatial sizes:
    the total variance is the mean within-sample variance plus the between-sample one)."""
    if x.shape[0] < 2:
        raise ValueError(f"between_images_share needs 2 or more samples, got shape {tuple(x.shape)}")
    var, mean = var_mean or _spatial_var_mean(x)
    between = mean.var(dim=0, correction=0)
    total = var.mean(dim=0) + between
    return (between / total.clamp_min(1e-12)).mean().item()


def group_of(name):
    """'backbone.bottom_up.res3.1.conv2.norm' -> 'res3'; other backbone parts -> 'fpn'; else the first
    part of the name ('head', 'roi_heads', ...)."""
    parts = name.split(".")
    if parts[0] == "module":  # DDP
        parts = parts[1:]
    for part in parts:
        if _STAGE.match(part):
            return part
    return "fpn" if parts[0] == "backbone" else parts[0]


def _tau_of(module):
    """The TLU threshold of a norm layer with TLU (FRN, GFRN, GroupNormTLU) or a TLU; else None."""
    return getattr(module, "tau", None)


def _eps_l_of(module):
    """The learnable eps of an FRN or GFRN layer that has one; else None."""
    return getattr(module, "eps_l", None)


@contextlib.contextmanager
def record_norm_stats(model):
    """Within the block, the model's forward passes record statistics; on exit, `stats` (the yielded
    dict) holds {group: {stat: value}}, each value the mean over the group's layers."""
    per_layer = defaultdict(lambda: defaultdict(list))  # group -> stat -> values
    taus = defaultdict(list)
    eps = defaultdict(list)
    handles = []

    def hook(module, inputs, output, group):
        with torch.no_grad():
            out = output.detach()
            if isinstance(module, norm_types()):
                x = inputs[0]
                if x.dim() > 2:  # an (N, C) input has no spatial extent: the ratio would be 1
                    var_mean = _spatial_var_mean(x)
                    per_layer[group]["uncentred"].append(uncentred_ratio(x, var_mean))
                    if x.shape[0] > 1:
                        per_layer[group]["between_images"].append(between_images_share(x, var_mean))
                rms = torch.linalg.vector_norm(out, dtype=torch.float32) / out.numel() ** 0.5
                per_layer[group]["out_rms"].append(rms.item())
            tau = _tau_of(module)
            if tau is not None:
                shape = (1, -1) + (1,) * (out.dim() - 2)
                above = torch.count_nonzero(out > tau.detach().to(out.dtype).view(shape))
                per_layer[group]["tlu_active"].append(above.item() / out.numel())

    for name, module in model.named_modules():
        if isinstance(module, (*norm_types(), TLU)):
            group = group_of(name)
            handles.append(module.register_forward_hook(lambda m, i, o, g=group: hook(m, i, o, g)))
            if _tau_of(module) is not None:
                taus[group].append(module.tau.detach())
            if _eps_l_of(module) is not None:
                eps[group].append(effective_eps(module.eps, module.eps_l.detach()).float())
    stats = {}
    try:
        yield stats
    finally:
        for h in handles:
            h.remove()
    for group, values in per_layer.items():
        stats[group] = {k: sum(v) / len(v) for k, v in values.items()}
    for group, ts in taus.items():
        if group in stats:
            t = torch.cat([x.float().flatten() for x in ts])
            stats[group].update(tau_mean=t.mean().item(), tau_std=t.std(unbiased=False).item())
    for group, values in eps.items():
        if group in stats:
            stats[group]["eps_mean"] = torch.stack(values).mean().item()


class FRNMonitor(HookBase):
    """Puts record_norm_stats of one training iteration in the EventStorage every `period` iterations
    and at the last one, on the iterations where detectron2's writers write ((iter + 1) % period == 0),
    on the main process. The writers keep only the latest value of a key, so the period is a multiple
    of theirs."""

    def __init__(self, period, writer_period=1):
        if period < 1 or period % writer_period:
            raise ValueError(f"FRN_MONITOR.PERIOD must be a positive multiple of {writer_period} (the period of "
                             f"detectron2's metric writers, which keep only the latest value), got {period}")
        self.period = period
        self._recording = None

    def before_step(self):
        it = self.trainer.iter
        if comm.is_main_process() and ((it + 1) % self.period == 0 or it == self.trainer.max_iter - 1):
            self._recording = record_norm_stats(self.trainer.model)
            self._stats = self._recording.__enter__()

    def after_step(self):
        if self._recording is None:
            return
        self._recording.__exit__(None, None, None)
        self._recording = None
        storage = self.trainer.storage
        for group, values in sorted(self._stats.items()):
            for stat, value in values.items():
                storage.put_scalar(f"frn_monitor/{group}/{stat}", value, smoothing_hint=False)
