#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::run_model;

TEST(InstanceNormalizationOps, PerSampleAndChannel) {
  // [1, 2, 3]: channel 0 = (1, 2, 3), channel 1 = (4, 4, 4).
  Tensor x = f32_tensor({1, 2, 3}, {1, 2, 3, 4, 4, 4});
  ModelBuilder b(6);
  b.input("x", DType::kF32, {"1", "2", "3"})
      .initializer("scale", f32_tensor({2}, {2, 1}))
      .initializer("bias", f32_tensor({2}, {0.5f, -1}))
      .node("InstanceNormalization", {"x", "scale", "bias"}, {"y"})
      .attr("epsilon", 0.f)
      .output("y");
  auto r = run_model(b, {{"x", x}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const double s = std::sqrt(2.0 / 3.0);
  // Channel 1 has zero variance and epsilon 0: 0/0 = NaN, as the formula says.
  expect_near_all(r->at("y"), {-2 / s + 0.5, 0.5, 2 / s + 0.5, NAN, NAN, NAN});
}

TEST(InstanceNormalizationOps, ScaleOfWrongSizeIsABuildError) {
  ModelBuilder b(6);
  b.input("x", DType::kF32, {"1", "2", "3"})
      .initializer("scale", f32_tensor({3}, {1, 1, 1}))
      .initializer("bias", f32_tensor({2}, {0, 0}))
      .node("InstanceNormalization", {"x", "scale", "bias"}, {"y"}, "in")
      .output("y");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(
      msg.find("node 'in' (InstanceNormalization): input 'scale' has shape [3] but the input [1,2,3] has 2 "
               "channels"),
      std::string::npos)
      << msg;
}

}  // namespace
}  // namespace kiln
