#include <gtest/gtest.h>

#include "ops/nn_test_util.h"

namespace kiln {
namespace {

using namespace nn_test;

// Resize-13 with X given at run time and scales or sizes as initializers.
ModelBuilder resize_model(const std::vector<std::string>& x_dims, const Tensor* scales, const Tensor* sizes,
                          int64_t opset = 13) {
  ModelBuilder mb(opset);
  mb.input("x", DType::kF32, x_dims);
  std::vector<std::string> ins{"x", "", scales ? "scales" : ""};
  if (scales) mb.initializer("scales", *scales);
  if (sizes) mb.initializer("sizes", *sizes), ins.push_back("sizes");
  mb.node("Resize", ins, {"y"}, "rs");
  return mb;
}

const Tensor k2x2 = f32_tensor({1, 1, 2, 2}, {1, 2, 3, 4});

TEST(NnResize, NearestAndLinearHalfPixel) {
  Tensor s = f32_tensor({4}, {1, 1, 2, 3});
  ModelBuilder n = resize_model({"1", "1", "2", "2"}, &s, nullptr);
  n.output("y");
  expect_near(run_y(n, {{"x", k2x2}}), {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4});

  Tensor s2 = f32_tensor({4}, {1, 1, 2, 2});
  ModelBuilder l = resize_model({"1", "1", "2", "2"}, &s2, nullptr);
  l.attr("mode", std::string("linear")).output("y");
  expect_near(run_y(l, {{"x", k2x2}}),
              {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4});
}

TEST(NnResize, AlignCornersSizesAndCubicConstant) {
  Tensor sz = i64_tensor({3}, {1, 1, 5});
  ModelBuilder a = resize_model({"1", "1", "3"}, nullptr, &sz);
  a.attr("mode", std::string("linear")).attr("coordinate_transformation_mode", std::string("align_corners")).output("y");
  expect_near(run_y(a, {{"x", f32_tensor({1, 1, 3}, {0, 10, 20})}}), {0, 5, 10, 15, 20});

  Tensor sc = f32_tensor({4}, {1, 1, 0.6f, 1.7f});
  ModelBuilder c = resize_model({"1", "1", "5", "3"}, &sc, nullptr);
  c.attr("mode", std::string("cubic")).attr("exclude_outside", int64_t(1)).output("y");
  Tensor x(DType::kF32, {1, 1, 5, 3});
  for (int i = 0; i < 15; ++i) x.data<float>()[i] = 2.5f;
  Tensor y = run_y(c, {{"x", x}});
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 1, 3, 5}));
  expect_near(y, std::vector<double>(15, 2.5));
}

TEST(NnResize, CropAndResizeExtrapolates) {
  ModelBuilder mb(13);
  mb.input("x", DType::kF32, {"1", "1", "1", "3"}).initializer("roi", f32_tensor({8}, {0, 0, 0, -1, 1, 1, 1, 1}))
      .initializer("sizes", i64_tensor({4}, {1, 1, 1, 3}))
      .node("Resize", {"x", "roi", "", "sizes"}, {"y"}).attr("mode", std::string("linear"))
      .attr("coordinate_transformation_mode", std::string("tf_crop_and_resize"))
      .attr("extrapolation_value", 9.f).output("y");
  // Output w reads input x = 2w - 2: -2 lies outside the input and takes the extrapolation value.
  expect_near(run_y(mb, {{"x", f32_tensor({1, 1, 1, 3}, {0, 10, 20})}}), {9, 0, 20});
}

TEST(NnResize, Opset18AxesAndAspectPolicy) {
  for (const auto& [policy, want] : std::vector<std::pair<std::string, std::string>>{
           {"stretch", "[1,1,4,4]"}, {"not_larger", "[1,1,2,4]"}, {"not_smaller", "[1,1,4,8]"}}) {
    ModelBuilder mb(18);
    mb.input("x", DType::kF32, {"1", "1", "2", "4"}).initializer("sizes", i64_tensor({2}, {4, 4}))
        .node("Resize", {"x", "", "", "sizes"}, {"y"}).attr("axes", std::vector<int64_t>{2, -1})
        .attr("keep_aspect_ratio_policy", policy).output("y");
    EXPECT_EQ(built_shape(mb), want) << policy;
  }
  ModelBuilder mb(18);
  mb.input("x", DType::kF32, {"1", "1", "2", "2"}).initializer("scales", f32_tensor({1}, {2}))
      .node("Resize", {"x", "", "scales"}, {"y"}).attr("axes", std::vector<int64_t>{3}).output("y");
  expect_near(run_y(mb, {{"x", k2x2}}), {1, 1, 2, 2, 3, 3, 4, 4});
}

TEST(NnResize, AntialiasAndHalfPixelSymmetric) {
  // Downsampling by 2 with antialias widens the triangle filter to 4 taps: weights 1/8, 3/8, 3/8, 1/8.
  ModelBuilder aa(18);
  aa.input("x", DType::kF32, {"1", "8"}).initializer("scales", f32_tensor({2}, {1, 0.5f}))
      .node("Resize", {"x", "", "scales"}, {"y"}).attr("mode", std::string("linear")).attr("antialias", int64_t(1))
      .output("y");
  expect_near(run_y(aa, {{"x", f32_tensor({1, 8}, {0, 1, 2, 3, 4, 5, 6, 7})}}), {0.625, 2.5, 4.5, 6.375});

  // Scale 0.6 of 4 gives 2.4 -> 2 outputs; the symmetric mode re-centres them: x = 2/3 and 7/3.
  ModelBuilder sym(19);
  sym.input("x", DType::kF32, {"4"}).initializer("scales", f32_tensor({1}, {0.6f}))
      .node("Resize", {"x", "", "scales"}, {"y"}).attr("mode", std::string("linear"))
      .attr("coordinate_transformation_mode", std::string("half_pixel_symmetric")).output("y");
  expect_near(run_y(sym, {{"x", f32_tensor({4}, {1, 2, 3, 4})}}), {5.0 / 3, 10.0 / 3});
}

TEST(NnResize, UpsampleAndOpset10) {
  Tensor s = f32_tensor({4}, {1, 1, 2, 2});
  for (const char* op : {"Upsample", "Resize"}) {
    ModelBuilder mb(op == std::string("Upsample") ? 9 : 10);
    mb.input("x", DType::kF32, {"1", "1", "2", "2"}).initializer("scales", s).node(op, {"x", "scales"}, {"y"})
        .output("y");
    expect_near(run_y(mb, {{"x", k2x2}}), {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
    ModelBuilder lin(op == std::string("Upsample") ? 9 : 10);
    lin.input("x", DType::kF32, {"1", "1", "2", "2"}).initializer("scales", s).node(op, {"x", "scales"}, {"y"})
        .attr("mode", std::string("linear")).output("y");
    // asymmetric: x / 2, clamped at the right edge.
    expect_near(run_y(lin, {{"x", k2x2}}), {1, 1.5, 2, 2, 2, 2.5, 3, 3, 3, 3.5, 4, 4, 3, 3.5, 4, 4});
  }
}

TEST(NnResize, SymbolicShapesAndErrors) {
  Tensor s = f32_tensor({4}, {1, 1, 2, 2});
  ModelBuilder mb = resize_model({"N", "3", "H", "8"}, &s, nullptr);
  mb.output("y");
  EXPECT_EQ(built_shape(mb), "[N,3,?,16]");

  Tensor sz = i64_tensor({4}, {1, 1, 4, 4});
  ModelBuilder both = resize_model({"1", "1", "2", "2"}, &s, &sz);
  both.output("y");
  std::string e = build_error(both);
  EXPECT_NE(e.find("node 'rs' (Resize): only one of 'scales' and 'sizes' may be given"), std::string::npos) << e;

  Tensor bad = f32_tensor({3}, {1, 2, 2});
  ModelBuilder len = resize_model({"1", "1", "2", "2"}, &bad, nullptr);
  len.output("y");
  e = build_error(len);
  EXPECT_NE(e.find("scales has 3 values but the input has 4 dims"), std::string::npos) << e;

  ModelBuilder mode = resize_model({"1", "1", "2", "2"}, &s, nullptr);
  mode.attr("mode", std::string("lanczos")).output("y");
  e = build_error(mode);
  EXPECT_NE(e.find("mode 'lanczos' is not supported"), std::string::npos) << e;
}

}  // namespace
}  // namespace kiln
