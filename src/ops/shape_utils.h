// Helpers shared by op inference functions.
#pragma once
#include <vector>

#include "ops/op.h"

namespace kiln::ops {

// The most dims a tensor may have. ONNX sets no limit; this one turns a corrupt shape input or attribute (a
// 2^40-element shape) into an error instead of an allocation of that many dims.
inline constexpr int64_t kMaxTensorRank = 64;

// Numpy-style multidirectional broadcasting; the error names both shapes and the axis.
Result<Shape> broadcast_shapes(const InferContext& ctx, const std::vector<Shape>& shapes);
// Broadcast of all present inputs.
Result<Shape> broadcast_inputs(const InferContext& ctx);
// Maps a possibly negative axis into [0, rank); error names the axis and rank.
Result<int64_t> normalize_axis(const InferContext& ctx, int64_t axis, int64_t rank);
// The input's value as int64s, when known (for shape/axes inputs).
bool constant_ints(const InferContext& ctx, size_t input, std::vector<int64_t>& out);
// Output shape same as input 0, same dtype (unary elementwise).
Status infer_same_as_input0(InferContext& ctx);

}  // namespace kiln::ops
