// The loops of frn_cpu.cpp's FRN (+TLU): forward and backward over (sample, channel) planes or (N, C)
// rows, and the residual block end max(FRN(x) + s, tau), on raw pointers; a tie y == tau is split in
// half as torch.max splits it. Work goes one plane at a time, so a plane comes from memory once and
// its later passes hit the cache. Backward keeps only x (and the parameters) and recomputes
// 1/sqrt(nu2 + eps), bit for bit, so it sees the forward's y and its ties.
#pragma once

#include <c10/util/BFloat16.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <type_traits>

// Kernels are compiled for AVX-512 and AVX2 besides the baseline, picked when the library loads
// (GCC/Clang target_clones, an ifunc: glibc on x86-64); helpers are inlined into each copy.
#if defined(__GNUC__) || defined(__clang__)
#define FRN_INLINE inline __attribute__((always_inline))
#else
#define FRN_INLINE inline
#endif
#if defined(__x86_64__) && defined(__GLIBC__) && (defined(__GNUC__) || defined(__clang__))
#define FRN_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define FRN_MULTIVERSION
#endif

namespace frn_kernels {

// Independent accumulators per sum: a float sum only vectorizes when we fix its order.
constexpr int64_t kLanes = 16;

// Pairwise, unrolled by the template: vectorizes too.
template <int64_t W = kLanes / 2, typename A>
FRN_INLINE A lanes_sum(A (&acc)[kLanes]) {
  for (int64_t j = 0; j < W; ++j) acc[j] += acc[j + W];
  if constexpr (W > 1) return lanes_sum<W / 2>(acc);
  return acc[0];
}

// Sums over [i0, i0 + len) of the K terms terms(i) returns, len a multiple of kLanes: kLanes
// interleaved partial sums, then lanes_sum.
template <int K, typename A, typename F>
FRN_INLINE std::array<A, K> block_sums(int64_t i0, int64_t len, const F& terms) {
  A acc[K][kLanes] = {};
  for (int64_t i = 0; i < len; i += kLanes)
    for (int64_t j = 0; j < kLanes; ++j) {
      const std::array<A, K> t = terms(i0 + i + j);
      for (int k = 0; k < K; ++k) acc[k][j] += t[k];
    }
  std::array<A, K> s;
  for (int k = 0; k < K; ++k) s[k] = lanes_sum(acc[k]);
  return s;
}

// Sums over i in [0, n) of the K terms terms(i) returns, in a fixed order: block_sums over blocks of
// kBlock elements, whose totals add up in double when there are several, so that the rounding stays
// one block's whatever n is (one float sum in 16 lanes drifts by 2e-3 over a 2048x4096 plane); then
// the tail (under kLanes elements). Loop trip counts are known up front: with -fwrapv (setup.py's
// Python flags) a loop on i + kLanes <= end did not vectorize.
constexpr int64_t kBlock = kLanes * 64;

template <int K, typename A, typename F>
FRN_INLINE std::array<A, K> plane_sums(int64_t n, const F& terms) {
  std::array<A, K> s{};
  const int64_t lanes_end = n - n % kLanes;
  if (lanes_end > kBlock) {
    std::array<double, K> d{};
    for (int64_t i = 0; i < lanes_end; i += kBlock) {
      const std::array<A, K> b = block_sums<K, A>(i, std::min(kBlock, lanes_end - i), terms);
      for (int k = 0; k < K; ++k) d[k] += static_cast<double>(b[k]);
    }
    for (int k = 0; k < K; ++k) s[k] = static_cast<A>(d[k]);
  } else if (lanes_end > 0) {
    s = block_sums<K, A>(0, lanes_end, terms);
  }
  for (int64_t i = lanes_end; i < n; ++i) {
    const std::array<A, K> t = terms(i);
    for (int k = 0; k < K; ++k) s[k] += t[k];
  }
  return s;
}

// x[i] in the math dtype A. bf16 by hand: c10's conversion does not vectorize in plane_sums.
template <typename A, typename T>
FRN_INLINE A load(const T* x, int64_t i) {
  if constexpr (std::is_same_v<T, c10::BFloat16>) {
    return __builtin_bit_cast(float, static_cast<uint32_t>(x[i].x) << 16);
  } else {
    return static_cast<A>(x[i]);
  }
}

template <typename T, typename A>
FRN_INLINE A inv_rms(const T* x, int64_t hw, A eps) {
  const auto s = plane_sums<1, A>(hw, [&](int64_t i) {
    const A v = load<A>(x, i);
    return std::array<A, 1>{v * v};
  });
  // an empty plane (H or W = 0) has nu2 = 0: its r stays finite, and its gradients are zeros
  return A(1) / std::sqrt(s[0] / A(std::max<int64_t>(hw, 1)) + eps);
}

template <typename A>
struct Params {  // per channel, in the math dtype; no TLU: tau = -inf, as max(y, -inf) = y
  const A *g, *b, *t;
  A eps;
  int64_t channels, hw;
};

// Eq. 1-3 for one element, a = gamma * r: z = max(a x + b, tau).
template <typename A>
FRN_INLINE A frn_z(A a, A x, A b, A t) {
  const A y = a * x + b;
  return y < t ? t : y;
}

// dL/dy: the share of dz that passed z = max(y, tau), torch.max's rule: halves at ties (eq. 4).
template <typename A>
FRN_INLINE A frn_dy(A a, A x, A b, A t, A dz) {
  const A y = a * x + b;
  return dz * A(0.5) * (A(y >= t) + A(y > t));
}

// Stores plane p's sum dy x_hat, sum dy, sum dz (1 - share) (eq. 5-6) and d eps into st[k][p], and
// returns k for dx = a dy - k x, i.e. r (dxhat - x_hat mean(x_hat dxhat)) (eq. 7). k = (gamma r^2)
// (sum dy x_hat): r^3 alone underflows fp32 for |x| above about 1e13 (FRN is scale invariant).
template <typename A>
FRN_INLINE A plane_grads(A* st, int64_t planes, int64_t p, A a, A r, A hw, A s_dyx, A s_dy, A s_dz) {
  const A dgamma = r * s_dyx, k = a * r * dgamma;
  st[p] = dgamma;
  st[planes + p] = s_dy;
  st[2 * planes + p] = s_dz - s_dy;
  st[3 * planes + p] = A(-0.5) * k;  // sum dxhat * d x_hat / d eps
  return k / hw;
}

// __restrict__: no runtime overlap checks (the compiler gives up on them when there are many arrays).
template <typename T, typename A>
FRN_MULTIVERSION void forward_planes(const T* __restrict__ x, T* __restrict__ z, Params<A> q,
                                     int64_t p0, int64_t p1) {
  for (int64_t p = p0, c = p0 % q.channels; p < p1; ++p, c = c + 1 == q.channels ? 0 : c + 1) {
    const T* xp = x + p * q.hw;
    T* zp = z + p * q.hw;
    const A a = q.g[c] * inv_rms(xp, q.hw, q.eps);
    for (int64_t i = 0; i < q.hw; ++i) zp[i] = static_cast<T>(frn_z(a, load<A>(xp, i), q.b[c], q.t[c]));
  }
}

template <typename T, typename A>
FRN_MULTIVERSION void backward_planes(const T* __restrict__ dz, const T* __restrict__ x,
                                      T* __restrict__ dx, A* __restrict__ st, int64_t planes,
                                      Params<A> q, int64_t p0, int64_t p1) {
  for (int64_t p = p0, c = p0 % q.channels; p < p1; ++p, c = c + 1 == q.channels ? 0 : c + 1) {
    const int64_t off = p * q.hw;
    const T *xp = x + off, *dzp = dz + off;
    const A r = inv_rms(xp, q.hw, q.eps), a = q.g[c] * r, b = q.b[c], t = q.t[c];
    const auto [s_dyx, s_dy, s_dz] = plane_sums<3, A>(q.hw, [&](int64_t i) {
      const A xv = load<A>(xp, i), d = load<A>(dzp, i), dy = frn_dy(a, xv, b, t, d);
      return std::array<A, 3>{dy * xv, dy, d};
    });
    const A k = plane_grads(st, planes, p, a, r, A(q.hw), s_dyx, s_dy, s_dz);
    T* dxp = dx + off;
    for (int64_t i = 0; i < q.hw; ++i) {
      const A xv = load<A>(xp, i);
      dxp[i] = static_cast<T>(a * frn_dy(a, xv, b, t, load<A>(dzp, i)) - k * xv);
    }
  }
}

// (N, C) inputs have one-element planes: the loops above would not vectorize, these run across C.
template <typename T, typename A>
FRN_MULTIVERSION void forward_rows(const T* __restrict__ x, T* __restrict__ z, Params<A> q,
                                   int64_t n0, int64_t n1) {
  const A *__restrict__ g = q.g, *__restrict__ b = q.b, *__restrict__ t = q.t;
  for (int64_t p = n0 * q.channels; p < n1 * q.channels; p += q.channels)
    for (int64_t c = 0; c < q.channels; ++c) {
      const A xv = load<A>(x, p + c);
      z[p + c] = static_cast<T>(frn_z(g[c] / std::sqrt(xv * xv + q.eps), xv, b[c], t[c]));
    }
}

template <typename T, typename A>
FRN_MULTIVERSION void backward_rows(const T* __restrict__ dz, const T* __restrict__ x,
                                    T* __restrict__ dx, A* __restrict__ st, int64_t planes,
                                    Params<A> q, int64_t n0, int64_t n1) {
  const A *__restrict__ g = q.g, *__restrict__ b = q.b, *__restrict__ t = q.t;
  for (int64_t p = n0 * q.channels; p < n1 * q.channels; p += q.channels)
    for (int64_t c = 0; c < q.channels; ++c) {
      const A xv = load<A>(x, p + c), d = load<A>(dz, p + c);
      const A r = A(1) / std::sqrt(xv * xv + q.eps), a = g[c] * r;
      const A dy = frn_dy(a, xv, b[c], t[c], d);
      const A k = plane_grads(st, planes, p + c, a, r, A(1), dy * xv, dy, d);
      dx[p + c] = static_cast<T>(a * dy - k * xv);
    }
}

// The end of a residual block in one pass: z = max(FRN(x) + s, tau), FRN without TLU. y = a x + b + s
// is rounded to T and compared with tau in T, as TLU compares in its input's dtype. Forward keeps each
// plane's r, z (which the next layer keeps anyway) and one bit per element, set at the ties y == tau
// (each plane's bits start at a byte, so that threads never share one): where z != tau the gradient
// passed, at a tie half of it, elsewhere none.
template <typename T, typename A>
FRN_INLINE A rounded(A v) {
  return static_cast<A>(static_cast<T>(v));
}

template <typename T, typename A>
FRN_MULTIVERSION void add_tlu_forward_planes(const T* __restrict__ x, const T* __restrict__ s,
                                             T* __restrict__ z, uint8_t* __restrict__ ties,
                                             A* __restrict__ rs, Params<A> q, int64_t p0, int64_t p1) {
  const int64_t bytes = (q.hw + 7) / 8;
  for (int64_t p = p0, c = p0 % q.channels; p < p1; ++p, c = c + 1 == q.channels ? 0 : c + 1) {
    const int64_t off = p * q.hw;
    const T *xp = x + off, *sp = s + off;
    T* zp = z + off;
    uint8_t* tp = ties + p * bytes;
    const A r = inv_rms(xp, q.hw, q.eps), a = q.g[c] * r, b = q.b[c], t = rounded<T>(q.t[c]);
    rs[p] = r;
    const auto tie = [&](int64_t i) {  // writes z[i], returns y == tau
      const A y = rounded<T>(a * load<A>(xp, i) + b + load<A>(sp, i));
      zp[i] = static_cast<T>(y < t ? t : y);  // keeps NaN, as torch.max does
      return static_cast<uint8_t>(y == t);
    };
    int64_t j = 0;
    for (; 8 * j + 8 <= q.hw; ++j) {  // whole bytes: a fixed trip count, unrolled
      uint8_t bits = 0;
      for (int k = 0; k < 8; ++k) bits |= tie(8 * j + k) << k;
      tp[j] = bits;
    }
    if (j < bytes) {
      uint8_t bits = 0;
      for (int64_t k = 0; 8 * j + k < q.hw; ++k) bits |= tie(8 * j + k) << k;
      tp[j] = bits;
    }
  }
}

// Backward: dy = dz * share is the shortcut's gradient, then FRN's (eq. 5-7) with the saved r.
template <typename T, typename A>
FRN_MULTIVERSION void add_tlu_backward_planes(const T* __restrict__ dz, const T* __restrict__ x,
                                              const T* __restrict__ z, const uint8_t* __restrict__ ties,
                                              const A* __restrict__ rs, T* __restrict__ dx,
                                              T* __restrict__ ds, A* __restrict__ st, int64_t planes,
                                              Params<A> q, int64_t p0, int64_t p1) {
  const int64_t bytes = (q.hw + 7) / 8;
  for (int64_t p = p0, c = p0 % q.channels; p < p1; ++p, c = c + 1 == q.channels ? 0 : c + 1) {
    const int64_t off = p * q.hw;
    const T *xp = x + off, *dzp = dz + off, *zp = z + off;
    const uint8_t* tp = ties + p * bytes;
    T *dsp = ds + off, *dxp = dx + off;
    const A r = rs[p], a = q.g[c] * r, t = rounded<T>(q.t[c]);
    // dy = dz * share; branchless: z != tau and a tie bit never meet
    const auto dy = [&](int64_t i, uint8_t bits, int k) {
      const A share = A(load<A>(zp, i) != t) + A(0.5) * A((bits >> k) & 1);
      dsp[i] = static_cast<T>(load<A>(dzp, i) * share);
    };
    int64_t j = 0;
    for (; 8 * j + 8 <= q.hw; ++j)  // whole bytes: a fixed trip count, unrolled
      for (int k = 0; k < 8; ++k) dy(8 * j + k, tp[j], k);
    for (int k = 0; 8 * j + k < q.hw; ++k) dy(8 * j + k, tp[j], k);
    const auto [s_dyx, s_dy, s_dz] = plane_sums<3, A>(q.hw, [&](int64_t i) {
      const A dy = load<A>(dsp, i), d = load<A>(dzp, i);
      return std::array<A, 3>{dy * load<A>(xp, i), dy, d};
    });
    const A k = plane_grads(st, planes, p, a, r, A(q.hw), s_dyx, s_dy, s_dz);
    for (int64_t i = 0; i < q.hw; ++i) dxp[i] = static_cast<T>(a * load<A>(dsp, i) - k * load<A>(xp, i));
  }
}

}  // namespace frn_kernels

#undef FRN_INLINE
#undef FRN_MULTIVERSION
