#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::run_model;

TEST(RMSNormalizationOps, NormalizesTrailingDims) {
  Tensor x = f32_tensor({2, 3}, {1, 2, 2, 0, 0, 3});
  ModelBuilder b(23);
  b.input("x", DType::kF32, {"2", "3"})
      .initializer("scale", f32_tensor({3}, {1, 2, 3}))
      .node("RMSNormalization", {"x", "scale"}, {"y"})
      .attr("epsilon", 0.f)
      .output("y");
  auto r = run_model(b, {{"x", x}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const double a = std::sqrt(3.0), c = std::sqrt(3.0);  // rms of (1, 2, 2) and of (0, 0, 3)
  expect_near_all(r->at("y"), {1 / a, 4 / a, 6 / a, 0, 0, 9 / c});
}

TEST(RMSNormalizationOps, AxisOutOfRangeIsABuildError) {
  ModelBuilder b(23);
  b.input("x", DType::kF32, {"2", "3"})
      .initializer("scale", f32_tensor({3}, {1, 1, 1}))
      .node("RMSNormalization", {"x", "scale"}, {"y"}, "rms")
      .attr("axis", int64_t{2})
      .output("y");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(msg.find("node 'rms' (RMSNormalization): axis 2 is out of range"), std::string::npos) << msg;
}

}  // namespace
}  // namespace kiln
