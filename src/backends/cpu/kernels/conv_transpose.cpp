// ConvTranspose as one GEMM per (batch, group), cols = W_g^T * X_g, then col2im scatters the columns into Y.
#include <type_traits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/im2col.h"

namespace kiln::cpu {

namespace {

template <class T>
void conv_transpose(const Tensor& x, const Tensor& w, const Tensor* b, int64_t group, const ConvGeometry& g,
                    Tensor& y) {
  const int64_t batch = x.dim(0), c_in = x.dim(1), m = y.dim(1);
  const int64_t cg = c_in / group, mg = m / group;
  // In the geometry the window runs over Y (g.in) and X plays the strided side (g.out).
  const int64_t x_size = g.out_size(), y_size = g.in_size(), ksize = g.kernel_size();
  const int64_t rows = mg * ksize;
  std::vector<T> col(static_cast<size_t>(rows * x_size));
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  T* py = y.data<T>();
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t gi = 0; gi < group; ++gi) {
      const T* xg = px + (n * c_in + gi * cg) * x_size;
      const T* wg = pw + gi * cg * rows;  // [cg, mg * ksize]
      if constexpr (std::is_same_v<T, float>) {
        gemm_f32(true, false, rows, x_size, cg, 1.f, wg, rows, xg, x_size, 0.f, col.data(), x_size);
      } else {
        gemm_naive<T>(true, false, rows, x_size, cg, 1.0, wg, rows, xg, x_size, 0.0, col.data(), x_size);
      }
      col2im(col.data(), mg, g, py + (n * m + gi * mg) * y_size);
    }
  if (!b) return;
  const T* pb = b->data<T>();
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t o = 0; o < m; ++o) {
      T* row = py + (n * m + o) * y_size;
      for (int64_t i = 0; i < y_size; ++i) row[i] += pb[o];
    }
}

Status run_conv_transpose(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const size_t n_sp = x.rank() - 2;
  ConvGeometry g;
  g.out.assign(x.dims().begin() + 2, x.dims().end());
  KILN_ASSIGN_OR_RETURN(g.win, ops::read_window(ctx.node(), n_sp, {w.dims().begin() + 2, w.dims().end()}));
  const auto out_pad = ctx.node().attr_ints("output_padding", std::vector<int64_t>(n_sp, 0));
  auto out_shape = ctx.node().attr_ints("output_shape");
  if (out_shape.size() == x.rank()) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  for (size_t i = 0; i < n_sp; ++i)
    g.in.push_back(ops::transpose_output_size(g.win, i, g.out[i], out_pad[i], out_shape.empty() ? -1 : out_shape[i]));
  Tensor& y = ctx.output(0);
  if (y.numel() == 0) return Status();
  const int64_t group = ctx.node().attr_int("group", 1);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  bool ok = dispatch_float(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    conv_transpose<T>(x, w, b, group, g, y);
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_conv_transpose(KernelTable& t) { t.add({"ConvTranspose", run_conv_transpose}); }

}  // namespace kiln::cpu
