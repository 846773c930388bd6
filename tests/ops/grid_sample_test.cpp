#include <gtest/gtest.h>

#include "ops/nn_test_util.h"

namespace kiln {
namespace {

using namespace nn_test;

ModelBuilder grid_model(const std::vector<std::string>& x, const std::vector<std::string>& g, int64_t opset = 16) {
  ModelBuilder mb(opset);
  mb.input("x", DType::kF32, x).input("g", DType::kF32, g).node("GridSample", {"x", "g"}, {"y"}, "gs");
  return mb;
}

TEST(NnGridSample, IdentityGridReproducesInput) {
  // With align_corners the corners of the grid are the centres of the corner pixels.
  Tensor x = random_f32({2, 3, 3, 4}, 3);
  Tensor g(DType::kF32, {2, 3, 4, 2});
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) {
        g.data<float>()[((b * 3 + i) * 4 + j) * 2] = -1.f + 2.f * j / 3.f;
        g.data<float>()[((b * 3 + i) * 4 + j) * 2 + 1] = -1.f + 2.f * i / 2.f;
      }
  for (const char* mode : {"bilinear", "nearest", "bicubic"}) {
    ModelBuilder mb = grid_model({"2", "3", "3", "4"}, {"2", "3", "4", "2"});
    mb.attr("align_corners", int64_t(1)).attr("mode", std::string(mode)).output("y");
    Tensor y = run_y(mb, {{"x", x}, {"g", g}});
    std::vector<double> want;
    for (int64_t i = 0; i < x.numel(); ++i) want.push_back(at(x, i));
    expect_near(y, want, 1e-5);
  }
}

TEST(NnGridSample, PaddingModes) {
  Tensor x = f32_tensor({1, 1, 2, 2}, {1, 2, 3, 4});
  // (x, y) = (-3, -3) is pixel -2.5: zero, clamped to pixel 0, or reflected at -0.5 and 1.5 to pixel 1.5 (whose
  // right neighbour reflects back to pixel 1). (0, 0) is the centre.
  Tensor g = f32_tensor({1, 1, 2, 2}, {-3, -3, 0, 0});
  const std::vector<std::pair<std::string, std::vector<double>>> cases = {
      {"zeros", {0, 2.5}}, {"border", {1, 2.5}}, {"reflection", {4, 2.5}}};
  for (const auto& [pad, want] : cases) {
    ModelBuilder mb = grid_model({"1", "1", "2", "2"}, {"1", "1", "2", "2"});
    mb.attr("padding_mode", pad).output("y");
    Tensor y = run_y(mb, {{"x", x}, {"g", g}});
    EXPECT_EQ(y.dims(), (std::vector<int64_t>{1, 1, 1, 2}));
    expect_near(y, want);
  }
}

TEST(NnGridSample, ShapesAndErrors) {
  ModelBuilder mb = grid_model({"N", "3", "8", "8"}, {"N", "5", "7", "2"});
  mb.output("y");
  EXPECT_EQ(built_shape(mb), "[N,3,5,7]");
  ModelBuilder bad = grid_model({"1", "3", "8", "8"}, {"1", "5", "7", "3"});
  bad.output("y");
  std::string e = build_error(bad);
  EXPECT_NE(e.find("node 'gs' (GridSample): grid [1,5,7,3] must end in 2"), std::string::npos) << e;
}

}  // namespace
}  // namespace kiln
