// FusedAddLayerNorm: S = X + R and Y = LayerNorm(S) * gamma + beta over the last dim, in one pass over X and
// R. X, R viewed as [rows, d]; each element's sum is rounded to T (what the unfused Add stored) before it is
// written as S and before the statistics read it, so Y is the norm of the S this node writes, as in the graph
// the pass fused. The kernels are row_norm.cuh's (the LayerNormalization ones, with kAdd): statistics in f32,
// two-pass around x[0] + r[0]; d <= 1024 one warp per row, else one block per row (rows too long for
// registers are read three times, the sums recomputed bit for bit so every pass sees the same S).
// gamma/beta: [d] (or [1, …, d]) or one value, of any float dtype; [d] of X's dtype is read in 16-byte packs.
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/row_norm.cuh"

namespace kiln::cuda {

namespace {

bool supports_add_norm(const ir::Node& node, const std::vector<DType>& dts) {
  if (dts.size() < 3 || !nrk::is_cuda_float(dts[0]) || dts[1] != dts[0]) return false;
  for (size_t i = 2; i < dts.size(); ++i)
    if (dts[i] != DType::kUndefined && !nrk::is_cuda_float(dts[i])) return false;
  return true;
}

// A gamma/beta of d values ([d] or [1, …, 1, d]) or of one value; false for anything else.
bool param_shape_ok(const DeviceTensor& t, int64_t d, nrk::ParamMap* m) {
  *m = nrk::ParamMap();
  m->mode = t.numel() == 1 && d != 1 ? nrk::ParamMap::kScalar : nrk::ParamMap::kFull;
  return t.numel() == d || t.numel() == 1;
}

Status run_add_norm(KernelContext& ctx) {
  const DeviceTensor& x = ctx.input(0);
  const DeviceTensor& r = ctx.input(1);
  if (x.rank() == 0) return ctx.error("needs an input X of rank >= 1");
  if (r.dims != x.dims || r.dtype != x.dtype)
    return ctx.error("the residual R {}{} must have X's dtype and shape {}{}", dtype_name(r.dtype),
                     dims_to_string(r.dims), dtype_name(x.dtype), dims_to_string(x.dims));
  nrk::NormArgs a;
  a.d = x.dims.back();
  a.rows = a.d == 0 ? 0 : x.numel() / a.d;
  a.eps = ctx.node().attr_float("epsilon", 1e-5f);
  const DeviceTensor& gamma = ctx.input(2);
  if (!param_shape_ok(gamma, a.d, &a.smap))
    return ctx.error("gamma {} must have {} elements (X's last dim) or one", dims_to_string(gamma.dims), a.d);
  a.scale = gamma.data;
  a.scale_code = nrk::fcode(gamma.dtype);
  if (ctx.has_input(3)) {
    const DeviceTensor& beta = ctx.input(3);
    if (!param_shape_ok(beta, a.d, &a.bmap))
      return ctx.error("beta {} must have {} elements (X's last dim) or one", dims_to_string(beta.dims), a.d);
    a.bias = beta.data;
    a.bias_code = nrk::fcode(beta.dtype);
  }
  DeviceTensor& y = ctx.output(0);
  DeviceTensor* s = ctx.has_output(1) && ctx.num_outputs() > 1 ? &ctx.output(1) : nullptr;
  if (y.numel() != x.numel() || (s && s->numel() != x.numel()))
    return ctx.error("outputs must have X's {} elements", x.numel());
  if (a.rows == 0) return Status();  // empty X: nothing to write
  a.residual = r.data;
  a.sum_out = s ? s->data : nullptr;
  const bool ok = nrk::dispatch_float(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    nrk::launch_norm<T, /*kAdd=*/true>(x.ptr<const T>(), y.ptr<T>(), a, ctx.stream());
  });
  if (!ok) return ctx.error("dtype {} is not supported (f32, f16, bf16)", dtype_name(x.dtype));
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

}  // namespace

void register_cuda_fused_add_layer_norm(KernelTable& t) {
  t.add({"FusedAddLayerNorm", run_add_norm, supports_add_norm});
}

}  // namespace kiln::cuda
