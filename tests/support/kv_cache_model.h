// A one-layer decoder step with a preallocated KV cache, as the CPU and GPU alias tests use it:
//   k = x @ W                                   (the new token's key, [batch, 4])
//   present = ScatterElements(past, pos, k)     (row `pos` of the [batch, T, 4] cache replaced, axis 1)
//   y = ReduceSum(present, axis 1)              (reads the updated cache, as attention does)
// With `read_past_after`, z = ReduceSum(present - past) reads the old cache after the scatter (it needs both), so
// the cache cannot be updated in place.
#pragma once
#include <string>

#include "support/model_builder.h"

namespace kiln::testing {

inline constexpr int64_t kKvWidth = 4;

inline ModelBuilder kv_cache_step(const std::string& past, const std::string& present, int64_t max_len,
                                  bool read_past_after = false) {
  ModelBuilder b(17);
  const std::string T = std::to_string(max_len), W = std::to_string(kKvWidth);
  b.input("x", DType::kF32, {"batch", W}).input("pos", DType::kI64, {"1"}).input(past, DType::kF32, {"batch", T, W});
  std::vector<float> w(kKvWidth * kKvWidth);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.25f * static_cast<float>(i % 5) - 0.5f;
  b.initializer("W", f32_tensor({kKvWidth, kKvWidth}, w));
  b.initializer("axes1", i64_tensor({1}, {1}));
  b.initializer("shape111", i64_tensor({3}, {1, 1, 1}));
  b.node("MatMul", {"x", "W"}, {"k"}, "key_proj");
  b.node("Unsqueeze", {"k", "axes1"}, {"k3"}, "key_rows");
  b.node("Reshape", {"pos", "shape111"}, {"pos3"}, "pos_reshape");
  b.node("Shape", {"k3"}, {"k3_shape"}, "key_shape");
  b.node("Expand", {"pos3", "k3_shape"}, {"idx"}, "pos_expand");
  b.node("ScatterElements", {past, "idx", "k3"}, {present}, "cache_write").attr("axis", int64_t{1});
  b.node("ReduceSum", {present, "axes1"}, {"y"}, "cache_sum").attr("keepdims", int64_t{0});
  b.output("y", DType::kF32, {"batch", W}).output(present, DType::kF32, {"batch", T, W});
  if (read_past_after) {
    b.node("Sub", {present, past}, {"delta"}, "cache_delta");
    b.node("ReduceSum", {"delta", "axes1"}, {"z"}, "delta_sum").attr("keepdims", int64_t{0});
    b.output("z", DType::kF32, {"batch", W});
  }
  return b;
}

// The key row kv_cache_step computes for x (the same W).
inline std::vector<float> kv_key_row(const float* x) {
  std::vector<float> k(kKvWidth, 0.f);
  for (int64_t j = 0; j < kKvWidth; ++j)
    for (int64_t i = 0; i < kKvWidth; ++i)
      k[j] += x[i] * (0.25f * static_cast<float>((i * kKvWidth + j) % 5) - 0.5f);
  return k;
}

}  // namespace kiln::testing
