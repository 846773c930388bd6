// OneHot (src/backends/cuda/kernels/one_hot.cu) against the CPU reference: int32/int64/f32 indices with
// negative and out-of-range values (an all-off line), axes first/middle/last/negative, value dtypes of every
// width.
#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

void one_hot_case(DType it, const Dims& d, int64_t depth, int64_t axis, DType vt, uint64_t seed) {
  SCOPED_TRACE(trace("OneHot", vt, d,
                     std::string("indices ") + std::string(dtype_name(it)) + " depth " +
                         std::to_string(depth) + " axis " + std::to_string(axis)));
  ModelBuilder m;
  m.input("i", it, sdims(d)).initializer("depth", testing::i64_tensor({}, {depth}));
  m.input("v", vt, {"2"});
  m.node("OneHot", {"i", "depth", "v"}, {"y"}).attr("axis", axis).output("y");
  Tensor idx = ewtest::ints(it == DType::kF32 ? DType::kI64 : it, d, seed, -depth - 2, depth + 2);
  if (it == DType::kF32) {
    Tensor f(DType::kF32, d);
    for (int64_t i = 0; i < f.numel(); ++i)
      f.data<float>()[i] = static_cast<float>(idx.data<int64_t>()[i]) + 0.25f;
    idx = f;
  }
  ewtest::check(m, {{"i", idx}, {"v", values(vt, {2}, seed + 1)}});
}

TEST(GpuOneHot, IndicesAxesAndDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType it : {DType::kI32, DType::kI64, DType::kF32})
    for (DType vt : {DType::kF32, DType::kI64, DType::kF16, DType::kBool, DType::kI8})
      for (int64_t axis : {-1, 0, 1, -2}) {
        one_hot_case(it, {2, 3}, 5, axis, vt, seed++);
        one_hot_case(it, {0, 3}, 4, axis, vt, seed++);
      }
  one_hot_case(DType::kI64, {3, 257}, 11, -1, DType::kF32, seed++);
}

}  // namespace
}  // namespace kiln
