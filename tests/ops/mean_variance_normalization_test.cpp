#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::run_model;

TEST(MeanVarianceNormalizationOps, OverGivenAxes) {
  Tensor x = f32_tensor({2, 2}, {1, 3, 10, 10});
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "2"})
      .node("MeanVarianceNormalization", {"x"}, {"y"})
      .attr("axes", std::vector<int64_t>{1})
      .output("y");
  auto r = run_model(b, {{"x", x}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {-1, 1, 0, 0});  // row 1 has std 0: 0 / 1e-9
}

TEST(MeanVarianceNormalizationOps, DefaultAxesNeedRank4) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "2"}).node("MeanVarianceNormalization", {"x"}, {"y"}, "mvn").output("y");
  const std::string msg = testing::build_error(b);
  EXPECT_NE(msg.find("node 'mvn' (MeanVarianceNormalization): axis 2 in axes [0,2,3] is out of range"),
            std::string::npos)
      << msg;
}

}  // namespace
}  // namespace kiln
