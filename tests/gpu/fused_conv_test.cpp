// FusedConv on the GPU against the CPU reference (which composes Conv + Add + activation): odd shapes,
// groups, depthwise, strides, dilation, pads (symmetric: cuDNN; asymmetric: the direct kernel), 1x1, 1-D and
// 3-D, every activation, with and without residual and bias, NCHW and NHWC, f32 (TF32 off) / f16 / bf16; kiln's
// channels-last depthwise kernel on odd shapes; the
// plan cache across shapes; ResNet-50 fused on the GPU against the unfused CPU reference.
#include <cmath>

#include "gpu/gpu_harness.h"
#include "ops/fused_conv.h"
#include "support/skeleton.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

std::vector<std::string> str_dims(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (auto x : d) s.push_back(std::to_string(x));
  return s;
}

std::vector<int64_t> permuted(const std::vector<int64_t>& d, const std::vector<size_t>& perm) {
  std::vector<int64_t> out;
  for (size_t p : perm) out.push_back(d[p]);
  return out;
}

// Output dims of a Conv (channels first), from the usual formula.
std::vector<int64_t> conv_out(const std::vector<int64_t>& x, const std::vector<int64_t>& w,
                              const std::vector<int64_t>& pads, const std::vector<int64_t>& strides,
                              const std::vector<int64_t>& dil) {
  const size_t n = x.size() - 2;
  std::vector<int64_t> y{x[0], w[0]};
  for (size_t i = 0; i < n; ++i) {
    const int64_t p = pads.empty() ? 0 : pads[i] + pads[i + n];
    const int64_t s = strides.empty() ? 1 : strides[i];
    const int64_t d = dil.empty() ? 1 : dil[i];
    y.push_back((x[2 + i] + p - ((w[2 + i] - 1) * d + 1)) / s + 1);
  }
  return y;
}

struct Geo {
  std::vector<int64_t> x, w;  // channels first: X [N, C, ...], W [M, C/group, k...]
  std::vector<int64_t> pads, strides, dilations;
  int64_t group = 1;
  bool bias = true;
  bool weights_as_inputs = false;
};

struct Variant {
  const char* act;
  bool residual;
};

void check(DType dt, const Geo& g, Variant v, bool nhwc, uint64_t seed) {
  const std::vector<int64_t> yc = conv_out(g.x, g.w, g.pads, g.strides, g.dilations);
  const size_t r = g.x.size();
  const auto xd = nhwc ? permuted(g.x, ops::to_channels_last(r)) : g.x;
  const auto wd = nhwc ? permuted(g.w, ops::to_channels_last(r)) : g.w;
  const auto yd = nhwc ? permuted(yc, ops::to_channels_last(r)) : yc;
  SCOPED_TRACE(std::string(dtype_name(dt)) + (nhwc ? " NHWC" : " NCHW") + " X " + dims_to_string(xd) + " W " +
               dims_to_string(wd) + " group " + std::to_string(g.group) + " pads " + dims_to_string(g.pads) +
               " strides " + dims_to_string(g.strides) + " dilations " + dims_to_string(g.dilations) +
               " act " + v.act + (v.residual ? " +Z" : "") + (g.bias ? " +B" : ""));
  ModelBuilder b;
  std::map<std::string, Tensor> inputs;
  b.input("x", dt, str_dims(xd));
  inputs["x"] = gputest::random_tensor(dt, xd, seed);
  Tensor w = gputest::random_tensor(dt, wd, seed + 1), bias = gputest::random_tensor(dt, {g.w[0]}, seed + 2);
  if (g.weights_as_inputs) {
    b.input("w", dt, str_dims(wd));
    inputs["w"] = w;
    if (g.bias) {
      b.input("b", dt, {std::to_string(g.w[0])});
      inputs["b"] = bias;
    }
  } else {
    b.initializer("w", w);
    if (g.bias) b.initializer("b", bias);
  }
  std::vector<std::string> ins{"x", "w", g.bias ? "b" : ""};
  if (v.residual) {
    b.input("z", dt, str_dims(yd));
    inputs["z"] = gputest::random_tensor(dt, yd, seed + 3);
    ins.push_back("z");
  }
  b.node("FusedConv", ins, {"y"}, "fc").domain("kiln").attr("activation", std::string(v.act));
  if (std::string(v.act) == "clip") b.attr("clip_min", -0.5f).attr("clip_max", 0.75f);
  if (nhwc) b.attr("layout", std::string("NHWC"));
  if (g.group != 1) b.attr("group", g.group);
  if (!g.strides.empty()) b.attr("strides", g.strides);
  if (!g.dilations.empty()) b.attr("dilations", g.dilations);
  if (!g.pads.empty()) b.attr("pads", g.pads);
  b.output("y");
  // f32: cuDNN sums in another order than the CPU (~1e-6 on these sums). f16/bf16: the conv+epilogue path
  // rounds the convolution once before adding Z, the CPU reference rounds only the final value.
  std::optional<gputest::Tolerance> tol;
  if (dt == DType::kF32) tol = gputest::Tolerance{1e-5, 1e-5};
  if (dt == DType::kF16) tol = gputest::Tolerance{5e-3, 5e-3};
  if (dt == DType::kBF16) tol = gputest::Tolerance{3e-2, 3e-2};
  gputest::expect_gpu_matches_cpu(b, inputs, 1, tol);
}

const DType kFloatTypes[] = {DType::kF32, DType::kF16, DType::kBF16};
const Variant kVariants[] = {{"none", true},    {"relu", true},  {"relu", false},     {"sigmoid", true},
                             {"silu", false},   {"none", false}, {"hardswish", true}, {"clip", false}};

void check_all(const Geo& g, uint64_t seed) {
  for (DType dt : kFloatTypes)
    for (bool nhwc : {false, true})
      for (const Variant& v : kVariants) check(dt, g, v, nhwc, seed++);
}

TEST(GpuFusedConv, TwoDOddShapes) {
  KILN_REQUIRE_GPU();
  check_all({.x = {1, 3, 7, 7}, .w = {16, 3, 3, 3}, .pads = {1, 1, 1, 1}}, 1);
  check_all({.x = {3, 7, 17, 17}, .w = {5, 7, 5, 5}, .pads = {2, 2, 2, 2}, .strides = {2, 2}, .bias = false},
            100);
  check_all({.x = {1, 127, 7, 7}, .w = {3, 127, 1, 1}, .weights_as_inputs = true}, 200);  // 1x1
  check_all({.x = {1, 16, 9, 9}, .w = {7, 16, 1, 1}, .strides = {2, 2}}, 300);            // strided 1x1
  check_all({.x = {2, 5, 6, 11}, .w = {4, 5, 2, 3}}, 400);  // non-square, no pads
}

TEST(GpuFusedConv, GroupsDepthwiseDilation) {
  KILN_REQUIRE_GPU();
  check_all({.x = {2, 8, 9, 9}, .w = {12, 4, 3, 3}, .pads = {1, 1, 1, 1}, .strides = {2, 2}, .group = 2},
            500);
  check_all({.x = {1, 6, 7, 7}, .w = {6, 1, 3, 3}, .pads = {1, 1, 1, 1}, .group = 6}, 600);  // depthwise
  check_all({.x = {1, 6, 7, 7}, .w = {12, 1, 3, 3}, .pads = {1, 1, 1, 1}, .group = 6, .bias = false}, 700);
  check_all({.x = {1, 4, 11, 11}, .w = {5, 4, 3, 3}, .pads = {2, 2, 2, 2}, .dilations = {2, 2}}, 800);
}

// kiln's channels-last depthwise kernel (depthwise_conv.cu; untimed contexts take it for every NHWC depthwise
// convolution it can implement): channel counts that take 16-byte, pair and single-element vectors, one and
// two channel blocks, 1x1 to 13x13 filters (the most taps it keeps in shared memory) and 14x14 (one more than
// it takes: cuDNN then), strides, dilation, asymmetric pads, rows narrower and wider than a thread's columns.
TEST(GpuFusedConv, DepthwiseChannelsLastOddShapes) {
  KILN_REQUIRE_GPU();
  const Geo shapes[] = {
      {.x = {1, 1, 1, 1}, .w = {1, 1, 1, 1}, .group = 1},
      {.x = {3, 7, 9, 13}, .w = {7, 1, 3, 3}, .pads = {1, 1, 1, 1}, .group = 7},
      {.x = {2, 16, 15, 15}, .w = {16, 1, 7, 7}, .pads = {3, 3, 3, 3}, .group = 16},
      {.x = {1, 127, 11, 9}, .w = {127, 1, 5, 5}, .pads = {2, 2, 2, 2}, .strides = {2, 2}, .group = 127},
      {.x = {2, 96, 14, 14}, .w = {96, 1, 7, 7}, .pads = {3, 3, 3, 3}, .group = 96, .bias = false},
      {.x = {1, 24, 10, 10}, .w = {24, 1, 3, 3}, .pads = {2, 2, 2, 2}, .dilations = {2, 2}, .group = 24},
      {.x = {1, 40, 33, 5}, .w = {40, 1, 3, 3}, .pads = {1, 1, 1, 1}, .strides = {2, 1}, .group = 40},
      {.x = {2, 8, 8, 7}, .w = {8, 1, 3, 2}, .pads = {0, 1, 2, 0}, .strides = {1, 2}, .group = 8},
      {.x = {1, 8, 20, 20}, .w = {8, 1, 13, 13}, .pads = {6, 6, 6, 6}, .group = 8},
      {.x = {1, 8, 16, 16}, .w = {8, 1, 14, 14}, .pads = {6, 6, 7, 7}, .group = 8},
  };
  uint64_t seed = 5000;
  for (const Geo& g : shapes)
    for (DType dt : kFloatTypes)
      for (const Variant& v : kVariants) check(dt, g, v, /*nhwc=*/true, seed++);
}

TEST(GpuFusedConv, AsymmetricPadsRunTheDirectKernel) {
  KILN_REQUIRE_GPU();
  check_all({.x = {1, 3, 8, 7}, .w = {4, 3, 3, 2}, .pads = {0, 1, 2, 0}, .strides = {1, 2}}, 900);
  check_all({.x = {2, 4, 6, 6}, .w = {4, 2, 2, 2}, .pads = {1, 0, 0, 1}, .group = 2, .bias = false}, 1000);
}

TEST(GpuFusedConv, OneDAndThreeD) {
  KILN_REQUIRE_GPU();
  check_all({.x = {2, 3, 11}, .w = {4, 3, 3}, .pads = {1, 1}, .strides = {2}}, 1100);
  check_all({.x = {1, 2, 4, 5, 6}, .w = {3, 2, 3, 3, 3}, .pads = {1, 1, 1, 1, 1, 1}}, 1200);
  check_all({.x = {1, 2, 3, 4, 5, 6}, .w = {3, 2, 2, 2, 2, 2}}, 1300);  // 4-D spatial: direct kernel
}

TEST(GpuFusedConv, SingleElementAndEmptyBatch) {
  KILN_REQUIRE_GPU();
  check(DType::kF32, {.x = {1, 1, 1, 1}, .w = {1, 1, 1, 1}}, {"relu", true}, false, 1);
  check(DType::kF16, {.x = {1, 1, 1, 1}, .w = {1, 1, 1, 1}}, {"silu", true}, true, 2);
  ModelBuilder b;
  b.input("x", DType::kF32, {"0", "3", "5", "5"})
      .input("z", DType::kF32, {"0", "4", "5", "5"})
      .initializer("w", gputest::random_tensor(DType::kF32, {4, 3, 3, 3}, 3))
      .node("FusedConv", {"x", "w", "", "z"}, {"y"}, "fc")
      .domain("kiln")
      .attr("activation", std::string("relu"))
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .output("y");
  gputest::expect_gpu_matches_cpu(
      b, {{"x", Tensor(DType::kF32, {0, 3, 5, 5})}, {"z", Tensor(DType::kF32, {0, 4, 5, 5})}}, 0);
}

std::shared_ptr<const ir::Graph> import_graph(const std::string& bytes, bool fuse) {
  auto g = onnx::import_model_bytes(bytes, ".", "gpu test");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  if (!g.ok()) return nullptr;
  Status s = fuse ? passes::run_pipeline(*g, passes::default_pipeline()) : passes::infer_shapes(*g);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return std::make_shared<const ir::Graph>(std::move(*g));
}

// Max |a - e| relative to the reference's largest magnitude.
double max_rel_error(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.dims(), want.dims());
  if (got.dims() != want.dims()) return INFINITY;
  double scale = 0, err = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    scale = std::max(scale, std::fabs(want.get_as_double(i)));
    err = std::max(err, std::fabs(got.get_as_double(i) - want.get_as_double(i)));
  }
  return err / std::max(scale, 1e-30);
}

// One context runs several shapes: a plan per shape, each reused when the shape comes back.
TEST(GpuFusedConv, PlansPerShapeAreReused) {
  KILN_REQUIRE_GPU();
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "8", "h", "h"})
      .input("z", DType::kF32, {"batch", "8", "h", "h"})
      .initializer("w", gputest::random_tensor(DType::kF32, {8, 8, 3, 3}, 1))
      .initializer("b", gputest::random_tensor(DType::kF32, {8}, 2))
      .node("Conv", {"x", "w", "b"}, {"c"})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Add", {"c", "z"}, {"s"})
      .node("Relu", {"s"}, {"y"})
      .output("y");
  auto fused = import_graph(b.bytes(), true);
  auto plain = import_graph(b.bytes(), false);
  ASSERT_TRUE(fused && plain);
  int n_fused = 0;
  for (const auto& n : fused->nodes) n_fused += n.op_type == "FusedConv";
  ASSERT_EQ(n_fused, 1);
  cpu::GraphExecutor cpu_exec(plain);
  auto gpu = cuda::GraphExecutor::create(fused, false);
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  uint64_t seed = 10;
  for (auto [n, h] : {std::pair<int64_t, int64_t>{1, 7}, {3, 5}, {1, 7}, {2, 16}, {3, 5}}) {
    SCOPED_TRACE("batch " + std::to_string(n) + " size " + std::to_string(h));
    std::map<std::string, Tensor> in{{"x", gputest::random_tensor(DType::kF32, {n, 8, h, h}, seed++)},
                                     {"z", gputest::random_tensor(DType::kF32, {n, 8, h, h}, seed++)}};
    auto want = cpu_exec.run(in);
    ASSERT_TRUE(want.ok()) << want.status().to_string();
    auto got = (*gpu)->run(in);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_GE((*gpu)->last_stats().gpu_nodes, 1);
    EXPECT_LE(max_rel_error(got->at("y"), want->at("y")), 1e-5);
  }
}

TEST(GpuFusedConv, Tf32WhenAllowedStaysClose) {
  KILN_REQUIRE_GPU();
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "64", "14", "14"})
      .initializer("w", gputest::random_tensor(DType::kF32, {64, 64, 3, 3}, 1))
      .initializer("b", gputest::random_tensor(DType::kF32, {64}, 2))
      .node("FusedConv", {"x", "w", "b"}, {"y"}, "fc")
      .domain("kiln")
      .attr("activation", std::string("relu"))
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .output("y");
  auto graph = import_graph(b.bytes(), false);
  ASSERT_TRUE(graph);
  cpu::GraphExecutor cpu_exec(graph);
  std::map<std::string, Tensor> in{{"x", gputest::random_tensor(DType::kF32, {2, 64, 14, 14}, 3)}};
  auto want = cpu_exec.run(in);
  ASSERT_TRUE(want.ok());
  auto gpu = cuda::GraphExecutor::create(graph, true);
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  auto got = (*gpu)->run(in);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_LE(max_rel_error(got->at("y"), want->at("y")), 5e-3);  // TF32: 10-bit mantissa products
}

// ResNet-50 as exported: the pipeline makes all 53 Convs FusedConv (49 with a Relu, the 4 downsample ones
// activation none); the fused GPU run matches the unfused CPU reference.
TEST(GpuFusedConv, ResNet50FusedMatchesUnfusedCpu) {
  KILN_REQUIRE_GPU();
  const std::string bytes = testing::load_skeleton("resnet50");
  auto fused = import_graph(bytes, true);
  auto plain = import_graph(bytes, false);
  ASSERT_TRUE(fused && plain);
  int n_fused = 0;
  for (const auto& n : fused->nodes) n_fused += n.op_type == "FusedConv";
  EXPECT_EQ(n_fused, 53);
  std::map<std::string, Tensor> in{
      {plain->inputs[0], gputest::random_tensor(DType::kF32, {1, 3, 224, 224}, 7)}};
  cpu::GraphExecutor cpu_exec(plain);
  auto want = cpu_exec.run(in);
  ASSERT_TRUE(want.ok()) << want.status().to_string();
  auto gpu = cuda::GraphExecutor::create(fused, false);
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  for (int rep = 0; rep < 2; ++rep) {  // the second run uses the cached plans
    auto got = (*gpu)->run(in);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_GE((*gpu)->last_stats().gpu_nodes, 53);
    for (const auto& [name, t] : *want)
      EXPECT_LE(max_rel_error(got->at(name), t), 1e-4) << name << " run " << rep;
  }
}

}  // namespace
}  // namespace kiln
