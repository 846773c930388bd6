// CumSum (src/backends/cuda/kernels/cum_sum.cu) against the CPU reference: f32/f64/f16/bf16/i32/i64, every
// axis (negative too, given as int32 or int64), inclusive/exclusive, forward/reverse, long lines and empty
// tensors. Both sides accumulate floats in double in the same order, so even f32 results agree closely.
#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

void cum_sum_case(DType dt, const Dims& d, int64_t axis, DType axis_dt, bool exclusive, bool reverse,
                  uint64_t seed) {
  SCOPED_TRACE(
      trace("CumSum", dt, d,
            "axis " + std::to_string(axis) + (exclusive ? " exclusive" : "") + (reverse ? " reverse" : "")));
  ModelBuilder m;
  m.input("x", dt, sdims(d)).initializer("axis", index_tensor(axis_dt, {}, {axis}));
  m.node("CumSum", {"x", "axis"}, {"y"})
      .attr("exclusive", static_cast<int64_t>(exclusive))
      .attr("reverse", static_cast<int64_t>(reverse))
      .output("y");
  Tensor x =
      (dt == DType::kI32 || dt == DType::kI64) ? ewtest::ints(dt, d, seed, -1000, 1000) : values(dt, d, seed);
  ewtest::check(m, {{"x", x}});
}

TEST(GpuCumSum, AxesModesAndDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : {DType::kF32, DType::kF64, DType::kF16, DType::kBF16, DType::kI32, DType::kI64})
    for (bool ex : {false, true})
      for (bool rev : {false, true}) {
        cum_sum_case(dt, {7}, 0, DType::kI64, ex, rev, seed++);
        cum_sum_case(dt, {3, 5}, 1, DType::kI32, ex, rev, seed++);
        cum_sum_case(dt, {3, 5}, -2, DType::kI64, ex, rev, seed++);
        cum_sum_case(dt, {2, 3, 4, 5}, 2, DType::kI64, ex, rev, seed++);
        cum_sum_case(dt, {0, 5}, 1, DType::kI64, ex, rev, seed++);
        cum_sum_case(dt, {4, 0}, 1, DType::kI64, ex, rev, seed++);
      }
  cum_sum_case(DType::kI64, {2, 1031}, 1, DType::kI64, false, false, seed++);  // GPT-2's position ids
  cum_sum_case(DType::kF32, {3, 4097}, -1, DType::kI64, true, true, seed++);
  cum_sum_case(DType::kF32, {513, 3, 67}, 0, DType::kI64, false, false, seed++);
}

}  // namespace
}  // namespace kiln
