// MelWeightMatrix: triangular mel filterbank weights, [dft_length / 2 + 1, num_mel_bins].
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

// Inputs: num_mel_bins, dft_length, sample_rate (integers), lower_edge_hertz, upper_edge_hertz (floats).
Status infer_mel_weight_matrix(InferContext& ctx) {
  for (size_t i = 0; i < 3; ++i)
    if (ctx.input_dtype(i) != DType::kI32 && ctx.input_dtype(i) != DType::kI64)
      return ctx.error("input {} ('{}') must be i32 or i64, got {}", i, ctx.node().inputs[i],
                       dtype_name(ctx.input_dtype(i)));
  for (size_t i = 3; i < 5; ++i)
    if (!is_float(ctx.input_dtype(i)))
      return ctx.error("input {} ('{}') must be float, got {}", i, ctx.node().inputs[i], dtype_name(ctx.input_dtype(i)));
  const int64_t code = ctx.node().attr_int("output_datatype", 1);
  auto dt = dtype_from_onnx(static_cast<int32_t>(code));
  if (!dt || *dt == DType::kString || *dt == DType::kUndefined)
    return ctx.unsupported("output_datatype {} is not a supported numeric type", code);
  std::vector<Dim> out = {Dim::unknown(), Dim::unknown()};
  std::vector<int64_t> v;
  if (constant_ints(ctx, 1, v) && !v.empty()) {
    if (v[0] <= 0) return ctx.error("dft_length must be positive, got {}", v[0]);
    out[0] = Dim(v[0] / 2 + 1);
  }
  if (constant_ints(ctx, 0, v) && !v.empty()) {
    if (v[0] <= 0) return ctx.error("num_mel_bins must be positive, got {}", v[0]);
    out[1] = Dim(v[0]);
  }
  if (constant_ints(ctx, 2, v) && !v.empty() && v[0] <= 0)
    return ctx.error("sample_rate must be positive, got {}", v[0]);
  ctx.set_output(0, *dt, Shape(out));
  return Status();
}

}  // namespace

void register_mel_weight_matrix(OpRegistry& r) {
  r.add({"MelWeightMatrix", 5, 5, 1, 1, infer_mel_weight_matrix});
}

}  // namespace kiln::ops
