"""Triton kernels of the "triton" FRN path (path_triton launches them). x is (rows, L): one row per
(n, c) plane of L = H*W elements, row-major. Statistics and sums run in ACC (fp32, fp64 for fp64
inputs); outputs are stored in their tensors' dtypes.

Ordinary rows: one program per row; forward and backward each loop over the row in BLOCKs (read
once when the row fits one BLOCK). Long rows are split into SPLITS chunks of CHUNK elements, one
program per (row, chunk): a first kernel writes each chunk's partial sums, the second sums a row's
partials in a fixed order, so results are deterministic. Parameter gradients: each row writes its
partial (dgamma, dbeta, dtau, deps) and a grid over blocks of channels sums them over the batch (no
atomics).

Precision on the GPU: rstd takes IEEE-rounded sqrt and division (sqrt_rn, div_rn: tl.sqrt and `/` lower
to approximate instructions in fp32; fp64's are IEEE-rounded). Triton passes Python floats as fp32, so
eps comes as two of them, eps_hi + eps_lo, which hold it to fp64's precision. The max of the TLU
propagates NaN, as torch.max does.
"""
import triton
import triton.language as tl

ROW_SUMS = 4  # dgamma, dbeta, dtau, deps per row
CHUNK_SUMS = 3  # sum dy x, sum dy, sum dz per chunk


@triton.jit
def _tlu_dy(dz, x, a, b, tau, HAS_TAU: tl.constexpr):
    """dz through the TLU: all of it where y > tau, half at a tie (torch.max's rule), none below."""
    if HAS_TAU:
        y = x * a + b  # the forward's expression: the same y, so the same mask
        dz = tl.where(y > tau, dz, tl.where(y == tau, dz * 0.5, 0.0))
    return dz


@triton.jit
def _load_dy(x_ptr, dz_ptr, z_ptr, ties_ptr, idx, end, a, b, tau, HAS_TAU: tl.constexpr, ADD: tl.constexpr,
             ACC: tl.constexpr):
    """x, dz and dy = dz through the TLU at the indices below end (0 beyond). ADD (a block end): the
    TLU's input held the shortcut too, so its share comes from the saved z and tie bits, as
    tlu_backward_kernel's."""
    m = idx < end
    x = tl.load(x_ptr + idx, mask=m, other=0.0).to(ACC)
    dz = tl.load(dz_ptr + idx, mask=m, other=0.0).to(ACC)
    if ADD:
        z = tl.load(z_ptr + idx, mask=m, other=0.0).to(ACC)
        tie = (tl.load(ties_ptr + idx // 8, mask=m, other=0).to(tl.int32) >> (idx % 8)) & 1
        dy = tl.where(z != tau, dz, tl.where(tie != 0, dz * 0.5, 0.0))
    else:
        dy = _tlu_dy(dz, x, a, b, tau, HAS_TAU)
    return x, dz, dy


@triton.jit
def _sum_squares(x_ptr, start, end, BLOCK: tl.constexpr, ACC: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros([BLOCK], dtype=ACC)
    for s in range(start, end, BLOCK):
        idx = s + offs
        x = tl.load(x_ptr + idx, mask=idx < end, other=0.0).to(ACC)
        acc += x * x
    return tl.sum(acc, 0)


@triton.jit
def _grad_sums(x_ptr, dz_ptr, z_ptr, ties_ptr, start, end, a, b, tau, HAS_TAU: tl.constexpr, ADD: tl.constexpr,
               BLOCK: tl.constexpr, ACC: tl.constexpr):
    """sum dy x, sum dy and sum dz over [start, end)."""
    offs = tl.arange(0, BLOCK)
    acc_dyx = tl.zeros([BLOCK], dtype=ACC)
    acc_dy = tl.zeros([BLOCK], dtype=ACC)
    acc_dz = tl.zeros([BLOCK], dtype=ACC)
    for s in range(start, end, BLOCK):
        x, dz, dy = _load_dy(x_ptr, dz_ptr, z_ptr, ties_ptr, s + offs, end, a, b, tau, HAS_TAU, ADD, ACC)
        acc_dyx += dy * x
        acc_dy += dy
        acc_dz += dz
    return tl.sum(acc_dyx, 0), tl.sum(acc_dy, 0), tl.sum(acc_dz, 0)


@triton.jit
def _store_z(y, start, offs, end, s_ptr, z_ptr, ties_ptr, tau, HAS_TAU: tl.constexpr, ADD: tl.constexpr,
             BLOCK: tl.constexpr):
    """Stores max(y, tau) (y with HAS_TAU off) at start + offs below end. ADD (a block end): y + the
    shortcut first, rounded to z's dtype and compared with tau there, as TLU compares; the ties y == tau
    go to ties_ptr, one bit per element, the block's BLOCK / 8 bytes from byte start / 8."""
    idx = start + offs
    m = idx < end
    if ADD:
        y = (y + tl.load(s_ptr + idx, mask=m, other=0.0).to(y.dtype)).to(z_ptr.dtype.element_ty).to(y.dtype)
        ties = tl.reshape(((y == tau) & m).to(tl.int32), (BLOCK // 8, 8))
        packed = tl.sum(ties << tl.arange(0, 8)[None, :], axis=1)
        tl.store(ties_ptr + start // 8 + tl.arange(0, BLOCK // 8), packed.to(tl.uint8))
    if HAS_TAU:
        y = tl.maximum(y, tau, propagate_nan=tl.PropagateNan.ALL)
    tl.store(z_ptr + idx, y.to(z_ptr.dtype.element_ty), mask=m)


@triton.jit
def _rstd(ss, L, e, ACC: tl.constexpr):
    """1 / sqrt(ss / L + e), each step IEEE-rounded (fp64's `/` and sqrt are)."""
    if ACC == tl.float32:
        return tl.div_rn(1.0, tl.sqrt_rn(tl.div_rn(ss, (L + 0.0).to(ACC)) + e))
    return 1.0 / tl.sqrt(ss / L + e)


@triton.jit
def _chunk(L, CHUNK, SPLIT: tl.constexpr):
    if SPLIT:
        start = tl.program_id(1) * CHUNK
        end = tl.minimum(start + CHUNK, L)
    else:
        start = 0
        end = L
    return start, end


@triton.jit
def frn_sum_squares_kernel(x_ptr, part_ptr, L, CHUNK, SPLITS, BLOCK: tl.constexpr, ACC: tl.constexpr):
    """Long rows, first pass: the sum of x^2 over each (row, chunk)."""
    row = tl.program_id(0)
    start, end = _chunk(L, CHUNK, True)
    ss = _sum_squares(x_ptr + row.to(tl.int64) * L, start, end, BLOCK, ACC)
    tl.store(part_ptr + row * SPLITS + tl.program_id(1), ss)


@triton.jit
def frn_forward_kernel(x_ptr, z_ptr, w_ptr, b_ptr, tau_ptr, eps_l_ptr, rstd_ptr, part_ptr, s_ptr, ties_ptr, C, L,
                       CHUNK, SPLITS, TIES_ROW, eps, eps_lo, HAS_TAU: tl.constexpr, HAS_EPS_L: tl.constexpr,
                       SPLIT: tl.constexpr, SPLITS_P2: tl.constexpr, BLOCK: tl.constexpr, ONE_BLOCK: tl.constexpr,
                       ADD: tl.constexpr, ACC: tl.constexpr):
    """z = max(gamma x rstd + beta, tau), rstd = 1/sqrt(mean(x^2) + eps) saved per row. ADD: a block
    end, z = max(gamma x rstd + beta + s, tau), with TIES_ROW bytes of tie bits per row."""
    row = tl.program_id(0)
    c = row % C
    x_ptr += row.to(tl.int64) * L
    z_ptr += row.to(tl.int64) * L
    if ADD:
        s_ptr += row.to(tl.int64) * L
        ties_ptr += row.to(tl.int64) * TIES_ROW
    offs = tl.arange(0, BLOCK)
    e = tl.cast(eps, ACC) + tl.cast(eps_lo, ACC)
    if HAS_EPS_L:
        e = e + tl.abs(tl.load(eps_l_ptr).to(ACC))  # 1e-6 + |eps_l|
    if SPLIT:
        ps = tl.arange(0, SPLITS_P2)
        ss = tl.sum(tl.load(part_ptr + row * SPLITS + ps, mask=ps < SPLITS, other=0.0), 0)
    elif ONE_BLOCK:
        x = tl.load(x_ptr + offs, mask=offs < L, other=0.0).to(ACC)
        ss = tl.sum(x * x, 0)
    else:
        ss = _sum_squares(x_ptr, 0, L, BLOCK, ACC)
    rstd = _rstd(ss, L, e, ACC)
    if tl.program_id(1) == 0:
        tl.store(rstd_ptr + row, rstd)
    a = tl.load(w_ptr + c).to(ACC) * rstd
    b = tl.load(b_ptr + c).to(ACC)
    tau = 0.0
    if HAS_TAU:
        tau = tl.load(tau_ptr + c).to(ACC)
    if ONE_BLOCK and not SPLIT:
        _store_z(x * a + b, 0, offs, L, s_ptr, z_ptr, ties_ptr, tau, HAS_TAU, ADD, BLOCK)
    else:
        start, end = _chunk(L, CHUNK, SPLIT)
        for s in range(start, end, BLOCK):
            x = tl.load(x_ptr + s + offs, mask=s + offs < end, other=0.0).to(ACC)
            _store_z(x * a + b, s, offs, end, s_ptr, z_ptr, ties_ptr, tau, HAS_TAU, ADD, BLOCK)


@triton.jit
def frn_grad_sums_kernel(x_ptr, dz_ptr, w_ptr, b_ptr, tau_ptr, rstd_ptr, part_ptr, z_ptr, ties_ptr, C, L, CHUNK,
                         SPLITS, TIES_ROW, HAS_TAU: tl.constexpr, ADD: tl.constexpr, BLOCK: tl.constexpr,
                         ACC: tl.constexpr):
    """Long rows, first backward pass: sum dy x, sum dy, sum dz over each (row, chunk)."""
    row = tl.program_id(0)
    c = row % C
    a = tl.load(w_ptr + c).to(ACC) * tl.load(rstd_ptr + row)
    b = tl.load(b_ptr + c).to(ACC)
    tau = 0.0
    if HAS_TAU:
        tau = tl.load(tau_ptr + c).to(ACC)
    start, end = _chunk(L, CHUNK, True)
    base = row.to(tl.int64) * L
    s_dyx, s_dy, s_dz = _grad_sums(x_ptr + base, dz_ptr + base, z_ptr + base, ties_ptr + row.to(tl.int64) * TIES_ROW,
                                   start, end, a, b, tau, HAS_TAU, ADD, BLOCK, ACC)
    out = part_ptr + (row * SPLITS + tl.program_id(1)) * 3
    tl.store(out, s_dyx)
    tl.store(out + 1, s_dy)
    tl.store(out + 2, s_dz)


@triton.jit
def frn_backward_kernel(x_ptr, dz_ptr, dx_ptr, w_ptr, b_ptr, tau_ptr, rstd_ptr, part_ptr, row_sums_ptr, z_ptr,
                        ties_ptr, ds_ptr, C, L, CHUNK, SPLITS, TIES_ROW, HAS_TAU: tl.constexpr, SPLIT: tl.constexpr,
                        SPLITS_P2: tl.constexpr, BLOCK: tl.constexpr, ONE_BLOCK: tl.constexpr, ADD: tl.constexpr,
                        ACC: tl.constexpr):
    """dx = a dy - x a r^2 sum(dy x) / L with a = gamma r (eq. 7), and the row's parameter sums. ADD (a
    block end): dy from the saved z and tie bits, and stored as the shortcut's gradient ds."""
    row = tl.program_id(0)
    c = row % C
    base = row.to(tl.int64) * L
    x_ptr += base
    dz_ptr += base
    dx_ptr += base
    if ADD:
        z_ptr += base
        ds_ptr += base
        ties_ptr += row.to(tl.int64) * TIES_ROW
    offs = tl.arange(0, BLOCK)
    rstd = tl.load(rstd_ptr + row)
    a = tl.load(w_ptr + c).to(ACC) * rstd
    b = tl.load(b_ptr + c).to(ACC)
    tau = 0.0
    if HAS_TAU:
        tau = tl.load(tau_ptr + c).to(ACC)
    if SPLIT:
        ps = tl.arange(0, SPLITS_P2)
        pm = ps < SPLITS
        p = part_ptr + (row * SPLITS + ps) * 3
        s_dyx = tl.sum(tl.load(p, mask=pm, other=0.0), 0)
        s_dy = tl.sum(tl.load(p + 1, mask=pm, other=0.0), 0)
        s_dz = tl.sum(tl.load(p + 2, mask=pm, other=0.0), 0)
    elif ONE_BLOCK:
        x, dz, dy = _load_dy(x_ptr, dz_ptr, z_ptr, ties_ptr, offs, L, a, b, tau, HAS_TAU, ADD, ACC)
        s_dyx = tl.sum(dy * x, 0)
        s_dy = tl.sum(dy, 0)
        s_dz = tl.sum(dz, 0)
    else:
        s_dyx, s_dy, s_dz = _grad_sums(x_ptr, dz_ptr, z_ptr, ties_ptr, 0, L, a, b, tau, HAS_TAU, ADD, BLOCK, ACC)
    dgamma = rstd * s_dyx  # sum dy x_hat
    k = a * rstd * dgamma  # gamma r^3 sum(dy x); r^3 alone underflows fp32 for |x| above about 1e13
    if ONE_BLOCK and not SPLIT:
        tl.store(dx_ptr + offs, (dy * a - x * (k / L)).to(dx_ptr.dtype.element_ty), mask=offs < L)
        if ADD:
            tl.store(ds_ptr + offs, dy.to(ds_ptr.dtype.element_ty), mask=offs < L)
    else:
        start, end = _chunk(L, CHUNK, SPLIT)
        for s in range(start, end, BLOCK):
            idx = s + offs
            x2, _, dy2 = _load_dy(x_ptr, dz_ptr, z_ptr, ties_ptr, idx, end, a, b, tau, HAS_TAU, ADD, ACC)
            tl.store(dx_ptr + idx, (dy2 * a - x2 * (k / L)).to(dx_ptr.dtype.element_ty), mask=idx < end)
            if ADD:
                tl.store(ds_ptr + idx, dy2.to(ds_ptr.dtype.element_ty), mask=idx < end)
    if tl.program_id(1) == 0:
        out = row_sums_ptr + row * 4
        tl.store(out, dgamma)
        tl.store(out + 1, s_dy)  # dbeta
        tl.store(out + 2, s_dz - s_dy)  # dtau: the part of dz the TLU blocked
        tl.store(out + 3, -0.5 * k)  # d eps = sum gamma dy d x_hat/d eps


@triton.jit
def frn_param_grads_kernel(row_sums_ptr, dw_ptr, db_ptr, dtau_ptr, deps_ptr, N, C, HAS_TAU: tl.constexpr,
                           HAS_EPS_L: tl.constexpr, BLOCK_C: tl.constexpr, ACC: tl.constexpr):
    """Program c0: for its BLOCK_C channels, the rows' sums over the batch in order; with a learned eps,
    each channel's part of d eps (summed by the caller)."""
    ch = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    m = ch < C
    dw = tl.zeros([BLOCK_C], dtype=ACC)
    db = tl.zeros([BLOCK_C], dtype=ACC)
    dtau = tl.zeros([BLOCK_C], dtype=ACC)
    deps = tl.zeros([BLOCK_C], dtype=ACC)
    for n in range(0, N):
        p = row_sums_ptr + (n * C + ch) * 4
        dw += tl.load(p, mask=m, other=0.0)
        db += tl.load(p + 1, mask=m, other=0.0)
        dtau += tl.load(p + 2, mask=m, other=0.0)
        deps += tl.load(p + 3, mask=m, other=0.0)
    tl.store(dw_ptr + ch, dw.to(dw_ptr.dtype.element_ty), mask=m)
    tl.store(db_ptr + ch, db.to(db_ptr.dtype.element_ty), mask=m)
    if HAS_TAU:
        tl.store(dtau_ptr + ch, dtau.to(dtau_ptr.dtype.element_ty), mask=m)
    if HAS_EPS_L:
        tl.store(deps_ptr + ch, deps, mask=m)


@triton.jit
def tlu_forward_kernel(y_ptr, z_ptr, tau_ptr, ties_ptr, C, L, BLOCKS, BLOCK: tl.constexpr, ACC: tl.constexpr):
    """z = max(y, tau), tau already in y's dtype (as TLUFunction compares); program (row, block). The
    max runs in ACC (fp32, fp64 for fp64), exact for values of y's dtype (the interpreter compares bf16
    as integers), NaN kept. The ties y == tau go to ties_ptr, one bit per element: BLOCK / 8 bytes per
    (row, block)."""
    row = tl.program_id(0)
    blk = tl.program_id(1)
    idx = blk * BLOCK + tl.arange(0, BLOCK)
    m = idx < L
    base = row.to(tl.int64) * L
    tau = tl.load(tau_ptr + row % C).to(ACC)
    y = tl.load(y_ptr + base + idx, mask=m, other=0.0).to(ACC)
    z = tl.maximum(y, tau, propagate_nan=tl.PropagateNan.ALL)
    tl.store(z_ptr + base + idx, z.to(z_ptr.dtype.element_ty), mask=m)
    ties = tl.reshape(((y == tau) & m).to(tl.int32), (BLOCK // 8, 8))
    packed = tl.sum(ties << tl.arange(0, 8)[None, :], axis=1)
    tl.store(ties_ptr + (row.to(tl.int64) * BLOCKS + blk) * (BLOCK // 8) + tl.arange(0, BLOCK // 8),
             packed.to(tl.uint8))


@triton.jit
def tlu_backward_kernel(z_ptr, dz_ptr, dy_ptr, tau_ptr, ties_ptr, part_ptr, C, L, BLOCKS, BLOCK: tl.constexpr,
                        ACC: tl.constexpr):
    """dy = dz where z != tau (y > tau, or y NaN: torch.max's gradient passes there too), half of it at
    a tie y == tau (torch.max's rule), and per (row, block) the sum of the rest, which trains tau."""
    row = tl.program_id(0)
    blk = tl.program_id(1)
    idx = blk * BLOCK + tl.arange(0, BLOCK)
    m = idx < L
    base = row.to(tl.int64) * L
    tau = tl.load(tau_ptr + row % C).to(ACC)
    z = tl.load(z_ptr + base + idx, mask=m, other=0.0).to(ACC)
    dz = tl.load(dz_ptr + base + idx, mask=m, other=0.0).to(ACC)
    packed = tl.load(ties_ptr + (row.to(tl.int64) * BLOCKS + blk) * (BLOCK // 8) + tl.arange(0, BLOCK // 8))
    tie = tl.reshape((packed.to(tl.int32)[:, None] >> tl.arange(0, 8)[None, :]) & 1, (BLOCK,)) != 0
    dy = tl.where(z != tau, dz, tl.where(tie, dz * 0.5, 0.0))
    tl.store(dy_ptr + base + idx, dy.to(dy_ptr.dtype.element_ty), mask=m)
    tl.store(part_ptr + row * BLOCKS + blk, tl.sum(tl.where(m, dz - dy, 0.0), 0))


@triton.jit
def channel_sums_kernel(part_ptr, out_ptr, N, C, K, BLOCK_C: tl.constexpr, ACC: tl.constexpr):
    """Program c0: out[c] = sum over n and k of part[(n C + c) K + k] for its BLOCK_C channels, in that
    order (no atomics)."""
    ch = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    m = ch < C
    acc = tl.zeros([BLOCK_C], dtype=ACC)
    for n in range(0, N):
        for k in range(0, K):
            acc += tl.load(part_ptr + (n * C + ch) * K + k, mask=m, other=0.0)
    tl.store(out_ptr + ch, acc.to(out_ptr.dtype.element_ty), mask=m)
