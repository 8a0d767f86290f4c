"""The torch-op FRN paths: "python" (eager) and "compile" (the same kernels through torch.compile, for
GPUs). Autograd keeps the input x and each plane's r (N*C values); backward recomputes the rest.
Each op is at least one kernel launch on a GPU, so the kernels use as few as eager allows (on the CPU,
where cpp is the path, heaviside's scalar loop makes that eager path slower than it could be).

Backward is the paper's eq. 4-7, with the effective eps e = 1e-6 + |eps_l| when eps is learned:
    r = 1 / sqrt(mean_spatial(x^2) + e),  x_hat = r x,  y = gamma x_hat + beta,  z = max(y, tau)
    dy = dz * share,  share = 1 where y > tau, 1/2 at y == tau (torch.max's rule), 0 below
    dtau = sum(dz - dy),  dgamma = sum(dy x_hat),  dbeta = sum(dy),  dxhat = gamma dy
    dx = r (dxhat - x_hat mean_spatial(x_hat dxhat)),  de = sum(dxhat * -x_hat r^2 / 2)
Sums for gamma, beta and tau run over the batch and the spatial extent; a (N, C) input is a 1x1 map.
A second derivative (create_graph) comes from frn_reference's autograd, recomputed in backward.
"""
import functools
import logging
import math
from typing import Callable, NamedTuple

import torch

from .formula import (EPS_FLOOR, channel_shape, check_channel_params, effective_eps, empty_output, frn_reference,
                      grads_with_graph, math_dtype, spatial_dims)

logger = logging.getLogger("frn_det")


def frn_forward_math(x, weight, bias, tau, eps):
    """(z, r): the output and each plane's r, which backward takes instead of recomputing it."""
    dims, shape = spatial_dims(x), channel_shape(x)
    xf = x.to(math_dtype(x.dtype))
    nu2 = xf.square().mean(dim=dims, keepdim=True) if dims else xf.square()
    r = torch.rsqrt(nu2 + eps)
    y = torch.addcmul(bias.view(shape), xf, weight.view(shape) * r)
    if tau is not None:
        y = y.clamp_min_(tau.view(shape))  # clamp keeps NaN, as torch.max does
    return y.to(x.dtype), r


def frn_backward_math(dz, x, r, weight, bias, tau, eps_grad):
    """Eq. 4-7 in the fewest ops eager can launch: the TLU mask comes from the forward's own y, and d eps
    only when eps is learned (eps_grad)."""
    dims, shape = spatial_dims(x), channel_shape(x)
    xf, dy = x.to(math_dtype(x.dtype)), dz.to(math_dtype(x.dtype))
    a = weight.view(shape) * r
    dz_sum = None
    if tau is not None:
        y = torch.addcmul(bias.view(shape), xf, a)  # the forward's expression: the same y, the same ties
        dz_sum = dy.sum(dim=(0,) + dims)
        dy = dy * torch.heaviside(y.sub_(tau.view(shape)), _half(y.dtype))
    s = (dy * xf).sum(dim=dims, keepdim=True) if dims else dy * xf  # sum dy x, per plane
    rs = r * s
    k = a * r * rs  # gamma r^3 sum(dy x), per plane
    dx = torch.addcmul(dy * a, xf, k, value=-1 / math.prod(x.shape[2:])).to(x.dtype)
    dgamma = rs.sum(dim=0).view(-1)
    dbeta = dy.sum(dim=(0,) + dims)
    dtau = None if tau is None else dz_sum - dbeta
    deps = k.sum() * -0.5 if eps_grad else None
    return dx, dgamma, dbeta, dtau, deps


@functools.lru_cache(maxsize=None)
def _half(dtype):
    """0.5 as a CPU scalar tensor: heaviside's value at a tie, which CUDA kernels take as an argument."""
    return torch.tensor(0.5, dtype=dtype)


class Kernels(NamedTuple):
    """forward(x, weight, bias, tau, eps) -> (z, r) and
    backward(dz, x, r, weight, bias, tau, eps_grad) -> (dx, dweight, dbias, dtau or None, deps or None),
    with x and dz contiguous, parameters in math_dtype(x.dtype), eps a float or a 0-d tensor, r the
    (N, C, 1, 1) 1/sqrt(nu2 + eps)."""

    forward: Callable
    backward: Callable


EAGER = Kernels(frn_forward_math, frn_backward_math)


def _params(x, weight, bias, tau):
    dt = math_dtype(x.dtype)
    return [None if p is None else p.detach().to(dt).contiguous() for p in (weight, bias, tau)]


class FRNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, tau, eps_l, eps, kernels):
        xc = x.contiguous()
        params = _params(xc, weight, bias, tau)
        ctx.kernels, ctx.eps = kernels, eps
        z, r = kernels.forward(xc, *params, effective_eps(eps, None if eps_l is None else eps_l.detach()))
        ctx.save_for_backward(x, r, weight, bias, tau, eps_l)  # the input, N*C values and the parameters
        return z

    @staticmethod
    def backward(ctx, dz):
        x, r, weight, bias, tau, eps_l = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: the kernels' backward has no derivative; the formula's has
            gx, gw, gb, gtau, _, geps_l = grads_with_graph(frn_reference, (x, weight, bias, tau, ctx.eps, eps_l), dz)
            return gx, gw, gb, gtau, geps_l, None, None
        params = _params(x, weight, bias, tau)
        dx, dw, db, dtau, deps = ctx.kernels.backward(dz.contiguous(), x.contiguous(), r, *params, eps_l is not None)
        dw, db, dtau = [None if g is None else g.to(p.dtype).view(p.shape) for g, p in zip((dw, db, dtau),
                                                                                           (weight, bias, tau))]
        deps_l = None if eps_l is None else (deps * eps_l.detach().sign()).to(eps_l.dtype)  # d|e|/de
        return dx, dw, db, dtau, deps_l, None, None


def frn_apply(kernels: Kernels, x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None):
    check_channel_params(x.shape[1], weight=weight, bias=bias, tau=tau)
    if x.numel() == 0:
        return empty_output(x, weight, bias, tau, eps_l)
    return FRNFunction.apply(x, weight, bias, tau, eps_l, eps, kernels)


def frn_python(x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None):
    return frn_apply(EAGER, x, weight, bias, tau, eps, eps_l)


class CompiledOrEager:
    """torch.compile of a kernel function; the eager function for good if compiling fails."""

    def __init__(self, fn):
        # dynamic: one graph across image sizes (automatic dynamic recompiled at each newly varying dim);
        # dims of size 1 still get graphs of their own
        self.fn, self.compiled = fn, torch.compile(fn, dynamic=True)

    def __call__(self, *args):
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except torch.OutOfMemoryError:
                raise
            except Exception as e:  # noqa: BLE001  (no triton, compiler error: eager is still right)
                logger.warning("frn_det: torch.compile of FRN failed (%s); using eager kernels", e)
                self.compiled = None
        return self.fn(*args)

    @property
    def fell_back(self):
        return self.compiled is None


@functools.lru_cache(maxsize=None)
def compiled_kernels():
    """The compile path's kernels, one pair per process; `compiled_kernels.cache_clear()` starts anew."""
    return Kernels(CompiledOrEager(frn_forward_math), CompiledOrEager(frn_backward_math))


def compile_fell_back():
    """True when torch.compile of the compile path's kernels failed and they run eager."""
    kernels = compiled_kernels()
    return kernels.forward.fell_back or kernels.backward.fell_back


def frn_compile(x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None):
    return frn_apply(compiled_kernels(), x, weight, bias, tau, eps, eps_l)


@functools.lru_cache(maxsize=None)
def _bit_values(device):
    """1, 2, 4, ..., 128 on `device`, made once: the place of each of 8 elements in a byte."""
    return torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=device)


@functools.lru_cache(maxsize=None)
def bit_shifts(device):
    """0, 1, ..., 7 on `device`, made once: the shifts that read the 8 bits of a byte."""
    return torch.arange(8, dtype=torch.uint8, device=device)


def pack_bits(mask):
    """A bool tensor as uint8, 8 elements a byte in its logical order (the last byte zero-padded)."""
    flat = mask.reshape(-1).view(torch.uint8)
    if flat.numel() % 8:
        flat = torch.nn.functional.pad(flat, (0, -flat.numel() % 8))
    return (flat.view(-1, 8) * _bit_values(mask.device)).sum(1, dtype=torch.uint8)


def unpack_bits(packed, shape):
    """The bits that `pack_bits` packed, as uint8 0 or 1 in `shape`."""
    bits = packed.unsqueeze(1).bitwise_right_shift(bit_shifts(packed.device)).bitwise_and_(1)
    return bits.view(-1)[: math.prod(shape)].view(shape)


class TLUFunction(torch.autograd.Function):
    """z = max(y, tau) that keeps its output and one bit per element for backward: y > tau exactly where
    z > tau, and the bit marks the ties y == tau, where the gradient splits in half between y and tau
    as torch.max's does (tlu_reference). The output is what the next conv saves anyway, so TLU adds
    1/32 of an fp32 activation (torch.max keeps y)."""

    @staticmethod
    def forward(ctx, y, tau):
        check_channel_params(y.shape[1], tau=tau)
        t = tau.view(channel_shape(y)).to(y.dtype)
        z = torch.maximum(y, t)
        ctx.save_for_backward(z, tau, pack_bits(y == t))
        return z

    @staticmethod
    def backward(ctx, dz):  # ops on dz only: under create_graph their graph is the second derivative (0 in y)
        z, tau, ties = ctx.saved_tensors
        passed = z != tau.view(channel_shape(z)).to(z.dtype)  # y > tau, or y NaN (torch.max passes it too)
        dy = torch.addcmul(dz * passed, dz, unpack_bits(ties, z.shape), value=0.5)  # dz, dz / 2 or 0
        dtau = (dz - dy).sum(dim=(0,) + spatial_dims(z), dtype=math_dtype(dz.dtype)).to(tau.dtype)
        return dy, dtau
