"""The FRN formula and the small helpers every path shares. Imports nothing of frn_det.

`frn_reference` is the one written-out copy of the paper's formula (eq. 1-3, Listing 1),
`tlu_reference` of TLU alone (eq. 3) and `frn_add_tlu_reference` of a residual block's end (FRN
without TLU, the add, TLU); every faster path (path_cpp, path_torch, path_triton) is tested against
them. Their gradients are autograd's: at a tie y == tau, torch.max splits the gradient in
half between y and tau, and so does every path. `gfrn_reference` is FRN's group version (Table 3's
GFRN), which the GFRN layer runs as it is.
"""
import math

import torch

GN_GROUPS = 32  # detectron2's get_norm("GN") groups, which GFRN shares
EPS_FLOOR = 1e-6  # the paper's fixed eps, and the floor of the learnable one (section 3.3)
LEARNABLE_EPS_INIT = 1e-4


def effective_eps(eps, eps_l=None):
    """eps (fixed), or 1e-6 + |eps_l| (learnable, section 3.3) as a 0-d tensor."""
    return eps if eps_l is None else EPS_FLOOR + eps_l.abs()


def math_dtype(dtype):
    """Statistics in fp32 at least: x^2 overflows fp16 for |x| > 256."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def spatial_dims(x):
    """The dims FRN averages over: H, W of (N, C, H, W); none for (N, C)."""
    return tuple(range(2, x.dim()))


def mean_square(x):
    """nu2 = mean(x^2) over H, W per sample and channel (eq. 1), shaped to broadcast against x; x^2 for (N, C)."""
    dims = spatial_dims(x)
    if not dims:
        return x.pow(2)
    if not is_exporting() and math.prod(x.shape[2:]) == 0:  # an empty plane: nu2 = 0, where the mean is 0/0
        return x.pow(2).sum(dim=dims, keepdim=True)
    return x.pow(2).mean(dim=dims, keepdim=True)


def channel_shape(x):
    """The view shape that puts a per-channel vector against x."""
    return (1, -1) + (1,) * (x.dim() - 2)


def is_exporting():
    """TorchScript tracing or ONNX export: they record plain aten ops only."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def frn_reference(x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None):
    """z = max(gamma * x / sqrt(mean_spatial(x^2) + eps) + beta, tau).

    x: (N, C, H, W), or (N, C) for fully connected layers, where the mean runs over one element.
    Statistics are computed in fp32 at least, since x^2 overflows fp16 for |x| > 256; the result has
    the input's dtype. tau=None gives FRN without TLU.
    """
    xf = x.to(math_dtype(x.dtype))
    # x / sqrt, not x * rsqrt: rsqrt's derivative, nu2^-1.5, underflows fp32 for |x| above about 1e13
    x_hat = xf / torch.sqrt(mean_square(xf) + effective_eps(eps, eps_l))
    return _affine_tlu(x_hat, weight, bias, tau).to(x.dtype)


def gfrn_reference(x, weight, bias, tau=None, eps=EPS_FLOOR, eps_l=None, num_groups=GN_GROUPS):
    """Group FRN (Table 3's GFRN): z = max(gamma * x / sqrt(nu2 + eps) + beta, tau), with nu2 the
    mean of x^2 over a sample's group of C / num_groups channels and their H x W (eq. 1 over GN's
    groups, without eq. 8's mean subtraction). x: (N, C, H, W) or (N, C); fp32 statistics at least."""
    xf = x.to(math_dtype(x.dtype))
    grouped = xf.reshape(x.shape[0], num_groups, math.prod(x.shape[1:]) // num_groups)  # -1 is ambiguous at N = 0
    squares = grouped.pow(2)
    nu2 = squares.mean(dim=2, keepdim=True) if grouped.shape[2] else squares.sum(dim=2, keepdim=True)  # empty: 0
    x_hat = (grouped / torch.sqrt(nu2 + effective_eps(eps, eps_l))).reshape(x.shape)  # as frn_reference
    return _affine_tlu(x_hat, weight, bias, tau).to(x.dtype)


def _affine_tlu(x_hat, weight, bias, tau):
    """gamma * x_hat + beta (eq. 2), then max(., tau) (eq. 3) when tau is given."""
    check_channel_params(x_hat.shape[1], weight=weight, bias=bias, tau=tau)
    shape = channel_shape(x_hat)
    y = weight.view(shape) * x_hat + bias.view(shape)
    return y if tau is None else torch.max(y, tau.view(shape))


def tlu_reference(y, tau):
    """z = max(y, tau), tau per channel and compared in y's dtype; the TLU after a residual add. In half
    precision the max runs in fp32 against tau rounded to y's dtype, so that tau's gradient sums in fp32
    (as every path sums it), not in y's dtype."""
    t = tau.view(channel_shape(y))
    if math_dtype(y.dtype) == y.dtype or t.dtype != math_dtype(y.dtype):
        return torch.max(y, t.to(y.dtype))
    t = t + (t.to(y.dtype).to(t.dtype) - t).detach()  # the rounded value, tau's gradient
    return torch.max(y.to(t.dtype), t).to(y.dtype)


def frn_add_tlu_reference(x, shortcut, weight, bias, tau, eps=EPS_FLOOR, eps_l=None):
    """z = max(FRN(x) + shortcut, tau): FRN without TLU, the residual add and the TLU after it, the
    end of an FRN residual block; written as those three steps."""
    return tlu_reference(frn_reference(x, weight, bias, None, eps, eps_l) + shortcut, tau)


def check_channel_params(channels, **params):
    """One value per channel in each parameter given (any layout): a single value would broadcast, and
    the kernels read one per channel."""
    if is_exporting():
        return  # shapes are constants to the tracer
    for name, p in params.items():
        if p is not None and p.numel() != channels:
            raise ValueError(f"FRN: {name} has {p.numel()} elements; expected one per channel ({channels})")


def empty_output(x, *params):
    """The output for an input with no elements (N = 0, R-CNN heads without ROIs; or H or W = 0): x's
    shape, joined to x and every parameter given, so that each gets a zero gradient (DDP needs every
    parameter's; detectron2's heads do the same on empty inputs)."""
    joined = sum(p.sum() for p in params if p is not None)
    return x * 0 + joined * 0


def grads_with_graph(fn, inputs, dz):
    """The gradients of fn(*inputs) against its tensor inputs with their own graph, None for those that
    need none: what a fast path's backward returns when a graph of the gradient is asked for
    (create_graph, as a gradient penalty does): its kernels have no derivative of their own."""
    need = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
    with torch.enable_grad():
        grads = iter(torch.autograd.grad(fn(*inputs), need, dz, create_graph=True, allow_unused=True))
    return [next(grads) if isinstance(t, torch.Tensor) and t.requires_grad else None for t in inputs]


def check_frn_input(x, num_features, layer="FRN"):
    if x.dim() not in (2, 4):
        raise ValueError(
            f"{layer} expects a 4-D (N, C, H, W) or 2-D (N, C) input; got shape {tuple(x.shape)} "
            f"({x.dim()}-D)"
        )
    if x.shape[1] != num_features:
        raise ValueError(f"{layer} was built for {num_features} channels; input has {x.shape[1]}")
