// Trilu (src/backends/cuda/kernels/trilu.cu) against the CPU reference: every element width, upper and lower,
// k absent, 0, positive, negative and beyond the matrix, batched and empty matrices.
#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

void trilu_case(DType dt, const Dims& d, bool upper, std::optional<int64_t> k, uint64_t seed) {
  SCOPED_TRACE(
      trace("Trilu", dt, d,
            std::string(upper ? "upper" : "lower") + " k " + (k ? std::to_string(*k) : std::string("none"))));
  ModelBuilder m;
  m.input("x", dt, sdims(d));
  std::vector<std::string> ins = {"x"};
  if (k) {
    m.initializer("k", testing::i64_tensor({}, {*k}));
    ins.push_back("k");
  }
  m.node("Trilu", ins, {"y"}).attr("upper", static_cast<int64_t>(upper)).output("y");
  ewtest::check(m, {{"x", values(dt, d, seed)}});
}

TEST(GpuTrilu, UpperLowerKAndDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : all_dtypes())
    for (bool upper : {true, false})
      for (std::optional<int64_t> k :
           {std::optional<int64_t>{}, std::optional<int64_t>{0}, std::optional<int64_t>{1},
            std::optional<int64_t>{-2}, std::optional<int64_t>{100}, std::optional<int64_t>{-100}}) {
        trilu_case(dt, {4, 5}, upper, k, seed++);
        trilu_case(dt, {2, 3, 7, 3}, upper, k, seed++);
        trilu_case(dt, {1, 1}, upper, k, seed++);
        trilu_case(dt, {0, 3, 3}, upper, k, seed++);
      }
  trilu_case(DType::kF32, {2, 129, 127}, true, 1, seed++);  // causal mask shapes
  trilu_case(DType::kBool, {1031, 1031}, false, 0, seed++);
}

}  // namespace
}  // namespace kiln
