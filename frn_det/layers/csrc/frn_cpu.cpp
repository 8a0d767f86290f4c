// Fused CPU FRN (+TLU) with its autograd: the math of frn_forward_math and frn_backward_math in
// frn_det/layers/path_torch.py (eq. 1-7), a tie y == tau split in half as torch.max splits it. Work
// goes one (sample, channel) plane at a time, so a plane comes from memory once and its later passes
// hit the cache. Backward keeps only x (and the parameters) and recomputes 1/sqrt(nu2 + eps), bit
// for bit, so it sees the forward's y and its ties.
// Autograd lives here too: a Python autograd.Function costs more than the kernels on small maps.
// Importing the module registers torch.ops.frn_det.frn(x, weight, bias, tau?, eps_l?, eps) and
// torch.ops.frn_det.frn_add_tlu(x, shortcut, weight, bias, tau, eps_l?, eps), max(FRN(x) + shortcut,
// tau) at a residual block's end, where eps is the effective eps and eps_l, when given, only receives
// its gradient.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/full.h>
#include <Python.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <type_traits>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

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

// Independent accumulators per sum: a float sum only vectorizes when we fix its order.
constexpr int64_t kLanes = 16;

// Pairwise, unrolled by the template: vectorizes too.
template <int64_t W = kLanes / 2, typename A>
FRN_INLINE A lanes_sum(A (&acc)[kLanes]) {
  for (int64_t j = 0; j < W; ++j) acc[j] += acc[j + W];
  if constexpr (W > 1) return lanes_sum<W / 2>(acc);
  return acc[0];
}

// Sums over i in [0, n) of the K terms terms(i) returns, in a fixed order: kLanes interleaved
// partial sums (vectorized), then the tail. Small planes (n < kLanes) skip the lanes.
template <int K, typename A, typename F>
FRN_INLINE std::array<A, K> plane_sums(int64_t n, const F& terms) {
  std::array<A, K> s{};
  int64_t i = 0;
  if (n >= kLanes) {
    A acc[K][kLanes] = {};
    for (; i + kLanes <= n; i += kLanes)
      for (int64_t j = 0; j < kLanes; ++j) {
        const std::array<A, K> t = terms(i + j);
        for (int k = 0; k < K; ++k) acc[k][j] += t[k];
      }
    for (int k = 0; k < K; ++k) s[k] = lanes_sum(acc[k]);
  }
  for (; i < n; ++i) {
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
  return A(1) / std::sqrt(s[0] / A(hw) + eps);
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
// returns k for dx = a dy - k x, i.e. r (dxhat - x_hat mean(x_hat dxhat)) (eq. 7).
template <typename A>
FRN_INLINE A plane_grads(A* st, int64_t planes, int64_t p, A a, A r, A hw, A s_dyx, A s_dy, A s_dz) {
  st[p] = r * s_dyx;
  st[planes + p] = s_dy;
  st[2 * planes + p] = s_dz - s_dy;
  st[3 * planes + p] = A(-0.5) * a * r * r * s_dyx;  // sum dxhat * d x_hat / d eps
  return a * r * r * s_dyx / hw;
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

int64_t plane_size(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && (x.dim() == 2 || x.dim() == 4),
              "frn: expected a 2-D or 4-D CPU tensor");
  return x.dim() == 4 ? x.size(2) * x.size(3) : 1;
}

// Planes (or rows) per task: about 32k elements, ATen's grain size for elementwise work.
int64_t grain(int64_t size) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(size, 1)); }

at::Tensor math_param(const at::Tensor& p, const at::Tensor& x) {
  TORCH_CHECK(p.numel() == x.size(1), "frn: expected one parameter per channel");
  return p.to(at::toOpMathType(x.scalar_type())).contiguous();
}

// Calls f(scalar_t{}, Params<opmath>{...}) for x's dtype; the parameters are kept alive by `ps`.
template <typename F>
void with_params(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                 const std::optional<at::Tensor>& tau, double eps, const F& f) {
  const int64_t hw = plane_size(x);
  at::Tensor ps[3] = {math_param(w, x), math_param(b, x),
                      tau ? math_param(*tau, x) : math_param(at::full({x.size(1)}, -INFINITY), x)};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "frn", [&] {
    using A = at::opmath_type<scalar_t>;
    Params<A> q{ps[0].data_ptr<A>(), ps[1].data_ptr<A>(), ps[2].data_ptr<A>(), A(eps), x.size(1), hw};
    f(scalar_t{}, q);
  });
}

at::Tensor run_forward(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                       const std::optional<at::Tensor>& tau, double eps) {
  at::Tensor z = at::empty_like(x);
  with_params(x, w, b, tau, eps, [&](auto s, auto q) {
    using T = decltype(s);
    const T* xs = x.const_data_ptr<T>();
    T* zs = z.data_ptr<T>();
    if (x.dim() == 2)
      at::parallel_for(0, x.size(0), grain(q.channels),
                       [&](int64_t n0, int64_t n1) { forward_rows(xs, zs, q, n0, n1); });
    else
      at::parallel_for(0, x.size(0) * x.size(1), grain(q.hw),
                       [&](int64_t p0, int64_t p1) { forward_planes(xs, zs, q, p0, p1); });
  });
  return z;
}

// The parameter gradients from plane_grads' per-plane stats: sums over the batch in a fixed order,
// so that they are deterministic.
template <typename A>
void sum_over_batch(const A* st, int64_t planes, int64_t channels, A* dp, A* deps) {
  std::fill(dp, dp + 3 * channels, A(0));
  for (int64_t k = 0; k < 3; ++k)
    for (int64_t p = 0; p < planes; p += channels)
      for (int64_t c = 0; c < channels; ++c) dp[k * channels + c] += st[k * planes + p + c];
  A de = 0;
  for (int64_t p = 0; p < planes; ++p) de += st[3 * planes + p];
  *deps = de;
}

// dx, and d weight, d bias, d tau (per channel, math dtype) and d eps (0-d).
variable_list run_backward(const at::Tensor& dz, const at::Tensor& x, const at::Tensor& w,
                           const at::Tensor& b, const std::optional<at::Tensor>& tau, double eps) {
  const int64_t planes = x.size(0) * x.size(1), channels = x.size(1);
  at::Tensor dx = at::empty_like(x);
  auto opts = x.options().dtype(at::toOpMathType(x.scalar_type()));
  at::Tensor stats = at::empty({4, planes}, opts), dparams = at::empty({3, channels}, opts);
  at::Tensor deps = at::empty({}, opts);
  with_params(x, w, b, tau, eps, [&](auto s, auto q) {
    using T = decltype(s);
    using A = decltype(q.eps);
    const T *xs = x.const_data_ptr<T>(), *dzs = dz.const_data_ptr<T>();
    T* dxs = dx.data_ptr<T>();
    A* st = stats.data_ptr<A>();
    if (x.dim() == 2)
      at::parallel_for(0, x.size(0), grain(channels), [&](int64_t n0, int64_t n1) {
        backward_rows(dzs, xs, dxs, st, planes, q, n0, n1);
      });
    else
      at::parallel_for(0, planes, grain(q.hw), [&](int64_t p0, int64_t p1) {
        backward_planes(dzs, xs, dxs, st, planes, q, p0, p1);
      });
    sum_over_batch(st, planes, channels, dparams.data_ptr<A>(), deps.data_ptr<A>());
  });
  return {dx, dparams[0], dparams[1], dparams[2], deps};
}

void check_add_tlu(const at::Tensor& x, const at::Tensor& s) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 4, "frn_add_tlu: expected a 4-D CPU tensor");
  TORCH_CHECK(s.sizes() == x.sizes() && s.scalar_type() == x.scalar_type(),
              "frn_add_tlu: the shortcut must have x's shape and dtype");
}

// z, r (N*C, math dtype) and the tie bits; x and s contiguous.
std::array<at::Tensor, 3> run_add_tlu_forward(const at::Tensor& x, const at::Tensor& s, const at::Tensor& w,
                                              const at::Tensor& b, const at::Tensor& tau, double eps) {
  check_add_tlu(x, s);
  const int64_t planes = x.size(0) * x.size(1);
  at::Tensor z = at::empty_like(x);
  at::Tensor r = at::empty({planes}, x.options().dtype(at::toOpMathType(x.scalar_type())));
  at::Tensor ties = at::empty({planes * ((plane_size(x) + 7) / 8)}, x.options().dtype(at::kByte));
  with_params(x, w, b, tau, eps, [&](auto sc, auto q) {
    using T = decltype(sc);
    using A = decltype(q.eps);
    const T *xs = x.const_data_ptr<T>(), *ss = s.const_data_ptr<T>();
    T* zs = z.data_ptr<T>();
    uint8_t* ts = ties.data_ptr<uint8_t>();
    A* rs = r.data_ptr<A>();
    at::parallel_for(0, planes, grain(q.hw),
                     [&](int64_t p0, int64_t p1) { add_tlu_forward_planes(xs, ss, zs, ts, rs, q, p0, p1); });
  });
  return {z, r, ties};
}

// dx, d shortcut, d weight, d bias, d tau and d eps.
variable_list run_add_tlu_backward(const at::Tensor& dz, const at::Tensor& x, const at::Tensor& r,
                                   const at::Tensor& z, const at::Tensor& ties, const at::Tensor& w,
                                   const at::Tensor& b, const at::Tensor& tau) {
  const int64_t planes = x.size(0) * x.size(1), channels = x.size(1);
  at::Tensor dx = at::empty_like(x), ds = at::empty_like(x);
  auto opts = x.options().dtype(at::toOpMathType(x.scalar_type()));
  at::Tensor stats = at::empty({4, planes}, opts), dparams = at::empty({3, channels}, opts);
  at::Tensor deps = at::empty({}, opts);
  with_params(x, w, b, tau, 0.0, [&](auto sc, auto q) {
    using T = decltype(sc);
    using A = decltype(q.eps);
    const T *xs = x.const_data_ptr<T>(), *dzs = dz.const_data_ptr<T>(), *zs = z.const_data_ptr<T>();
    const uint8_t* ts = ties.const_data_ptr<uint8_t>();
    const A* rs = r.const_data_ptr<A>();
    T *dxs = dx.data_ptr<T>(), *dss = ds.data_ptr<T>();
    A* st = stats.data_ptr<A>();
    at::parallel_for(0, planes, grain(q.hw), [&](int64_t p0, int64_t p1) {
      add_tlu_backward_planes(dzs, xs, zs, ts, rs, dxs, dss, st, planes, q, p0, p1);
    });
    sum_over_batch(st, planes, channels, dparams.data_ptr<A>(), deps.data_ptr<A>());
  });
  return {dx, ds, dparams[0], dparams[1], dparams[2], deps};
}

std::optional<at::Tensor> defined(const at::Tensor& t) {
  return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
}

struct FRNFunction : torch::autograd::Function<FRNFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            const at::Tensor& b, const std::optional<at::Tensor>& tau,
                            const std::optional<at::Tensor>& eps_l, double eps) {
    at::Tensor xc = x.contiguous();
    ctx->save_for_backward({xc, w, b, tau.value_or(at::Tensor()), eps_l.value_or(at::Tensor())});
    ctx->saved_data["eps"] = eps;
    return run_forward(xc, w, b, tau, eps);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const at::Tensor &x = s[0], &w = s[1], &b = s[2], &tau = s[3], &eps_l = s[4];
    const double eps = ctx->saved_data["eps"].toDouble();
    auto g = run_backward(grads[0].contiguous(), x, w, b, defined(tau), eps);
    return {g[0],
            g[1].to(w.scalar_type()),
            g[2].to(b.scalar_type()),
            tau.defined() ? g[3].to(tau.scalar_type()) : at::Tensor(),
            eps_l.defined() ? g[4].mul(eps_l.sign()).to(eps_l.scalar_type()) : at::Tensor(),  // d|e|/de
            at::Tensor()};
  }
};

at::Tensor frn_autograd(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                        const std::optional<at::Tensor>& tau, const std::optional<at::Tensor>& eps_l,
                        double eps) {
  return FRNFunction::apply(x, w, b, tau, eps_l, eps);
}

at::Tensor frn_inference(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                         const std::optional<at::Tensor>& tau, const std::optional<at::Tensor>&,
                         double eps) {
  return run_forward(x.contiguous(), w, b, tau, eps);
}

struct FRNAddTLUFunction : torch::autograd::Function<FRNAddTLUFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& s, const at::Tensor& w,
                            const at::Tensor& b, const at::Tensor& tau, const std::optional<at::Tensor>& eps_l,
                            double eps) {
    at::Tensor xc = x.contiguous();
    auto [z, r, ties] = run_add_tlu_forward(xc, s.contiguous(), w, b, tau, eps);
    ctx->save_for_backward({xc, r, z, ties, w, b, tau, eps_l.value_or(at::Tensor())});
    return z;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto v = ctx->get_saved_variables();
    const at::Tensor &x = v[0], &r = v[1], &z = v[2], &ties = v[3], &w = v[4], &b = v[5], &tau = v[6];
    const at::Tensor& eps_l = v[7];
    auto g = run_add_tlu_backward(grads[0].contiguous(), x, r, z, ties, w, b, tau);
    return {g[0],
            g[1],
            g[2].to(w.scalar_type()),
            g[3].to(b.scalar_type()),
            g[4].to(tau.scalar_type()),
            eps_l.defined() ? g[5].mul(eps_l.sign()).to(eps_l.scalar_type()) : at::Tensor(),  // d|e|/de
            at::Tensor()};
  }
};

at::Tensor frn_add_tlu_autograd(const at::Tensor& x, const at::Tensor& s, const at::Tensor& w, const at::Tensor& b,
                                const at::Tensor& tau, const std::optional<at::Tensor>& eps_l, double eps) {
  return FRNAddTLUFunction::apply(x, s, w, b, tau, eps_l, eps);
}

at::Tensor frn_add_tlu_inference(const at::Tensor& x, const at::Tensor& s, const at::Tensor& w, const at::Tensor& b,
                                 const at::Tensor& tau, const std::optional<at::Tensor>&, double eps) {
  return run_add_tlu_forward(x.contiguous(), s.contiguous(), w, b, tau, eps)[0];
}

}  // namespace

TORCH_LIBRARY(frn_det, m) {
  m.def("frn(Tensor x, Tensor weight, Tensor bias, Tensor? tau, Tensor? eps_l, float eps) -> Tensor");
  m.def("frn_add_tlu(Tensor x, Tensor shortcut, Tensor weight, Tensor bias, Tensor tau, Tensor? eps_l, "
        "float eps) -> Tensor");
}
TORCH_LIBRARY_IMPL(frn_det, CPU, m) {  // inference_mode
  m.impl("frn", &frn_inference);
  m.impl("frn_add_tlu", &frn_add_tlu_inference);
}
TORCH_LIBRARY_IMPL(frn_det, AutogradCPU, m) {
  m.impl("frn", &frn_autograd);
  m.impl("frn_add_tlu", &frn_add_tlu_autograd);
}

// An importable, empty Python module: importing it loads the library, which registers the op.
static PyModuleDef frn_cpu_module = {PyModuleDef_HEAD_INIT, "_frn_cpu", nullptr, -1, nullptr};
PyMODINIT_FUNC PyInit__frn_cpu() { return PyModule_Create(&frn_cpu_module); }
