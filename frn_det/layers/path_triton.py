"""The "triton" FRN path: hand-written Triton kernels (triton_kernels.py) in one autograd Function.

Forward: one launch for ordinary rows, saving x and each (n, c) row's rstd = 1/sqrt(nu2 + eps) (N*C
values in fp32). Backward: one launch for the rows (the TLU mask recomputed from x), then one small
launch that sums the parameter gradients per channel without atomics. Long rows with few of them
(the stem's 512x512 planes) are split across programs, one more launch each way. Parameters go to
the kernels as they are (the kernels cast), so there is nothing to prepare per call.

On CPU tensors the kernels run in Triton's interpreter (TRITON_INTERPRET=1, set before triton is
imported): that is how the tests check them without a GPU.
"""
import functools
import os
from typing import NamedTuple

import torch
from torch.autograd.function import once_differentiable

from .formula import EPS_FLOOR

try:
    import triton

    from . import triton_kernels as kernels
except ImportError as e:  # triton comes with the CUDA torch wheels; elsewhere the path is off
    triton = kernels = None
    _IMPORT_ERROR = f"triton can't be imported ({e})"

MAX_BLOCK = 4096  # elements a program holds per step
LONG_ROW = 65536  # rows longer than this are split when there are few of them
FEW_ROWS = 1024  # ... fewer than this: a GPU has about 132 multiprocessors
SPLIT_CHUNK = 32768  # elements per program of a split row
PARAM_BLOCK = 128  # channels per step of the parameter-gradient sum


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
def plan(rows, length, block=None, chunk=None):
    """Block size, warps and the split of each row; a function of the shape only, so deterministic.
    block/chunk force a plan (the tests use small ones to cover every branch at small shapes)."""
    if block is None:
        block = min(MAX_BLOCK, max(16, triton.next_power_of_2(length)))
    if chunk is None and length > LONG_ROW and rows < FEW_ROWS:
        chunk = SPLIT_CHUNK
    if chunk is not None:
        chunk = triton.cdiv(chunk, block) * block  # whole blocks per program
    if chunk is None or chunk >= length:
        return Plan(block, 1, length, min(8, max(1, block // 256)))
    return Plan(block, triton.cdiv(length, chunk), chunk, min(8, max(1, block // 256)))


def _acc(dtype):
    return kernels.tl.float64 if dtype == torch.float64 else kernels.tl.float32


class TritonFRNFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, tau, eps_l, eps, block, chunk):
        x = x.contiguous()
        n, c = x.shape[:2]
        rows = n * c
        length = x.numel() // rows
        p = plan(rows, length, block, chunk)
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        z = torch.empty_like(x)
        rstd = torch.empty(rows, dtype=acc, device=x.device)
        part = rstd  # unused unless split
        if p.splits > 1:
            part = torch.empty(rows * p.splits, dtype=acc, device=x.device)
            kernels.frn_sum_squares_kernel[(rows, p.splits)](
                x, part, length, p.chunk, p.splits, BLOCK=p.block, ACC=_acc(x.dtype), num_warps=p.num_warps)
        kernels.frn_forward_kernel[(rows, p.splits)](
            x, z, weight, bias, weight if tau is None else tau, weight if eps_l is None else eps_l, rstd, part,
            c, length, p.chunk, p.splits, eps if eps_l is None else EPS_FLOOR,
            HAS_TAU=tau is not None, HAS_EPS_L=eps_l is not None, SPLIT=p.splits > 1,
            SPLITS_P2=triton.next_power_of_2(p.splits), BLOCK=p.block, ONE_BLOCK=length <= p.block,
            ACC=_acc(x.dtype), num_warps=p.num_warps)
        ctx.save_for_backward(x, weight, bias, tau, eps_l, rstd)  # the input and N*C values
        ctx.plan = p
        return z

    @staticmethod
    @once_differentiable
    def backward(ctx, dz):
        x, weight, bias, tau, eps_l, rstd = ctx.saved_tensors
        p = ctx.plan
        dz = dz.contiguous()
        n, c = x.shape[:2]
        rows, length = n * c, x.numel() // (n * c)
        acc, tacc = rstd.dtype, _acc(x.dtype)
        dx = torch.empty_like(x)
        row_sums = torch.empty(rows * kernels.ROW_SUMS, dtype=acc, device=x.device)
        part = row_sums  # unused unless split
        tau_arg = weight if tau is None else tau
        if p.splits > 1:
            part = torch.empty(rows * p.splits * kernels.CHUNK_SUMS, dtype=acc, device=x.device)
            kernels.frn_grad_sums_kernel[(rows, p.splits)](
                x, dz, weight, bias, tau_arg, rstd, part, c, length, p.chunk, p.splits,
                HAS_TAU=tau is not None, BLOCK=p.block, ACC=tacc, num_warps=p.num_warps)
        kernels.frn_backward_kernel[(rows, p.splits)](
            x, dz, dx, weight, bias, tau_arg, rstd, part, row_sums, c, length, p.chunk, p.splits,
            HAS_TAU=tau is not None, SPLIT=p.splits > 1, SPLITS_P2=triton.next_power_of_2(p.splits),
            BLOCK=p.block, ONE_BLOCK=length <= p.block, ACC=tacc, num_warps=p.num_warps)
        dw, db = torch.empty_like(weight), torch.empty_like(bias)
        dtau = None if tau is None else torch.empty_like(tau)
        deps_l = None if eps_l is None else torch.empty_like(eps_l)
        kernels.frn_param_grads_kernel[(1,)](
            row_sums, dw, db, dw if dtau is None else dtau, dw if deps_l is None else deps_l,
            dw if eps_l is None else eps_l, n, c, HAS_TAU=tau is not None, HAS_EPS_L=eps_l is not None,
            BLOCK_C=PARAM_BLOCK, ACC=tacc)
        return dx, dw, db, dtau, deps_l, None, None, None


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
                                                   num_warps=min(8, max(1, block // 256)))
        ctx.save_for_backward(z, tau, ties)
        ctx.block, ctx.tau_dtype = block, tau_dtype
        return z

    @staticmethod
    @once_differentiable
    def backward(ctx, dz):
        z, tau, ties = ctx.saved_tensors
        dz = dz.contiguous()
        dtau = torch.empty(tau.shape, dtype=ctx.tau_dtype, device=tau.device)
        n, c = z.shape[:2]
        rows, length, block = n * c, z.numel() // (n * c), ctx.block
        blocks = triton.cdiv(length, block)
        dy = torch.empty_like(z)
        part = torch.empty(rows * blocks, dtype=torch.float32, device=z.device)
        kernels.tlu_backward_kernel[(rows, blocks)](z, dz, dy, tau, ties, part, c, length, blocks, BLOCK=block,
                                                     num_warps=min(8, max(1, block // 256)))
        kernels.channel_sums_kernel[(1,)](part, dtau, n, c, blocks, BLOCK_C=PARAM_BLOCK)
        return dy, dtau, None


def tlu_triton(y, tau, block=None):
    """TLU through the Triton kernels; block forces the elements per program."""
    if y.numel() == 0:
        return torch.empty_like(y) + 0 * tau.sum()
    return TritonTLUFunction.apply(y, tau, block)


def frn_triton(x, weight, bias, tau=None, eps=1e-6, eps_l=None, block=None, chunk=None):
    """FRN (+TLU) through the Triton kernels; block/chunk force a plan (see `plan`)."""
    if x.numel() == 0:
        return torch.empty_like(x) + 0 * bias.sum()  # nothing to launch over
    return TritonFRNFunction.apply(x, weight, bias, tau, eps_l, eps, block, chunk)
