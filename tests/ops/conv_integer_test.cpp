#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

Result<std::map<std::string, Tensor>> run(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  KILN_ASSIGN_OR_RETURN(Engine engine, Builder::build_from_bytes(b.bytes(), cfg));
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, engine.create_context());
  return ctx.infer(inputs);
}

Tensor u8(std::vector<int64_t> dims, std::vector<uint8_t> v) { return Tensor::from_vector(DType::kU8, dims, v); }
Tensor i8(std::vector<int64_t> dims, std::vector<int8_t> v) { return Tensor::from_vector(DType::kI8, dims, v); }

TEST(ConvIntegerOp, Basic2DWithZeroPoint) {
  ModelBuilder b(10);
  b.input("x", DType::kU8, {"1", "1", "3", "3"})
      .initializer("w", u8({1, 1, 2, 2}, {1, 1, 1, 1}))
      .initializer("zx", u8({}, {1}))
      .node("ConvInteger", {"x", "w", "zx"}, {"y"})
      .output("y");
  auto out = run(b, {{"x", u8({1, 1, 3, 3}, {2, 3, 4, 5, 6, 7, 8, 9, 10})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dtype(), DType::kI32);
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 1, 2, 2}));
  EXPECT_EQ(std::vector<int32_t>(y.data<int32_t>(), y.data<int32_t>() + 4), (std::vector<int32_t>{12, 16, 24, 28}));
}

TEST(ConvIntegerOp, PaddingReadsAsTheZeroPoint) {
  ModelBuilder b(10);
  b.input("x", DType::kU8, {"1", "1", "3", "3"})
      .initializer("w", u8({1, 1, 2, 2}, {1, 1, 1, 1}))
      .initializer("zx", u8({}, {1}))
      .node("ConvInteger", {"x", "w", "zx"}, {"y"})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .output("y");
  auto out = run(b, {{"x", u8({1, 1, 3, 3}, {2, 3, 4, 5, 6, 7, 8, 9, 10})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 1, 4, 4}));
  EXPECT_EQ(y.data<int32_t>()[0], 1);    // only x[0,0] - 1 is inside
  EXPECT_EQ(y.data<int32_t>()[5], 12);   // the full top-left window
  EXPECT_EQ(y.data<int32_t>()[15], 9);  // only x[2,2] - 1
}

// Grouped, strided, dilated 1-D convolution checked against a direct formula.
TEST(ConvIntegerOp, GroupedStridedDilatedPerChannelWeightZeroPoint) {
  const int64_t n = 1, c = 4, len = 9, m = 2, k = 2, group = 2, stride = 2, dil = 2, pad = 1;
  Tensor x(DType::kI8, {n, c, len});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<int8_t>()[i] = static_cast<int8_t>((i * 29) % 200 - 100);
  Tensor w(DType::kI8, {m, c / group, k});
  for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = static_cast<int8_t>((i * 13) % 50 - 25);
  const std::vector<int8_t> zw = {3, -4};
  const int8_t zx = -7;
  ModelBuilder b(10);
  b.input("x", DType::kI8, {"1", "4", "9"})
      .initializer("w", w)
      .initializer("zx", i8({}, {zx}))
      .initializer("zw", i8({2}, zw))
      .node("ConvInteger", {"x", "w", "zx", "zw"}, {"y"})
      .attr("group", group)
      .attr("strides", std::vector<int64_t>{stride})
      .attr("dilations", std::vector<int64_t>{dil})
      .attr("pads", std::vector<int64_t>{pad, pad})
      .output("y");
  auto out = run(b, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  const int64_t out_len = (len + 2 * pad - (dil * (k - 1) + 1)) / stride + 1;
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{n, m, out_len}));
  for (int64_t oc = 0; oc < m; ++oc)
    for (int64_t o = 0; o < out_len; ++o) {
      int32_t want = 0;
      const int64_t g = oc / (m / group);
      for (int64_t ic = 0; ic < c / group; ++ic)
        for (int64_t kk = 0; kk < k; ++kk) {
          const int64_t p = o * stride - pad + kk * dil;
          if (p < 0 || p >= len) continue;
          want += (x.data<int8_t>()[(g * (c / group) + ic) * len + p] - zx) *
                  (w.data<int8_t>()[(oc * (c / group) + ic) * k + kk] - zw[oc]);
        }
      EXPECT_EQ(y.data<int32_t>()[oc * out_len + o], want) << oc << "," << o;
    }
}

TEST(ConvIntegerOp, SameUpperKeepsCeilOfInputOverStride) {
  ModelBuilder b(10);
  b.input("x", DType::kU8, {"1", "1", "5", "7"})
      .initializer("w", u8({3, 1, 3, 2}, std::vector<uint8_t>(18, 1)))
      .node("ConvInteger", {"x", "w"}, {"y"})
      .attr("auto_pad", std::string("SAME_UPPER"))
      .attr("strides", std::vector<int64_t>{2, 3})
      .output("y");
  auto out = run(b, {{"x", Tensor(DType::kU8, {1, 1, 5, 7})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").dims(), (std::vector<int64_t>{1, 3, 3, 3}));
}

TEST(ConvIntegerOp, ChannelMismatchIsABuildError) {
  ModelBuilder b(10);
  b.input("x", DType::kU8, {"1", "3", "5"})
      .initializer("w", u8({2, 2, 3}, std::vector<uint8_t>(12, 1)))
      .node("ConvInteger", {"x", "w"}, {"y"})
      .output("y");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("input x [1,3,5] has 3 channels but the weight [2,2,3] with group 1 expects 2"),
            std::string::npos)
      << e.status().message();
}

TEST(QLinearConvOp, BiasAndPerChannelWeightScale) {
  const std::vector<uint8_t> xv = {0, 17, 34, 51, 68, 85, 102, 119, 136, 153, 170, 187, 204, 221, 238, 255};
  const std::vector<int8_t> wv = {1, -2, 3, -4, 5, 6, -7, 8};
  const std::vector<float> ws = {0.05f, 0.1f};
  const std::vector<int32_t> bias = {100, -250};
  const float xs = 0.02f, ys = 0.07f;
  const uint8_t zx = 128, zy = 110;
  ModelBuilder b(10);
  b.input("x", DType::kU8, {"1", "1", "4", "4"})
      .initializer("xs", testing::f32_tensor({}, {xs}))
      .initializer("zx", u8({}, {zx}))
      .initializer("w", i8({2, 1, 2, 2}, wv))
      .initializer("ws", testing::f32_tensor({2}, ws))
      .initializer("zw", i8({2}, {0, 0}))
      .initializer("ys", testing::f32_tensor({}, {ys}))
      .initializer("zy", u8({}, {zy}))
      .initializer("bias", Tensor::from_vector(DType::kI32, {2}, bias))
      .node("QLinearConv", {"x", "xs", "zx", "w", "ws", "zw", "ys", "zy", "bias"}, {"y"})
      .output("y");
  auto out = run(b, {{"x", u8({1, 1, 4, 4}, xv)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dtype(), DType::kU8);
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 2, 3, 3}));
  for (int64_t m = 0; m < 2; ++m)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        int32_t acc = bias[m];
        for (int64_t di = 0; di < 2; ++di)
          for (int64_t dj = 0; dj < 2; ++dj) acc += (xv[(i + di) * 4 + j + dj] - zx) * wv[m * 4 + di * 2 + dj];
        const double q = std::nearbyint(acc * (double{xs} * ws[m] / double{ys})) + zy;
        EXPECT_EQ(y.data<uint8_t>()[(m * 3 + i) * 3 + j], static_cast<uint8_t>(std::clamp(q, 0.0, 255.0)))
            << m << "," << i << "," << j;
      }
}

}  // namespace
}  // namespace kiln
