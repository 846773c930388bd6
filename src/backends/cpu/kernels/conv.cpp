// Conv as im2col + one GEMM per (batch, group); 1x1 stride-1 unpadded convs use the input as the column matrix.
#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/im2col.h"

namespace kiln::cpu {

namespace {

template <class T>
void matmul(int64_t m, int64_t n, int64_t k, const T* a, const T* b, T* c) {
  if constexpr (std::is_same_v<T, float>) {
    gemm_f32(false, false, m, n, k, 1.f, a, k, b, n, 0.f, c, n);
  } else {
    gemm_naive<T>(false, false, m, n, k, 1.0, a, k, b, n, 0.0, c, n);
  }
}

bool is_pointwise(const ConvGeometry& g) {
  for (size_t i = 0; i < g.in.size(); ++i)
    if (g.win.kernel[i] != 1 || g.win.strides[i] != 1 || g.win.pad_begin[i] != 0 || g.win.pad_end[i] != 0)
      return false;
  return true;
}

// One input channel per group (depthwise): a GEMM per group would have K = kernel size only, so accumulate
// each kernel tap straight into Y instead of building columns.
template <class T>
void conv_depthwise(const T* xg, const T* wg, int64_t mg, const ConvGeometry& g, T* yg) {
  const size_t n = g.in.size();
  const int64_t ow = g.out[n - 1], iw = g.in[n - 1], out_size = g.out_size(), ksize = g.kernel_size();
  const int64_t s = g.win.strides[n - 1], p = g.win.pad_begin[n - 1], dl = g.win.dilations[n - 1];
  for (int64_t m = 0; m < mg; ++m) {
    const T* w = wg + m * ksize;
    T* y = yg + m * out_size;
    for_each_window_row(g.in, g.out, g.win, [&](int64_t kf, int64_t o, int64_t off, bool ok, int64_t kl) {
      if (!ok) return;
      const T wv = w[kf];
      const T* src = xg + off;
      T* row = y + o * ow;
      // Only the output columns whose input column is inside: pos = j * s - p + kl * dl in [0, iw).
      const int64_t base = kl * dl - p;
      const int64_t j0 = base >= 0 ? 0 : (-base + s - 1) / s;
      const int64_t j1 = std::min(ow, base >= iw ? 0 : (iw - 1 - base) / s + 1);
      for (int64_t j = j0; j < j1; ++j) row[j] += wv * src[j * s + base];
    });
  }
}

template <class T>
void conv(const Tensor& x, const Tensor& w, const Tensor* b, int64_t group, const ConvGeometry& g, Tensor& y) {
  const int64_t batch = x.dim(0), c_in = x.dim(1), m = w.dim(0);
  const int64_t cg = c_in / group, mg = m / group;
  const int64_t in_size = g.in_size(), out_size = g.out_size(), ksize = g.kernel_size();
  const bool pointwise = is_pointwise(g);
  std::vector<T> col(pointwise || cg == 1 ? 0 : static_cast<size_t>(cg * ksize * out_size));
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  T* py = y.data<T>();
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t gi = 0; gi < group; ++gi) {
      const T* xg = px + (n * c_in + gi * cg) * in_size;
      if (cg == 1 && ksize > 1) {
        conv_depthwise(xg, pw + gi * mg * ksize, mg, g, py + (n * m + gi * mg) * out_size);
        continue;
      }
      const T* cols = xg;
      if (!pointwise) {
        im2col(xg, cg, g, col.data());
        cols = col.data();
      }
      matmul<T>(mg, out_size, cg * ksize, pw + gi * mg * cg * ksize, cols, py + (n * m + gi * mg) * out_size);
    }
  if (!b) return;
  const T* pb = b->data<T>();
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t o = 0; o < m; ++o) {
      T* row = py + (n * m + o) * out_size;
      for (int64_t i = 0; i < out_size; ++i) row[i] += pb[o];
    }
}

Status run_conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const size_t n_sp = x.rank() - 2;
  ConvGeometry g;
  g.in.assign(x.dims().begin() + 2, x.dims().end());
  KILN_ASSIGN_OR_RETURN(g.win, ops::read_window(ctx.node(), n_sp, {w.dims().begin() + 2, w.dims().end()}));
  for (size_t i = 0; i < n_sp; ++i) g.out.push_back(ops::window_output_size(g.win, i, g.in[i]));
  Tensor& y = ctx.output(0);
  if (y.numel() == 0) return Status();
  const int64_t group = ctx.node().attr_int("group", 1);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  bool ok = dispatch_float(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    conv<T>(x, w, b, group, g, y);
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_conv(KernelTable& t) { t.add({"Conv", run_conv}); }

}  // namespace kiln::cpu
