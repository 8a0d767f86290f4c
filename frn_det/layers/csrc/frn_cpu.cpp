// Fused CPU FRN (+TLU) with its autograd: the math of frn_forward_math and frn_backward_math in
// frn_det/layers/path_torch.py (eq. 1-7), its loops in frn_kernels.h; here the dtype dispatch, the
// threads and autograd, in C++: a Python autograd.Function costs more than the kernels on small maps.
// Importing the module registers torch.ops.frn_det.frn(x, weight, bias, tau?, eps_l?, eps) and
// torch.ops.frn_det.frn_add_tlu(x, shortcut, weight, bias, tau, eps_l?, eps), max(FRN(x) + shortcut,
// tau) at a residual block's end, where eps is the effective eps and eps_l, when given, only receives
// its gradient. Their kernels are ops of their own (frn_backward, frn_add_tlu_forward,
// frn_add_tlu_backward), called below autograd through the dispatcher, so that torch.compile's fake
// tensors reach the fake kernels path_cpp registers. A second derivative (create_graph) comes from
// the formula in ATen ops and its autograd.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/full.h>
#include <Python.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <vector>

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
// so that they are deterministic, in double, so that many samples (R-CNN heads' ROIs) add no drift.
template <typename A>
void sum_over_batch(const A* st, int64_t planes, int64_t channels, A* dp, A* deps) {
  std::vector<double> sums(3 * channels, 0.0);
  for (int64_t k = 0; k < 3; ++k)
    for (int64_t p = 0; p < planes; p += channels)
      for (int64_t c = 0; c < channels; ++c) sums[k * channels + c] += st[k * planes + p + c];
  std::copy(sums.begin(), sums.end(), dp);
  double de = 0;
  for (int64_t p = 0; p < planes; ++p) de += st[3 * planes + p];
  *deps = static_cast<A>(de);
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

// The ops' plain kernels; they take any layout.
at::Tensor frn_kernel(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                      const std::optional<at::Tensor>& tau, const std::optional<at::Tensor>&, double eps) {
  return run_forward(x.contiguous(), w, b, tau, eps);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> frn_backward_kernel(
    const at::Tensor& dz, const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
    const std::optional<at::Tensor>& tau, double eps) {
  auto g = run_backward(dz.contiguous(), x.contiguous(), w, b, tau, eps);
  return {g[0], g[1], g[2], g[3], g[4]};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> add_tlu_forward_kernel(const at::Tensor& x, const at::Tensor& s,
                                                                      const at::Tensor& w, const at::Tensor& b,
                                                                      const at::Tensor& tau, double eps) {
  auto [z, r, ties] = run_add_tlu_forward(x.contiguous(), s.contiguous(), w, b, tau, eps);
  return {z, r, ties};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> add_tlu_backward_kernel(
    const at::Tensor& dz, const at::Tensor& x, const at::Tensor& r, const at::Tensor& z, const at::Tensor& ties,
    const at::Tensor& w, const at::Tensor& b, const at::Tensor& tau) {
  auto g = run_add_tlu_backward(dz.contiguous(), x.contiguous(), r, z, ties, w, b, tau);
  return {g[0], g[1], g[2], g[3], g[4], g[5]};
}

template <typename Sig>
c10::TypedOperatorHandle<Sig> op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

// z of eq. 1-3 in differentiable ATen ops, as frn_reference writes it (nu2 = 0 for an empty plane);
// FRN alone when tau is undefined. eps is the effective eps; a learned one adds eps_l's gradient.
at::Tensor formula(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& tau,
                   const at::Tensor& eps_l, double eps) {
  const at::Tensor xf = x.to(at::toOpMathType(x.scalar_type()));
  const std::vector<int64_t> shape = x.dim() == 4 ? std::vector<int64_t>{1, -1, 1, 1} : std::vector<int64_t>{1, -1};
  at::Tensor v = x.dim() == 4 ? xf.square().sum({2, 3}, true).div(double(std::max<int64_t>(plane_size(x), 1)))
                              : xf.square();
  v = v.add(eps);
  if (eps_l.defined()) v = v.add(eps_l.abs().sub(eps_l.detach().abs().item<double>()));  // + 0, d|e|/de
  // x / sqrt, not x * rsqrt: rsqrt's derivative, nu2^-1.5, underflows fp32 for |x| above about 1e13
  const at::Tensor y = w.reshape(shape).mul(xf.div(v.sqrt())).add(b.reshape(shape));
  return (tau.defined() ? y.maximum(tau.reshape(shape)) : y).to(x.scalar_type());
}

// The gradients of z against `inputs` with their own graph (create_graph); undefined for inputs that
// need none.
variable_list with_graph(const at::Tensor& z, const at::Tensor& dz, const variable_list& inputs) {
  variable_list need, out;
  for (const auto& t : inputs)
    if (t.defined() && t.requires_grad()) need.push_back(t);
  auto g = torch::autograd::grad({z}, need, {dz}, /*retain_graph=*/true, /*create_graph=*/true, /*allow_unused=*/true);
  size_t i = 0;
  for (const auto& t : inputs) out.push_back(t.defined() && t.requires_grad() ? g[i++] : at::Tensor());
  return out;
}

// The block end's TLU share of dz, from its saved z and tie bits: 1 where z != tau, 1/2 at a tie.
at::Tensor tlu_share(const at::Tensor& z, const at::Tensor& ties, const at::Tensor& tau, at::ScalarType dtype) {
  const int64_t hw = plane_size(z), bytes = (hw + 7) / 8;
  const at::Tensor bits = ties.view({-1, bytes, 1}).bitwise_right_shift(at::arange(8, ties.options())).bitwise_and(1);
  const at::Tensor tie = bits.view({-1, bytes * 8}).narrow(1, 0, hw).reshape(z.sizes());
  return z.ne(tau.to(z.scalar_type()).view({1, -1, 1, 1})).to(dtype).add(tie.to(dtype).mul(0.5));
}

// A parameter gradient in the parameter's dtype and shape.
at::Tensor as_param(const at::Tensor& g, const at::Tensor& p) {
  const at::Tensor t = g.to(p.scalar_type());
  return t.sizes() == p.sizes() ? t : t.reshape(p.sizes());
}

struct FRNFunction : torch::autograd::Function<FRNFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            const at::Tensor& b, const std::optional<at::Tensor>& tau,
                            const std::optional<at::Tensor>& eps_l, double eps) {
    ctx->save_for_backward({x, w, b, tau.value_or(at::Tensor()), eps_l.value_or(at::Tensor())});
    ctx->saved_data["eps"] = eps;
    static const auto frn = op<decltype(frn_kernel)>("frn_det::frn");
    at::AutoDispatchBelowADInplaceOrView below;
    return frn.call(x, w, b, tau, eps_l, eps);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto s = ctx->get_saved_variables();
    const at::Tensor &x = s[0], &w = s[1], &b = s[2], &tau = s[3], &eps_l = s[4];
    const double eps = ctx->saved_data["eps"].toDouble();
    if (at::GradMode::is_enabled()) {  // create_graph
      auto g = with_graph(formula(x, w, b, tau, eps_l, eps), grads[0], {x, w, b, tau, eps_l});
      g.push_back(at::Tensor());
      return g;
    }
    static const auto frn_backward = op<decltype(frn_backward_kernel)>("frn_det::frn_backward");
    at::AutoDispatchBelowADInplaceOrView below;
    auto [dx, dw, db, dtau, deps] = frn_backward.call(grads[0], x, w, b, defined(tau), eps);
    return {dx,
            as_param(dw, w),
            as_param(db, b),
            tau.defined() ? as_param(dtau, tau) : at::Tensor(),
            eps_l.defined() ? deps.mul(eps_l.sign()).to(eps_l.scalar_type()) : at::Tensor(),  // d|e|/de
            at::Tensor()};
  }
};

at::Tensor frn_autograd(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b,
                        const std::optional<at::Tensor>& tau, const std::optional<at::Tensor>& eps_l,
                        double eps) {
  return FRNFunction::apply(x, w, b, tau, eps_l, eps);
}

struct FRNAddTLUFunction : torch::autograd::Function<FRNAddTLUFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& s, const at::Tensor& w,
                            const at::Tensor& b, const at::Tensor& tau, const std::optional<at::Tensor>& eps_l,
                            double eps) {
    static const auto fwd = op<decltype(add_tlu_forward_kernel)>("frn_det::frn_add_tlu_forward");
    at::AutoDispatchBelowADInplaceOrView below;
    auto [z, r, ties] = fwd.call(x, s, w, b, tau, eps);
    ctx->save_for_backward({x, r, z, ties, w, b, tau, eps_l.value_or(at::Tensor())});
    ctx->saved_data["eps"] = eps;
    return z;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto v = ctx->get_saved_variables();
    const at::Tensor &x = v[0], &r = v[1], &z = v[2], &ties = v[3], &w = v[4], &b = v[5], &tau = v[6];
    const at::Tensor& eps_l = v[7];
    if (at::GradMode::is_enabled()) {  // create_graph: dy = dz share (TLU's second derivative is 0), then FRN's
      const at::Tensor& dz = grads[0];
      const at::Tensor dy = dz.mul(tlu_share(z, ties, tau, dz.scalar_type()));
      auto g = with_graph(formula(x, w, b, at::Tensor(), eps_l, ctx->saved_data["eps"].toDouble()), dy,
                          {x, w, b, eps_l});
      const at::Tensor dtau = dz.sub(dy).sum({0, 2, 3}, false, at::toOpMathType(dz.scalar_type()));
      return {g[0], dy, g[1], g[2], as_param(dtau, tau), g[3], at::Tensor()};
    }
    static const auto bwd = op<decltype(add_tlu_backward_kernel)>("frn_det::frn_add_tlu_backward");
    at::AutoDispatchBelowADInplaceOrView below;
    auto [dx, ds, dw, db, dtau, deps] = bwd.call(grads[0], x, r, z, ties, w, b, tau);
    return {dx,
            ds,
            as_param(dw, w),
            as_param(db, b),
            as_param(dtau, tau),
            eps_l.defined() ? deps.mul(eps_l.sign()).to(eps_l.scalar_type()) : at::Tensor(),  // d|e|/de
            at::Tensor()};
  }
};

at::Tensor frn_add_tlu_autograd(const at::Tensor& x, const at::Tensor& s, const at::Tensor& w, const at::Tensor& b,
                                const at::Tensor& tau, const std::optional<at::Tensor>& eps_l, double eps) {
  return FRNAddTLUFunction::apply(x, s, w, b, tau, eps_l, eps);
}

at::Tensor frn_add_tlu_inference(const at::Tensor& x, const at::Tensor& s, const at::Tensor& w, const at::Tensor& b,
                                 const at::Tensor& tau, const std::optional<at::Tensor>&, double eps) {
  return std::get<0>(add_tlu_forward_kernel(x, s, w, b, tau, eps));
}

}  // namespace

TORCH_LIBRARY(frn_det, m) {
  m.def("frn(Tensor x, Tensor weight, Tensor bias, Tensor? tau, Tensor? eps_l, float eps) -> Tensor");
  m.def("frn_add_tlu(Tensor x, Tensor shortcut, Tensor weight, Tensor bias, Tensor tau, Tensor? eps_l, "
        "float eps) -> Tensor");
  m.def("frn_backward(Tensor dz, Tensor x, Tensor weight, Tensor bias, Tensor? tau, float eps) -> "
        "(Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("frn_add_tlu_forward(Tensor x, Tensor shortcut, Tensor weight, Tensor bias, Tensor tau, float eps) -> "
        "(Tensor, Tensor, Tensor)");
  m.def("frn_add_tlu_backward(Tensor dz, Tensor x, Tensor r, Tensor z, Tensor ties, Tensor weight, Tensor bias, "
        "Tensor tau) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}
TORCH_LIBRARY_IMPL(frn_det, CPU, m) {  // inference_mode, and the kernels below autograd
  m.impl("frn", &frn_kernel);
  m.impl("frn_add_tlu", &frn_add_tlu_inference);
  m.impl("frn_backward", &frn_backward_kernel);
  m.impl("frn_add_tlu_forward", &add_tlu_forward_kernel);
  m.impl("frn_add_tlu_backward", &add_tlu_backward_kernel);
}
TORCH_LIBRARY_IMPL(frn_det, AutogradCPU, m) {
  m.impl("frn", &frn_autograd);
  m.impl("frn_add_tlu", &frn_add_tlu_autograd);
}

// An importable, empty Python module: importing it loads the library, which registers the op.
static PyModuleDef frn_cpu_module = {PyModuleDef_HEAD_INIT, "_frn_cpu", nullptr, -1, nullptr};
PyMODINIT_FUNC PyInit__frn_cpu() { return PyModule_Create(&frn_cpu_module); }
