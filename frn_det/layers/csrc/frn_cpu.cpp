// Fused CPU FRN (+TLU) with its autograd: the math of frn_forward_math and frn_backward_math in
// frn_det/layers/path_torch.py (eq. 1-7), its loops in frn_kernels.h; here the dtype dispatch, the
// threads and autograd, in C++: a Python autograd.Function costs more than the kernels on small maps.
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

#include "frn_kernels.h"

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using namespace frn_kernels;

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
