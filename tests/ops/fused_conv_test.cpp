// FusedConv (kiln domain): inference and the CPU reference. The reference must equal Conv -> Add -> act built
// from the unfused ops, in both layouts.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/executor.h"
#include "onnx/importer.h"
#include "ops/fused_conv.h"
#include "passes/pass.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;
using testing::random_f32;

Result<std::map<std::string, Tensor>> run(const ModelBuilder& b,
                                          const std::map<std::string, Tensor>& inputs) {
  KILN_ASSIGN_OR_RETURN(ir::Graph g, onnx::import_model_bytes(b.bytes(), ".", "test"));
  KILN_RETURN_IF_ERROR(passes::infer_shapes(g));
  cpu::GraphExecutor ex(std::make_shared<const ir::Graph>(std::move(g)));
  return ex.run(inputs);
}

Result<ir::Graph> infer(const ModelBuilder& b) {
  KILN_ASSIGN_OR_RETURN(ir::Graph g, onnx::import_model_bytes(b.bytes(), ".", "test"));
  KILN_RETURN_IF_ERROR(passes::infer_shapes(g));
  return g;
}

// out axis i = in axis perm[i]
Tensor permute(const Tensor& t, const std::vector<size_t>& perm) {
  std::vector<int64_t> dims;
  for (size_t p : perm) dims.push_back(t.dim(p));
  Tensor out(DType::kF32, dims);
  std::vector<int64_t> in_strides(t.rank(), 1);
  for (size_t i = t.rank() - 1; i-- > 0;) in_strides[i] = in_strides[i + 1] * t.dim(i + 1);
  std::vector<int64_t> idx(dims.size(), 0);
  for (int64_t o = 0; o < out.numel(); ++o) {
    int64_t off = 0;
    for (size_t d = 0; d < dims.size(); ++d) off += idx[d] * in_strides[perm[d]];
    out.data<float>()[o] = t.data<float>()[off];
    for (size_t d = dims.size(); d-- > 0;) {
      if (++idx[d] < dims[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

void expect_close(const Tensor& got, const Tensor& want, double tol = 1e-5) {
  ASSERT_EQ(got.dims(), want.dims());
  int bad = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.get_as_double(i), e = want.get_as_double(i);
    if (!(std::fabs(a - e) <= tol * (1 + std::fabs(e))) && bad++ < 5)
      ADD_FAILURE() << "[" << i << "] " << a << " vs " << e;
  }
  EXPECT_EQ(bad, 0);
}

struct Case {
  std::vector<int64_t> x, w;  // NCHW / Conv's W layout
  std::vector<int64_t> pads, strides, dilations;
  int64_t group = 1;
  bool bias = true, residual = true;
  std::string act = "relu";
};

// Bounds for activation "clip" that cut both tails of the random data.
constexpr float kClipLo = -0.5f, kClipHi = 0.75f;

void add_conv_attrs(ModelBuilder& b, const Case& c) {
  if (!c.pads.empty()) b.attr("pads", c.pads);
  if (!c.strides.empty()) b.attr("strides", c.strides);
  if (!c.dilations.empty()) b.attr("dilations", c.dilations);
  b.attr("group", c.group);
}

// Unfused reference model: Conv -> [Add z] -> act.
std::map<std::string, Tensor> reference(const Case& c, const std::map<std::string, Tensor>& in) {
  ModelBuilder b;
  const size_t r = c.x.size();
  std::vector<std::string> xd, wd;
  for (auto d : c.x) xd.push_back(std::to_string(d));
  b.input("x", DType::kF32, xd).initializer("w", in.at("w"));
  if (c.bias) b.initializer("b", in.at("b"));
  b.node("Conv", {"x", "w", c.bias ? "b" : ""}, {"c"});
  add_conv_attrs(b, c);
  std::string cur = "c";
  if (c.residual) {
    b.input("z", DType::kF32, std::vector<std::string>(r, "?")).node("Add", {cur, "z"}, {"s"});
    cur = "s";
  }
  if (c.act == "relu")
    b.node("Relu", {cur}, {"y"});
  else if (c.act == "sigmoid")
    b.node("Sigmoid", {cur}, {"y"});
  else if (c.act == "silu")
    b.node("Sigmoid", {cur}, {"sg"}).node("Mul", {cur, "sg"}, {"y"});
  else if (c.act == "hardswish")
    b.node("HardSwish", {cur}, {"y"});
  else if (c.act == "clip")
    b.initializer("lo", Tensor::scalar_f32(kClipLo))
        .initializer("hi", Tensor::scalar_f32(kClipHi))
        .node("Clip", {cur, "lo", "hi"}, {"y"});
  else
    b.node("Identity", {cur}, {"y"});
  b.output("y");
  std::map<std::string, Tensor> feeds{{"x", in.at("x")}};
  if (c.residual) feeds["z"] = in.at("z");
  auto out = run(b, feeds);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::map<std::string, Tensor>{};
}

Result<std::map<std::string, Tensor>> fused(const Case& c, const std::map<std::string, Tensor>& in,
                                            bool nhwc) {
  const size_t r = c.x.size();
  ModelBuilder b;
  b.input("x", DType::kF32, std::vector<std::string>(r, "?"));
  b.initializer("w", nhwc ? permute(in.at("w"), ops::to_channels_last(r)) : in.at("w"));
  if (c.bias) b.initializer("b", in.at("b"));
  std::vector<std::string> ins{"x", "w", c.bias ? "b" : ""};
  if (c.residual) {
    b.input("z", DType::kF32, std::vector<std::string>(r, "?"));
    ins.push_back("z");
  }
  b.node("FusedConv", ins, {"y"}, "fc").domain("kiln").attr("activation", c.act);
  if (c.act == "clip") b.attr("clip_min", kClipLo).attr("clip_max", kClipHi);
  if (nhwc) b.attr("layout", std::string("NHWC"));
  add_conv_attrs(b, c);
  b.output("y");
  std::map<std::string, Tensor> feeds{
      {"x", nhwc ? permute(in.at("x"), ops::to_channels_last(r)) : in.at("x")}};
  if (c.residual) feeds["z"] = nhwc ? permute(in.at("z"), ops::to_channels_last(r)) : in.at("z");
  return run(b, feeds);
}

void check(const Case& c) {
  std::map<std::string, Tensor> in{
      {"x", random_f32(c.x, 1)}, {"w", random_f32(c.w, 2)}, {"b", random_f32({c.w[0]}, 3)}};
  // Z has the conv output's shape: take it from an unfused run without residual.
  Case plain = c;
  plain.residual = false;
  plain.act = "none";
  auto conv_only = reference(plain, in);
  ASSERT_TRUE(conv_only.count("y"));
  in["z"] = random_f32(conv_only.at("y").dims(), 4);
  auto want = reference(c, in);
  ASSERT_TRUE(want.count("y"));
  auto nchw = fused(c, in, false);
  ASSERT_TRUE(nchw.ok()) << nchw.status().to_string();
  expect_close(nchw->at("y"), want.at("y"));
  auto nhwc = fused(c, in, true);
  ASSERT_TRUE(nhwc.ok()) << nhwc.status().to_string();
  expect_close(permute(nhwc->at("y"), ops::to_channels_first(c.x.size())), want.at("y"));
}

TEST(FusedConvOp, ReluWithResidualAndBias) {
  check({{2, 3, 7, 7}, {4, 3, 3, 3}, {1, 1, 1, 1}, {}, {}, 1, true, true, "relu"});
}
TEST(FusedConvOp, NoneWithoutResidualOrBias) {
  check({{1, 3, 7, 7}, {5, 3, 1, 1}, {}, {}, {}, 1, false, false, "none"});
}
TEST(FusedConvOp, GroupedStridedDilatedAsymmetricPads) {
  check({{1, 4, 9, 8}, {6, 2, 3, 2}, {0, 1, 2, 0}, {2, 3}, {2, 1}, 2, true, true, "sigmoid"});
}
TEST(FusedConvOp, DepthwiseSilu) {
  check({{1, 6, 5, 5}, {6, 1, 3, 3}, {1, 1, 1, 1}, {}, {}, 6, true, false, "silu"});
}
TEST(FusedConvOp, DepthwiseHardSwishAndClip) {
  check({{2, 8, 6, 5}, {8, 1, 3, 3}, {1, 1, 1, 1}, {2, 1}, {}, 8, true, true, "hardswish"});
  check({{1, 8, 6, 5}, {8, 1, 3, 3}, {1, 1, 1, 1}, {}, {}, 8, true, false, "clip"});
  check({{1, 3, 7, 7}, {5, 3, 3, 3}, {}, {}, {}, 1, false, true, "clip"});
}

TEST(FusedConvOp, ClipBoundsMustBeAnInterval) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "3", "8", "8"})
      .input("w", DType::kF32, {"4", "3", "3", "3"})
      .node("FusedConv", {"x", "w"}, {"y"}, "fc9")
      .domain("kiln")
      .attr("activation", std::string("clip"))
      .attr("clip_min", 2.f)
      .attr("clip_max", 1.f)
      .output("y");
  auto g = infer(b);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("node 'fc9' (FusedConv)"), std::string::npos) << g.status().message();
  EXPECT_NE(g.status().message().find("not an interval"), std::string::npos) << g.status().message();
}

TEST(FusedConvOp, OneDAndThreeD) {
  check({{2, 3, 11}, {4, 3, 3}, {1, 1}, {2}, {}, 1, true, true, "relu"});
  check({{1, 2, 4, 5, 3}, {3, 2, 2, 3, 1}, {}, {}, {}, 1, false, true, "relu"});
}

TEST(FusedConvOp, InfersNhwcShapes) {
  ModelBuilder b;
  b.input("x", DType::kF16, {"batch", "224", "224", "3"})
      .input("w", DType::kF16, {"64", "7", "7", "3"})
      .node("FusedConv", {"x", "w"}, {"y"}, "stem")
      .domain("kiln")
      .attr("layout", std::string("NHWC"))
      .attr("strides", std::vector<int64_t>{2, 2})
      .attr("pads", std::vector<int64_t>{3, 3, 3, 3})
      .output("y");
  auto g = infer(b);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(g->values.at("y").shape.to_string(), "[batch,112,112,64]");
  EXPECT_EQ(g->values.at("y").dtype, DType::kF16);
}

TEST(FusedConvOp, ErrorsNameTheNode) {
  auto make = [](const std::string& act, const std::string& layout, std::vector<std::string> zdims) {
    ModelBuilder b;
    b.input("x", DType::kF32, {"1", "3", "8", "8"})
        .input("w", DType::kF32, {"4", "3", "3", "3"})
        .input("z", DType::kF32, zdims)
        .node("FusedConv", {"x", "w", "", "z"}, {"y"}, "fc7")
        .domain("kiln")
        .attr("activation", act)
        .attr("layout", layout)
        .output("y");
    return b;
  };
  auto bad_act = infer(make("gelu", "NCHW", {"1", "4", "6", "6"}));
  ASSERT_FALSE(bad_act.ok());
  EXPECT_NE(bad_act.status().message().find("node 'fc7' (FusedConv)"), std::string::npos);
  EXPECT_NE(bad_act.status().message().find("gelu"), std::string::npos);
  auto bad_layout = infer(make("relu", "NCDHW", {"1", "4", "6", "6"}));
  ASSERT_FALSE(bad_layout.ok());
  EXPECT_NE(bad_layout.status().message().find("NCDHW"), std::string::npos);
  auto bad_z = infer(make("relu", "NCHW", {"1", "4", "8", "8"}));
  ASSERT_FALSE(bad_z.ok());
  EXPECT_NE(bad_z.status().message().find("residual Z [1,4,8,8]"), std::string::npos)
      << bad_z.status().message();
  EXPECT_NE(bad_z.status().message().find("[1,4,6,6]"), std::string::npos);
  // Conv's own checks speak for FusedConv.
  ModelBuilder wrong_c;
  wrong_c.input("x", DType::kF32, {"1", "5", "8", "8"})
      .input("w", DType::kF32, {"4", "3", "3", "3"})
      .node("FusedConv", {"x", "w"}, {"y"}, "fc8")
      .domain("kiln")
      .output("y");
  auto bad_c = infer(wrong_c);
  ASSERT_FALSE(bad_c.ok());
  EXPECT_EQ(bad_c.status().message().rfind("node 'fc8' (FusedConv): ", 0), 0u) << bad_c.status().message();
  EXPECT_NE(bad_c.status().message().find("channels"), std::string::npos);
}

TEST(FusedConvOp, ReluTurnsNaNIntoZeroLikeRelu) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "1", "1", "2"})
      .initializer("w", testing::f32_tensor({1, 1, 1, 1}, {1.f}))
      .node("FusedConv", {"x", "w"}, {"y"}, "fc")
      .domain("kiln")
      .attr("activation", std::string("relu"))
      .output("y");
  auto out = run(b, {{"x", testing::f32_tensor({1, 1, 1, 2}, {std::nanf(""), -3.f})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").data<float>()[0], 0.f);
  EXPECT_EQ(out->at("y").data<float>()[1], 0.f);
}

}  // namespace
}  // namespace kiln
