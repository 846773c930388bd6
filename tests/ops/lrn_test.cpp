#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::run_model;

TEST(LRNOps, WindowAcrossChannels) {
  // [1, 3, 1, 1] with size 2: the window is [c, c + 1].
  Tensor x = f32_tensor({1, 3, 1, 1}, {1, 2, 3});
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"1", "3", "1", "1"})
      .node("LRN", {"x"}, {"y"})
      .attr("size", int64_t{2})
      .attr("alpha", 0.5f)
      .attr("beta", 1.f)
      .attr("bias", 1.f)
      .output("y");
  auto r = run_model(b, {{"x", x}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // denominators: 1 + 0.25 * (1 + 4), 1 + 0.25 * (4 + 9), 1 + 0.25 * 9
  expect_near_all(r->at("y"), {1 / 2.25, 2 / 4.25, 3 / 3.25});
}

TEST(LRNOps, MissingSizeIsABuildError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"1", "3", "2"}).node("LRN", {"x"}, {"y"}, "lrn").output("y");
  EXPECT_NE(testing::build_error(b).find("node 'lrn' (LRN): needs the attribute 'size'"), std::string::npos)
      << testing::build_error(b);
}

}  // namespace
}  // namespace kiln
