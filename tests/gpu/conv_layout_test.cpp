// The builder's layout choice on CUDA: f16/bf16 engines run their 2-D convolutions channels-last (FusedConv
// layout NHWC, Transposes only where another op reads NCHW) and match the f32 CPU engine; f32 engines keep
// NCHW. Small nets with odd shapes (3/7 channels, 11x9 images, groups, strides, residuals, a conv output that
// is a graph output and read by a MaxPool) and ResNet-50.
#include <cmath>

#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"
#include "engine/engine_state.h"
#include "support/skeleton.h"
#include "support/test_nets.h"

namespace kiln {
namespace {

using testing::ModelBuilder;
using testing::random_f32;

Result<Engine> build(const std::string& bytes, BackendKind backend, Precision p,
                     std::vector<std::string>* progress = nullptr,
                     ConvLayoutChoice layout = ConvLayoutChoice::kAuto) {
  BuildConfig cfg;
  cfg.backend = backend;
  cfg.precision = p;
  cfg.conv_layout = layout;
  if (progress) cfg.progress = [progress](std::string_view s) { progress->emplace_back(s); };
  return Builder::build_from_bytes(bytes, cfg);
}

int count(const ir::Graph& g, const std::string& op, const char* layout = nullptr) {
  int n = 0;
  for (const auto& node : g.nodes)
    n += node.op_type == op && (!layout || node.attr_string("layout", "NCHW") == layout);
  return n;
}

// |got - want| relative to want's largest magnitude, and the cosine of the two.
void expect_close(const Tensor& got, const Tensor& want, double rel, double min_cosine) {
  ASSERT_EQ(got.dims(), want.dims());
  double scale = 0, err = 0, ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.get_as_double(i), e = want.get_as_double(i);
    ASSERT_TRUE(std::isfinite(a)) << "[" << i << "]";
    scale = std::max(scale, std::fabs(e));
    err = std::max(err, std::fabs(a - e));
    ab += a * e;
    aa += a * a;
    bb += e * e;
  }
  EXPECT_LE(err, rel * scale);
  EXPECT_GE(ab / std::sqrt(aa * bb + 1e-300), min_cosine);
}

std::map<std::string, Tensor> infer(const Engine& e, const std::map<std::string, Tensor>& inputs) {
  auto ctx = e.create_context();
  EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
  if (!ctx.ok()) return {};
  auto out = ctx->infer(inputs);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::map<std::string, Tensor>{};
}


TEST(GpuConvLayout, ResidualNetF16AndBf16RunNhwc) {
  KILN_REQUIRE_GPU();
  const std::string bytes = testing::conv_residual_net().bytes();
  auto ref = build(bytes, BackendKind::kCpu, Precision::kF32);
  ASSERT_TRUE(ref.ok()) << ref.status().to_string();
  for (Precision p : {Precision::kF16, Precision::kBF16}) {
    SCOPED_TRACE(std::string(precision_name(p)));
    std::vector<std::string> lines;
    auto e = build(bytes, BackendKind::kCuda, p, &lines);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    const ir::Graph& g = *e->state()->graph;
    EXPECT_EQ(count(g, "FusedConv", "NHWC"), 6);
    EXPECT_EQ(count(g, "Transpose"), 2);
    bool said = false;
    for (const auto& l : lines)
      said |= l.find("pass conv_layout: 6 convolutions channels-last") != std::string::npos;
    EXPECT_TRUE(said) << "no conv_layout summary in the build progress";
    // Odd batches, one engine: the NHWC plans per shape.
    for (int64_t n : {1, 3}) {
      const std::map<std::string, Tensor> in{{"x", random_f32({n, 3, 11, 9}, 20 + n)}};
      auto want = infer(*ref, in);
      auto got = infer(*e, in);
      ASSERT_EQ(got.size(), 1u);
      EXPECT_EQ(got.at("y").dtype(), DType::kF32);  // engine I/O keeps the model's dtype
      expect_close(got.at("y"), want.at("y"), p == Precision::kF16 ? 1e-2 : 5e-2, 0.999);
    }
  }
}

// Graph outputs written by convs, and a MaxPool that reads a conv's output: NCHW copies there, NHWC between
// the convs; all outputs match.
TEST(GpuConvLayout, ConvOutputsReadAsNchwToo) {
  KILN_REQUIRE_GPU();
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "3", "7", "7"})
      .initializer("w1", random_f32({5, 3, 3, 3}, 1))
      .initializer("w2", random_f32({5, 5, 1, 1}, 2))
      .initializer("w3", random_f32({4, 5, 3, 3}, 3))
      .node("Conv", {"x", "w1"}, {"c1"}, "c1")
      .node("Conv", {"c1", "w2"}, {"c2"}, "c2")
      .node("Relu", {"c2"}, {"r2"})
      .node("Conv", {"r2", "w3"}, {"c3"}, "c3")
      .attr("strides", std::vector<int64_t>{2, 2})
      .node("Conv", {"r2", "w2"}, {"c4"}, "c4")
      .node("MaxPool", {"r2"}, {"p"})
      .attr("kernel_shape", std::vector<int64_t>{2, 2})
      .output("c1")
      .output("c3")
      .output("c4")
      .output("p");
  auto ref = build(b.bytes(), BackendKind::kCpu, Precision::kF32);
  // --conv-layout nchw keeps them all NCHW; the default (auto) is channels-last at every batch, as nhwc.
  auto nchw = build(b.bytes(), BackendKind::kCuda, Precision::kF16, nullptr, ConvLayoutChoice::kNCHW);
  ASSERT_TRUE(nchw.ok()) << nchw.status().to_string();
  EXPECT_EQ(count(*nchw->state()->graph, "FusedConv", "NHWC"), 0);
  EXPECT_EQ(count(*nchw->state()->graph, "Transpose"), 0);
  auto by_default = build(b.bytes(), BackendKind::kCuda, Precision::kF16);
  ASSERT_TRUE(by_default.ok()) << by_default.status().to_string();
  EXPECT_EQ(count(*by_default->state()->graph, "FusedConv", "NHWC"), 4);
  auto e = build(b.bytes(), BackendKind::kCuda, Precision::kF16, nullptr, ConvLayoutChoice::kNHWC);
  ASSERT_TRUE(ref.ok() && e.ok());
  EXPECT_EQ(count(*e->state()->graph, "FusedConv", "NHWC"), 4);
  EXPECT_EQ(count(*e->state()->graph, "Transpose"), 5);
  const std::map<std::string, Tensor> in{{"x", random_f32({1, 3, 7, 7}, 9)}};
  auto want = infer(*ref, in);
  auto got = infer(*e, in);
  ASSERT_EQ(got.size(), 4u);
  for (const auto& [name, t] : want) {
    SCOPED_TRACE(name);
    expect_close(got.at(name), t, 1e-2, 0.999);
  }
}

// ConvNeXt-style blocks (depthwise conv, channels-last MLP, constant layer scale, residual Add) through the whole
// builder: the residual stream stays channels-last between blocks, and the f16 engine matches the CPU.
TEST(GpuConvLayout, ConvNextBlocksStayChannelsLast) {
  KILN_REQUIRE_GPU();
  const std::string bytes = testing::convnext_blocks(6).bytes();
  auto ref = build(bytes, BackendKind::kCpu, Precision::kF32);
  auto e = build(bytes, BackendKind::kCuda, Precision::kF16);
  ASSERT_TRUE(ref.ok() && e.ok()) << (e.ok() ? ref.status().to_string() : e.status().to_string());
  // At most the four of the CPU pass test (ConvLayout.ConvNextBlocksAfterTheDefaultPipeline): at the stem and
  // the head, none between blocks (eight before constants and chains moved).
  EXPECT_LE(count(*e->state()->graph, "Transpose"), 4);
  EXPECT_EQ(count(*e->state()->graph, "FusedConv", "NHWC"), 3);
  for (int64_t n : {1, 3}) {
    const std::map<std::string, Tensor> in{{"x", random_f32({n, 3, 10, 10}, 30 + n)}};
    auto want = infer(*ref, in);
    auto got = infer(*e, in);
    ASSERT_EQ(got.size(), 1u);
    expect_close(got.at("y"), want.at("y"), 1e-2, 0.999);
  }
}

// f32 CUDA engines keep NCHW (the builder only picks NHWC for f16/bf16).
TEST(GpuConvLayout, F32EnginesKeepNchw) {
  KILN_REQUIRE_GPU();
  auto e = build(testing::conv_residual_net().bytes(), BackendKind::kCuda, Precision::kF32);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(count(*e->state()->graph, "FusedConv", "NCHW"), 6);
  EXPECT_EQ(count(*e->state()->graph, "Transpose"), 0);
}

// ResNet-50 in f16: all 53 convs NHWC, 4 Transposes (image in, around the stem's MaxPool, before
// GlobalAveragePool), outputs close to the f32 CPU engine.
TEST(GpuConvLayout, ResNet50F16) {
  KILN_REQUIRE_GPU();
  const std::string bytes = testing::load_skeleton("resnet50");
  auto ref = build(bytes, BackendKind::kCpu, Precision::kF32);
  auto e = build(bytes, BackendKind::kCuda, Precision::kF16);
  ASSERT_TRUE(ref.ok() && e.ok());
  const ir::Graph& g = *e->state()->graph;
  EXPECT_EQ(count(g, "FusedConv", "NHWC"), 53);
  EXPECT_EQ(count(g, "Transpose"), 4);
  const std::map<std::string, Tensor> in{{"image", random_f32({3, 3, 224, 224}, 31)}};
  auto want = infer(*ref, in);
  auto got = infer(*e, in);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, t] : want) expect_close(got.at(name), t, 5e-2, 0.999);
}

}  // namespace
}  // namespace kiln
