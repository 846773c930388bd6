#include <gtest/gtest.h>

#include "ops/nn_test_util.h"

namespace kiln {
namespace {

using namespace nn_test;

ModelBuilder roi_model(const std::string& coord, int64_t oh, int64_t ow) {
  ModelBuilder mb(16);
  mb.input("x", DType::kF32, {"2", "1", "10", "10"}).input("rois", DType::kF32, {"R", "4"})
      .input("idx", DType::kI64, {"R"}).node("RoiAlign", {"x", "rois", "idx"}, {"y"}, "ra")
      .attr("output_height", oh).attr("output_width", ow).attr("sampling_ratio", int64_t(2))
      .attr("coordinate_transformation_mode", coord).output("y");
  return mb;
}

TEST(NnRoiAlign, AveragesBilinearSamples) {
  // Image 0 holds its column index, image 1 the constant 7.
  Tensor x(DType::kF32, {2, 1, 10, 10});
  for (int i = 0; i < 100; ++i) x.data<float>()[i] = static_cast<float>(i % 10), x.data<float>()[100 + i] = 7.f;
  Tensor rois = f32_tensor({2, 4}, {0, 0, 4, 4, 1, 2, 6, 5});
  Tensor idx = i64_tensor({2}, {0, 1});
  ModelBuilder mb = roi_model("half_pixel", 1, 2);
  EXPECT_EQ(built_shape(mb), "[R,1,1,2]");
  // half_pixel: the roi spans x in [-0.5, 3.5]; bin 0 samples x = 0, 1 and bin 1 x = 2, 3.
  expect_near(run_y(mb, {{"x", x}, {"rois", rois}, {"idx", idx}}), {0.5, 2.5, 7, 7});
  // output_half_pixel: [0, 4]; samples 0.5, 1.5 and 2.5, 3.5.
  ModelBuilder legacy = roi_model("output_half_pixel", 1, 2);
  expect_near(run_y(legacy, {{"x", x}, {"rois", rois}, {"idx", idx}}), {1, 3, 7, 7});
}

TEST(NnRoiAlign, Errors) {
  ModelBuilder mb(16);
  mb.input("x", DType::kF32, {"1", "1", "4", "4"}).input("rois", DType::kF32, {"3", "5"})
      .input("idx", DType::kI64, {"3"}).node("RoiAlign", {"x", "rois", "idx"}, {"y"}, "ra").output("y");
  std::string e = build_error(mb);
  EXPECT_NE(e.find("node 'ra' (RoiAlign): rois must be [num_rois, 4], got [3,5]"), std::string::npos) << e;

  ModelBuilder ok = roi_model("half_pixel", 1, 1);
  auto r = run(ok, {{"x", Tensor(DType::kF32, {2, 1, 10, 10})}, {"rois", f32_tensor({1, 4}, {0, 0, 1, 1})},
                    {"idx", i64_tensor({1}, {2})}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("batch index 2 of roi 0 is outside the batch of 2"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace kiln
