// Pad (every mode, both forms) and DepthToSpace / SpaceToDepth.
#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

std::vector<float> pad_1d(const std::string& mode, std::vector<float> x, int64_t before, int64_t after) {
  ModelBuilder b(13);
  const int64_t n = static_cast<int64_t>(x.size());
  b.input("x", DType::kF32, {std::to_string(n)}).initializer("p", i64_tensor({2}, {before, after}));
  b.initializer("v", Tensor::scalar_f32(9));
  b.node("Pad", {"x", "p", "v"}, {"y"}).attr("mode", mode).output("y");
  auto out = run(b, {{"x", f32_tensor({n}, x)}});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? values(out->at("y")) : std::vector<float>{};
}

TEST(PadOp, EveryModeIn1D) {
  EXPECT_EQ(pad_1d("constant", {1, 2, 3}, 2, 1), (std::vector<float>{9, 9, 1, 2, 3, 9}));
  EXPECT_EQ(pad_1d("edge", {1, 2, 3}, 2, 1), (std::vector<float>{1, 1, 1, 2, 3, 3}));
  EXPECT_EQ(pad_1d("reflect", {1, 2, 3}, 2, 2), (std::vector<float>{3, 2, 1, 2, 3, 2, 1}));
  EXPECT_EQ(pad_1d("reflect", {1, 2, 3}, 5, 0), (std::vector<float>{2, 1, 2, 3, 2, 1, 2, 3}));
  EXPECT_EQ(pad_1d("wrap", {1, 2, 3}, 4, 1), (std::vector<float>{3, 1, 2, 3, 1, 2, 3, 1}));
  EXPECT_EQ(pad_1d("constant", {1, 2, 3}, -1, 1), (std::vector<float>{2, 3, 9}));
  EXPECT_EQ(pad_1d("edge", {7}, 1, 1), (std::vector<float>{7, 7, 7}));
}

TEST(PadOp, AttributeFormBeforeOpset11) {
  ModelBuilder b(2);
  b.input("x", DType::kI64, {"2", "2"}).node("Pad", {"x"}, {"y"});
  b.attr("pads", std::vector<int64_t>{0, 1, 1, 0}).attr("value", 4.f).output("y");
  auto out = run(b, {{"x", i64_tensor({2, 2}, {1, 2, 3, 4})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(values<int64_t>(out->at("y")), (std::vector<int64_t>{4, 1, 2, 4, 3, 4, 4, 4, 4}));
}

TEST(PadOp, AxesInputFromOpset18AndSymbolicDims) {
  ModelBuilder b(18);
  b.input("x", DType::kF32, {"batch", "2"}).initializer("p", i64_tensor({2}, {1, 2}));
  b.initializer("a", i64_tensor({1}, {-1}));
  b.node("Pad", {"x", "p", "", "a"}, {"y"}).output("y");
  EXPECT_EQ(built_shape(b), "[batch,5]");
  auto out = run(b, {{"x", f32_tensor({1, 2}, {1, 2})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{0, 1, 2, 0, 0}));
}

TEST(PadOp, BadPadsAreBuildErrors) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "2"}).initializer("p", i64_tensor({2}, {1, 1}));
  b.node("Pad", {"x", "p"}, {"y"}).output("y");
  EXPECT_NE(build_error(b).find("pads [1,1] must have 4 entries"), std::string::npos) << build_error(b);
  ModelBuilder c(13);
  c.input("x", DType::kF32, {"2"}).initializer("p", i64_tensor({2}, {-2, -1}));
  c.node("Pad", {"x", "p"}, {"y"}).output("y");
  EXPECT_NE(build_error(c).find("give a negative size"), std::string::npos) << build_error(c);
  ModelBuilder d(13);
  d.input("x", DType::kF32, {"2"}).initializer("p", i64_tensor({2}, {1, 1}));
  d.node("Pad", {"x", "p"}, {"y"}).attr("mode", std::string("mirror")).output("y");
  EXPECT_NE(build_error(d).find("mode 'mirror' is not supported"), std::string::npos) << build_error(d);
}

// Independent reference: out[n, c, h*b+i, w*b+j] = in[n, channel(c, i, j), h, w].
std::vector<float> depth_to_space_ref(int64_t c_out, int64_t h, int64_t w, int64_t b, bool crd) {
  std::vector<float> out;
  for (int64_t c = 0; c < c_out; ++c)
    for (int64_t y = 0; y < h * b; ++y)
      for (int64_t x = 0; x < w * b; ++x) {
        const int64_t i = y % b, j = x % b;
        const int64_t ch = crd ? c * b * b + i * b + j : (i * b + j) * c_out + c;
        out.push_back(static_cast<float>((ch * h + y / b) * w + x / b));
      }
  return out;
}

TEST(DepthToSpaceOp, DcrAndCrdRoundTripThroughSpaceToDepth) {
  for (const std::string mode : {"DCR", "CRD"}) {
    ModelBuilder b(13);
    b.input("x", DType::kF32, {"1", "8", "1", "3"}).node("DepthToSpace", {"x"}, {"y"}).attr("blocksize", int64_t{2});
    b.attr("mode", mode).node("SpaceToDepth", {"y"}, {"z"}).attr("blocksize", int64_t{2}).output("y").output("z");
    auto out = run(b, {{"x", iota_f32({1, 8, 1, 3})}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    EXPECT_EQ(dims_of(*out), (std::vector<int64_t>{1, 2, 2, 6}));
    EXPECT_EQ(values(out->at("y")), depth_to_space_ref(2, 1, 3, 2, mode == "CRD")) << mode;
    // SpaceToDepth is the inverse of DCR only.
    if (mode == "DCR") EXPECT_EQ(values(out->at("z")), values(iota_f32({24})));
  }
}

TEST(DepthToSpaceOp, ChannelsNotDivisibleIsABuildError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"1", "6", "2", "2"}).node("DepthToSpace", {"x"}, {"y"}).attr("blocksize", int64_t{2});
  b.output("y");
  EXPECT_NE(build_error(b).find("has 6 channels, not a multiple of blocksize^2 = 4"), std::string::npos)
      << build_error(b);
}

}  // namespace
}  // namespace kiln
