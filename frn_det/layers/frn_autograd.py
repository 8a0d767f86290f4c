"""Memory-lean FRN (+TLU): autograd keeps only the input x, and backward recomputes the rest.

Backward is the paper's eq. 4-7, with the effective eps e = 1e-6 + |eps_l| when eps is learned:
    r = 1 / sqrt(mean_spatial(x^2) + e),  x_hat = r x,  y = gamma x_hat + beta,  z = max(y, tau)
    dy = dz * share,  share = 1 where y > tau, 1/2 at y == tau (torch.max's rule), 0 below
    dtau = sum(dz - dy),  dgamma = sum(dy x_hat),  dbeta = sum(dy),  dxhat = gamma dy
    dx = r (dxhat - x_hat mean_spatial(x_hat dxhat)),  de = sum(dxhat * -x_hat r^2 / 2)
Sums for gamma, beta and tau run over the batch and the spatial extent; a (N, C) input is a 1x1 map.

`frn_forward_math`/`frn_backward_math` are the torch-op kernels: the "python" path eager, the
"compile" path (GPUs) through torch.compile, both wrapped by `FRNFunction`. csrc/frn_cpu.cpp is the
same math fused, with its own C++ autograd.
"""
import math
from typing import Callable, NamedTuple

import torch
from torch.autograd.function import once_differentiable

from .frn import effective_eps


def math_dtype(dtype):
    """Statistics in fp32 at least: x^2 overflows fp16 for |x| > 256."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _layout(x):
    """Spatial dims, and the view shape that puts a per-channel vector against x."""
    dims = tuple(range(2, x.dim()))
    return dims, (1, -1) + (1,) * len(dims)


def _inv_rms(xf, dims, eps):
    nu2 = xf.square().mean(dim=dims, keepdim=True) if dims else xf.square()
    return torch.rsqrt(nu2 + eps)


def frn_forward_math(x, weight, bias, tau, eps):
    dims, shape = _layout(x)
    xf = x.to(math_dtype(x.dtype))
    y = torch.addcmul(bias.view(shape), xf, weight.view(shape) * _inv_rms(xf, dims, eps))
    if tau is not None:
        y = y.clamp_min_(tau.view(shape))
    return y.to(x.dtype)


def frn_backward_math(dz, x, weight, bias, tau, eps):
    dims, shape = _layout(x)
    xf, dy = x.to(math_dtype(x.dtype)), dz.to(math_dtype(x.dtype))
    r = _inv_rms(xf, dims, eps)
    a = weight.view(shape) * r
    dz_sum = None
    if tau is not None:
        share = torch.addcmul(bias.view(shape), xf, a).sub_(tau.view(shape)).sign_().add_(1).mul_(0.5)
        dz_sum = dy.sum(dim=(0,) + dims)
        dy = dy * share
    s_dyx = (dy * xf).sum(dim=dims, keepdim=True) if dims else dy * xf  # sum dy x, per plane
    k = a * r * r * s_dyx / math.prod(x.shape[2:])
    dx = torch.addcmul(dy * a, xf, k, value=-1).to(x.dtype)
    dgamma = (r * s_dyx).sum(dim=(0,) + dims)
    dbeta = dy.sum(dim=(0,) + dims)
    dtau = None if tau is None else dz_sum - dbeta
    deps = (a * r * r * s_dyx).sum() * -0.5
    return dx, dgamma, dbeta, dtau, deps


class Kernels(NamedTuple):
    """forward(x, weight, bias, tau, eps) -> z and
    backward(dz, x, weight, bias, tau, eps) -> (dx, dweight, dbias, dtau or None, deps), with x and dz
    contiguous, parameters in math_dtype(x.dtype), eps a float or a 0-d tensor."""

    forward: Callable
    backward: Callable


PYTHON = Kernels(frn_forward_math, frn_backward_math)


def _params(x, weight, bias, tau):
    dt = math_dtype(x.dtype)
    return [None if p is None else p.detach().to(dt).contiguous() for p in (weight, bias, tau)]


class FRNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, tau, eps_l, eps, kernels):
        x = x.contiguous()
        ctx.kernels, ctx.eps = kernels, effective_eps(eps, None if eps_l is None else eps_l.detach())
        ctx.save_for_backward(x, weight, bias, tau, eps_l)  # x and parameters, nothing else
        return kernels.forward(x, *_params(x, weight, bias, tau), ctx.eps)

    @staticmethod
    @once_differentiable
    def backward(ctx, dz):
        x, weight, bias, tau, eps_l = ctx.saved_tensors
        dx, dw, db, dtau, deps = ctx.kernels.backward(
            dz.contiguous(), x, *_params(x, weight, bias, tau), ctx.eps
        )
        dtau = None if tau is None else dtau.to(tau.dtype)
        deps_l = None if eps_l is None else (deps * eps_l.detach().sign()).to(eps_l.dtype)  # d|e|/de
        return dx, dw.to(weight.dtype), db.to(bias.dtype), dtau, deps_l, None, None


def frn_apply(kernels: Kernels, x, weight, bias, tau=None, eps=1e-6, eps_l=None):
    return FRNFunction.apply(x, weight, bias, tau, eps_l, eps, kernels)


class TLUFunction(torch.autograd.Function):
    """z = max(y, tau) that keeps only its output for backward: y > tau exactly where z > tau. The
    output is what the next conv saves anyway, so TLU adds no saved bytes (torch.max keeps y).
    At an exact tie y == tau the gradient goes to tau (torch.max splits it)."""

    @staticmethod
    def forward(ctx, y, tau):
        _, shape = _layout(y)
        z = torch.maximum(y, tau.view(shape).to(y.dtype))
        ctx.save_for_backward(z, tau)
        return z

    @staticmethod
    @once_differentiable
    def backward(ctx, dz):
        z, tau = ctx.saved_tensors
        dims, shape = _layout(z)
        passed = z > tau.view(shape).to(z.dtype)
        dy = dz * passed
        dtau = (dz - dy).sum(dim=(0,) + dims, dtype=math_dtype(dz.dtype)).to(tau.dtype)
        return dy, dtau
