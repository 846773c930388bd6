// LayerNormalization (optional bias, optional Mean/InvStdDev outputs in the stash_type dtype) and
// RMSNormalization over X viewed as [prod(dims[:axis]), prod(dims[axis:])]. Statistics in f32 (two-pass mean and
// variance); Scale and B may be any float dtype, independently of X, and broadcast to the normalized dims as the
// CPU reference allows. The kernels are in row_norm.cuh (shared with InstanceNormalization).
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/row_norm.cuh"

namespace kiln::cuda {

namespace {

bool has_stat_outputs(const ir::Node& node) {
  for (size_t i = 1; i < node.outputs.size(); ++i)
    if (!node.outputs[i].empty()) return true;
  return false;
}

bool supports_norm(const ir::Node& node, const std::vector<DType>& dts) {
  if (dts.empty() || !nrk::is_cuda_float(dts[0])) return false;
  for (size_t i = 1; i < dts.size(); ++i)
    if (dts[i] != DType::kUndefined && !nrk::is_cuda_float(dts[i])) return false;
  if (has_stat_outputs(node)) {
    // Mean/InvStdDev come out in stash_type: f32 (1), f16 (10) or bf16 (16) here.
    const int64_t stash = node.attr_int("stash_type", 1);
    if (stash != 1 && stash != 10 && stash != 16) return false;
  }
  return true;
}

Status run_norm(KernelContext& ctx) {
  const bool rms = ctx.node().op_type == "RMSNormalization";
  const DeviceTensor& x = ctx.input(0);
  DeviceTensor& y = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(x.rank());
  if (rank == 0) return ctx.error("needs an input X of rank >= 1");
  int64_t axis = ctx.node().attr_int("axis", -1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  const std::vector<int64_t> norm_dims(x.dims.begin() + axis, x.dims.end());
  nrk::NormArgs a;
  a.rows = 1;
  for (int64_t i = 0; i < axis; ++i) a.rows *= x.dims[i];
  a.d = num_elements(norm_dims);
  a.eps = ctx.node().attr_float("epsilon", 1e-5f);
  a.rms = rms;
  if (!ctx.has_input(1)) return ctx.error("needs a scale input");
  const DeviceTensor& scale = ctx.input(1);
  a.scale = scale.data;
  a.scale_code = nrk::fcode(scale.dtype);
  if (!nrk::make_param_map(scale.dims, norm_dims, &a.smap))
    return ctx.error("scale {} does not broadcast to the normalized dims {}", dims_to_string(scale.dims),
                     dims_to_string(norm_dims));
  if (!rms && ctx.has_input(2)) {
    const DeviceTensor& bias = ctx.input(2);
    a.bias = bias.data;
    a.bias_code = nrk::fcode(bias.dtype);
    if (!nrk::make_param_map(bias.dims, norm_dims, &a.bmap))
      return ctx.error("B {} does not broadcast to the normalized dims {}", dims_to_string(bias.dims),
                       dims_to_string(norm_dims));
  }
  if (!rms) {
    for (size_t i = 1; i < 3; ++i) {
      if (!ctx.has_output(i) || i >= ctx.num_outputs()) continue;
      DeviceTensor& o = ctx.output(i);
      if (!nrk::is_cuda_float(o.dtype)) return ctx.error("output {} has unsupported dtype {}", i, dtype_name(o.dtype));
      if (o.numel() != a.rows)
        return ctx.error("output {} has {} elements, expected {}", i, o.numel(), a.rows);
      a.stat_code = nrk::fcode(o.dtype);
      (i == 1 ? a.mean_out : a.inv_out) = o.data;
    }
  }
  // Nothing to compute: no rows, or empty rows and no statistics to report.
  if (a.rows == 0 || (a.d == 0 && !a.mean_out && !a.inv_out)) return Status();
  const bool ok = nrk::dispatch_float(x.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    nrk::launch_norm<T>(x.ptr<const T>(), y.ptr<T>(), a, ctx.stream());
  });
  if (!ok) return ctx.error("dtype {} is not supported", dtype_name(x.dtype));
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

}  // namespace

void register_cuda_layer_norm(KernelTable& t) {
  t.add({"LayerNormalization", run_norm, supports_norm});
  t.add({"RMSNormalization", run_norm, supports_norm});
}

}  // namespace kiln::cuda
