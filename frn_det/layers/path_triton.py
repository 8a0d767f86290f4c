"""The "triton" FRN path: hand-written Triton kernels (triton_kernels.py) in one autograd Function.

Forward: one launch for ordinary rows, saving x and each (n, c) row's rstd = 1/sqrt(nu2 + eps) (N*C
values in fp32). Backward: one launch for the rows (the TLU mask recomputed from x), then one small
launch over blocks of channels that sums the parameter gradients without atomics. Long rows that
would leave the GPU's multiprocessors short of programs (the stem's 512x512 planes) are split across
programs, one more launch each way. Parameters go to
the kernels as they are (the kernels cast), so there is nothing to prepare per call. A residual
block's end, max(FRN(x) + shortcut, tau), runs the same kernels with ADD on (TLU's mask then comes
from the saved z and tie bits).

On CPU tensors the kernels run in Triton's interpreter (TRITON_INTERPRET=1, set before triton is
imported): that is how the tests check them without a GPU.

A second derivative (create_graph) comes from frn_reference's autograd, recomputed in backward; the TLU's
is 0 in y, so its gradient there is dz times the share its saved z and tie bits give.
"""
import functools
import os
import struct
from typing import NamedTuple

import torch

from . import path_torch
from .formula import (EPS_FLOOR, channel_shape, check_channel_params, empty_output, frn_reference, grads_with_graph,
                      math_dtype, spatial_dims)

try:
    import triton

    from . import triton_kernels as kernels
except ImportError as e:  # triton comes with the CUDA torch wheels; elsewhere the path is off
    triton = kernels = None
    _IMPORT_ERROR = f"triton can't be imported ({e})"

MAX_BLOCK = 4096  # elements a program holds per step
SPLIT_BELOW = 2  # rows are split when they give fewer programs than this per multiprocessor ...
SPLIT_TARGET = 4  # ... into about this many programs per multiprocessor ...
MIN_CHUNK = 8192  # ... of at least this many elements
DEFAULT_SMS = 132  # an H100's multiprocessors: the plan on the CPU (the interpreter) and unknown devices
PARAM_BLOCK = 32  # channels per program of the per-channel sums


def unavailable_reason(device_type):
    """Why the triton path can't run on tensors of this device type here; None when it can."""
    if kernels is None:
        return _IMPORT_ERROR
    if device_type == "cuda":
        return None if torch.cuda.is_available() else "CUDA is not available"
    if device_type == "cpu":
        return None if _interpreting() else "CPU tensors need Triton's interpreter (TRITON_INTERPRET=1)"
    return f"Triton runs on CUDA, not on {device_type}"


@functools.lru_cache(maxsize=None)
def _interpreting():
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_available(device_type):
    return unavailable_reason(device_type) is None


class Plan(NamedTuple):
    block: int
    splits: int  # programs per row (1: ordinary rows)
    chunk: int  # elements per program of a split row
    num_warps: int


@functools.lru_cache(maxsize=1024)
def plan(rows, length, block=None, chunk=None, sms=DEFAULT_SMS):
    """Block size, warps and the split of each row; a function of the shape and the device's
    multiprocessors only, so deterministic. Rows are split when they leave the multiprocessors short of
    programs and are long enough. block/chunk force a plan (the tests use small ones to cover every
    branch at small shapes)."""
    if block is None:
        block = min(MAX_BLOCK, max(16, triton.next_power_of_2(length)))
    num_warps = min(8, max(1, block // 256))
    if chunk is None and rows < SPLIT_BELOW * sms and length >= 2 * MIN_CHUNK:
        splits = min(triton.cdiv(SPLIT_TARGET * sms, rows), length // MIN_CHUNK)
        chunk = triton.cdiv(length, splits)
    if chunk is not None:
        chunk = triton.cdiv(chunk, block) * block  # whole blocks per program
    if chunk is None or chunk >= length:
        return Plan(block, 1, length, num_warps)
    return Plan(block, triton.cdiv(length, chunk), chunk, num_warps)


@functools.lru_cache(maxsize=None)
def multiprocessors(device):
    """The device's streaming multiprocessors (DEFAULT_SMS off CUDA)."""
    if device.type != "cuda":
        return DEFAULT_SMS
    return torch.cuda.get_device_properties(device).multi_processor_count


def _acc(dtype):
    return kernels.tl.float64 if dtype == torch.float64 else kernels.tl.float32


def _split(eps):
    """eps as two fp32 kernel arguments (Triton passes Python floats as fp32) whose sum in fp64 is eps to
    about 2^-48 of it: hi + lo in fp32 is hi, eps rounded to fp32."""
    hi = _fp32(eps)
    return hi, _fp32(eps - hi)


def _fp32(v):
    """v rounded to fp32, without a tensor (which would be an op per call)."""
    return struct.unpack("f", struct.pack("f", v))[0]


def _frn_forward(x, weight, bias, tau, eps_l, eps, p, shortcut=None):
    """z and rstd (N*C values) of contiguous x under plan p; with a shortcut (a block end, tau in x's
    dtype) also the tie bits, else None."""
    n, c = x.shape[:2]
    rows = n * c
    length = x.numel() // rows
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    z = torch.empty_like(x)
    rstd = torch.empty(rows, dtype=acc, device=x.device)
    part = rstd  # unused unless split
    add = shortcut is not None
    ties_row = triton.cdiv(length, p.block) * (p.block // 8) if add else 0
    ties = torch.empty(rows * ties_row, dtype=torch.uint8, device=x.device) if add else None
    if p.splits > 1:
        part = torch.empty(rows * p.splits, dtype=acc, device=x.device)
        kernels.frn_sum_squares_kernel[(rows, p.splits)](
            x, part, length, p.chunk, p.splits, BLOCK=p.block, ACC=_acc(x.dtype), num_warps=p.num_warps)
    kernels.frn_forward_kernel[(rows, p.splits)](
        x, z, weight, bias, weight if tau is None else tau, weight if eps_l is None else eps_l, rstd, part,
        shortcut if add else x, ties if add else rstd, c, length, p.chunk, p.splits, ties_row,
        *_split(eps if eps_l is None else EPS_FLOOR),
        HAS_TAU=tau is not None, HAS_EPS_L=eps_l is not None, SPLIT=p.splits > 1,
        SPLITS_P2=triton.next_power_of_2(p.splits), BLOCK=p.block, ONE_BLOCK=length <= p.block, ADD=add,
        ACC=_acc(x.dtype), num_warps=p.num_warps)
    return z, rstd, ties


def _frn_backward(dz, x, weight, bias, tau, eps_l, rstd, p, z=None, ties=None, dtau_dtype=None):
    """dx, d weight, d bias, d tau, d eps_l and, for a block end (z and ties given), d shortcut."""
    n, c = x.shape[:2]
    rows, length = n * c, x.numel() // (n * c)
    acc, tacc = rstd.dtype, _acc(x.dtype)
    add = ties is not None
    ties_row = ties.numel() // rows if add else 0
    dx = torch.empty_like(x)
    ds = torch.empty_like(x) if add else None
    row_sums = torch.empty(rows * kernels.ROW_SUMS, dtype=acc, device=x.device)
    part = row_sums  # unused unless split
    tau_arg = weight if tau is None else tau
    z_arg, ties_arg = (z, ties) if add else (x, rstd)
    if p.splits > 1:
        part = torch.empty(rows * p.splits * kernels.CHUNK_SUMS, dtype=acc, device=x.device)
        kernels.frn_grad_sums_kernel[(rows, p.splits)](
            x, dz, weight, bias, tau_arg, rstd, part, z_arg, ties_arg, c, length, p.chunk, p.splits, ties_row,
            HAS_TAU=tau is not None, ADD=add, BLOCK=p.block, ACC=tacc, num_warps=p.num_warps)
    kernels.frn_backward_kernel[(rows, p.splits)](
        x, dz, dx, weight, bias, tau_arg, rstd, part, row_sums, z_arg, ties_arg, ds if add else dx, c, length,
        p.chunk, p.splits, ties_row, HAS_TAU=tau is not None, SPLIT=p.splits > 1,
        SPLITS_P2=triton.next_power_of_2(p.splits), BLOCK=p.block, ONE_BLOCK=length <= p.block, ADD=add,
        ACC=tacc, num_warps=p.num_warps)
    dw, db = torch.empty_like(weight), torch.empty_like(bias)
    dtau = None if tau is None else torch.empty(tau.shape, dtype=dtau_dtype or tau.dtype, device=tau.device)
    deps = None if eps_l is None else torch.empty(c, dtype=acc, device=x.device)  # per channel
    kernels.frn_param_grads_kernel[(triton.cdiv(c, PARAM_BLOCK),)](
        row_sums, dw, db, dw if dtau is None else dtau, dw if deps is None else deps, n, c,
        HAS_TAU=tau is not None, HAS_EPS_L=eps_l is not None, BLOCK_C=PARAM_BLOCK, ACC=tacc)
    deps_l = None if eps_l is None else (deps.sum() * eps_l.sign()).to(eps_l.dtype)  # d|eps_l| / d eps_l
    return dx, dw, db, dtau, deps_l, ds


def _plan_for(x, block, chunk):
    n, c = x.shape[:2]
    return plan(n * c, x.numel() // (n * c), block, chunk, multiprocessors(x.device))


def _tlu_share(z, tau, ties, row_bytes, dtype):
    """The TLU's share of dz from its saved output z and tie bits (row_bytes bytes per (n, c) row, an
    element's bit at byte i // 8 of its row): 1 where z != tau, 1/2 at a tie, 0 elsewhere."""
    rows = z.shape[0] * z.shape[1]
    bits = ties.view(rows, row_bytes, 1).bitwise_right_shift(path_torch.bit_shifts(z.device)).bitwise_and(1)
    tie = bits.view(rows, row_bytes * 8)[:, : z.numel() // max(rows, 1)].reshape(z.shape)
    return (z != tau.view(channel_shape(z))).to(dtype) + 0.5 * tie.to(dtype)


def _tlu_grads_with_graph(dz, share, tau_dtype):
    """dy = dz share and d tau = sum(dz - dy), as differentiable ops on dz (create_graph)."""
    dy = dz * share
    return dy, (dz - dy).sum(dim=(0,) + spatial_dims(dz), dtype=math_dtype(dz.dtype)).to(tau_dtype)


class TritonFRNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, tau, eps_l, eps, block, chunk):
        xc = x.contiguous()
        p = _plan_for(xc, block, chunk)
        z, rstd, _ = _frn_forward(xc, weight, bias, tau, eps_l, eps, p)
        ctx.save_for_backward(x, weight, bias, tau, eps_l, rstd)  # the input and N*C values
        ctx.plan, ctx.eps = p, eps
        return z

    @staticmethod
    def backward(ctx, dz):
        x, weight, bias, tau, eps_l, rstd = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: the kernels' backward has no derivative; the formula's has
            gx, gw, gb, gtau, _, geps_l = grads_with_graph(frn_reference, (x, weight, bias, tau, ctx.eps, eps_l), dz)
            return gx, gw, gb, gtau, geps_l, None, None, None
        dx, dw, db, dtau, deps_l, _ = _frn_backward(dz.contiguous(), x.contiguous(), weight, bias, tau, eps_l, rstd,
                                                    ctx.plan)
        return dx, dw, db, dtau, deps_l, None, None, None


class TritonFRNAddTLUFunction(torch.autograd.Function):
    """z = max(FRN(x) + shortcut, tau), FRN without TLU: a residual block's end in the FRN kernels with
    ADD on, one launch forward and two backward (as FRN+TLU). Keeps x, rstd, z (which the next layer
    keeps anyway) and one bit per element marking the ties, as TritonTLUFunction."""

    @staticmethod
    def forward(ctx, x, shortcut, weight, bias, tau, eps_l, eps, block, chunk):
        xc = x.contiguous()
        p = _plan_for(xc, block, chunk)
        tau_x = tau.detach().to(x.dtype)  # compared in x's dtype, as TLU compares
        z, rstd, ties = _frn_forward(xc, weight, bias, tau_x, eps_l, eps, p, shortcut.contiguous())
        ctx.save_for_backward(x, weight, bias, tau_x, eps_l, rstd, z, ties)
        ctx.plan, ctx.tau_dtype, ctx.eps = p, tau.dtype, eps
        return z

    @staticmethod
    def backward(ctx, dz):
        x, weight, bias, tau_x, eps_l, rstd, z, ties = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: dy from the TLU's share, then FRN's formula
            share = _tlu_share(z, tau_x, ties, ties.numel() // (z.shape[0] * z.shape[1]), dz.dtype)
            dy, dtau = _tlu_grads_with_graph(dz, share, ctx.tau_dtype)
            gx, gw, gb, _, _, geps_l = grads_with_graph(frn_reference, (x, weight, bias, None, ctx.eps, eps_l), dy)
            return gx, dy, gw, gb, dtau, geps_l, None, None, None
        dx, dw, db, dtau, deps_l, ds = _frn_backward(dz.contiguous(), x.contiguous(), weight, bias, tau_x, eps_l,
                                                     rstd, ctx.plan, z, ties, ctx.tau_dtype)
        return dx, ds, dw, db, dtau, deps_l, None, None, None


TLU_BLOCK = 1024


class TritonTLUFunction(torch.autograd.Function):
    """z = max(y, tau) that keeps its output and one bit per element marking the ties y == tau, as
    path_torch.TLUFunction: one launch forward, two backward (dy with per-block sums of what trains
    tau, then their sum per channel)."""

    @staticmethod
    def forward(ctx, y, tau, block):
        y, tau_dtype = y.contiguous(), tau.dtype
        n, c = y.shape[:2]
        rows = n * c
        length = y.numel() // rows
        block = block or min(TLU_BLOCK, max(16, triton.next_power_of_2(length)))
        blocks = triton.cdiv(length, block)
        z = torch.empty_like(y)
        ties = torch.empty(rows * blocks * (block // 8), dtype=torch.uint8, device=y.device)
        tau = tau.detach().to(y.dtype)  # compared in y's dtype, rounded as torch rounds (the interpreter truncates)
        kernels.tlu_forward_kernel[(rows, blocks)](y, z, tau, ties, c, length, blocks, BLOCK=block,
                                                   ACC=_acc(y.dtype), num_warps=min(8, max(1, block // 256)))
        ctx.save_for_backward(z, tau, ties)
        ctx.block, ctx.tau_dtype = block, tau_dtype
        return z

    @staticmethod
    def backward(ctx, dz):
        z, tau, ties = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph
            rows = z.shape[0] * z.shape[1]
            return (*_tlu_grads_with_graph(dz, _tlu_share(z, tau, ties, ties.numel() // rows, dz.dtype), ctx.tau_dtype),
                    None)
        dz = dz.contiguous()
        dtau = torch.empty(tau.shape, dtype=ctx.tau_dtype, device=tau.device)
        n, c = z.shape[:2]
        rows, length, block = n * c, z.numel() // (n * c), ctx.block
        blocks = triton.cdiv(length, block)
        dy = torch.empty_like(z)
        acc = torch.float64 if z.dtype == torch.float64 else torch.float32
        part = torch.empty(rows * blocks, dtype=acc, device=z.device)
        kernels.tlu_backward_kernel[(rows, blocks)](z, dz, dy, tau, ties, part, c, length, blocks, BLOCK=block,
                                                     ACC=_acc(z.dtype), num_warps=min(8, max(1, block // 256)))
        kernels.channel_sums_kernel[(triton.cdiv(c, PARAM_BLOCK),)](part, dtau, n, c, blocks, BLOCK_C=PARAM_BLOCK,
                                                                    ACC=_acc(z.dtype))
        return dy, dtau, None


def _channel_params(c, **params):
    """Each parameter as the (C,) contiguous vector the kernels index; a wrong size is an error."""
    check_channel_params(c, **params)
    return [None if p is None else p.reshape(c).contiguous() for p in params.values()]


def tlu_triton(y, tau, block=None):
    """TLU through the Triton kernels; block forces the elements per program."""
    (tau,) = _channel_params(y.shape[1], tau=tau)
    if y.numel() == 0:
        return empty_output(y, tau)
    return TritonTLUFunction.apply(y, tau, block)


def frn_add_tlu_triton(x, shortcut, weight, bias, tau, eps=EPS_FLOOR, eps_l=None, block=None, chunk=None):
    """max(FRN(x) + shortcut, tau) through the Triton kernels, x and shortcut of one shape and dtype;
    block/chunk force a plan (see `plan`)."""
    weight, bias, tau = _channel_params(x.shape[1], weight=weight, bias=bias, tau=tau)
    if x.numel() == 0:
        return empty_output(x, shortcut, weight, bias, tau, eps_l)
    return TritonFRNAddTLUFunction.apply(x, shortcut, weight, bias, tau, eps_l, eps, block, chunk)


def frn_triton(x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None, block=None, chunk=None):
    """FRN (+TLU) through the Triton kernels; block/chunk force a plan (see `plan`)."""
    weight, bias, tau = _channel_params(x.shape[1], weight=weight, bias=bias, tau=tau)
    if x.numel() == 0:
        return empty_output(x, weight, bias, tau, eps_l)  # nothing to launch over
    return TritonFRNFunction.apply(x, weight, bias, tau, eps_l, eps, block, chunk)
