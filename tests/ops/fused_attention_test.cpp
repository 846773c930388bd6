// FusedAttention (kiln domain) on the CPU reference: against the unfused ONNX graph for each feature (mask
// kinds, causal, nan_to_zero, GQA and batch broadcasting, default scale, Sk == 0), and inference errors that
// name the problem.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backends/cpu/executor.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::f32_tensor;
using testing::ModelBuilder;

std::vector<std::string> sd(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (auto x : d) s.push_back(std::to_string(x));
  return s;
}

Result<std::map<std::string, Tensor>> run(const ModelBuilder& b, const std::map<std::string, Tensor>& in) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "test");
  if (!g.ok()) return g.status();
  KILN_RETURN_IF_ERROR(passes::infer_shapes(*g));
  cpu::GraphExecutor ex(std::make_shared<const ir::Graph>(std::move(*g)));
  return ex.run(in);
}

struct Case {
  std::vector<int64_t> q, k, v;
  std::vector<int64_t> mask;  // empty: none
  DType mask_dt = DType::kBool;
  std::optional<float> scale;
  bool causal = false, nan_to_zero = false;
};

ModelBuilder fused_model(const Case& c) {
  ModelBuilder b(18);
  b.input("q", DType::kF32, sd(c.q)).input("k", DType::kF32, sd(c.k)).input("v", DType::kF32, sd(c.v));
  std::vector<std::string> ins = {"q", "k", "v"};
  if (!c.mask.empty()) {
    b.input("mask", c.mask_dt, sd(c.mask));
    ins.push_back("mask");
  }
  b.node("FusedAttention", ins, {"y"}).domain("kiln");
  if (c.scale) b.attr("scale", *c.scale);
  b.attr("causal", int64_t{c.causal}).attr("nan_to_zero", int64_t{c.nan_to_zero}).output("y");
  return b;
}

// The same math in plain ONNX ops. GQA is written as an Expand of K/V to every query head.
ModelBuilder unfused_model(const Case& c) {
  const float inf = std::numeric_limits<float>::infinity();
  ModelBuilder b(18);
  b.input("q", DType::kF32, sd(c.q)).input("k", DType::kF32, sd(c.k)).input("v", DType::kF32, sd(c.v));
  const int64_t sq = c.q[2], sk = c.k[2], h = std::max({c.q[1], c.k[1], c.v[1]});
  std::string k = "k", v = "v";
  auto expand_heads = [&](const std::string& x, const std::vector<int64_t>& dims) {
    if (dims[1] == h || dims[1] == 1) return x;
    // [B, Hk, S, D] -> [B, Hk, 1, S, D] -> [B, Hk, h/Hk, S, D] -> [B, h, S, D]
    b.initializer(x + "_ax", testing::i64_tensor({1}, {2}))
        .initializer(x + "_e", testing::i64_tensor({5}, {dims[0], dims[1], h / dims[1], dims[2], dims[3]}))
        .initializer(x + "_r", testing::i64_tensor({4}, {dims[0], h, dims[2], dims[3]}))
        .node("Unsqueeze", {x, x + "_ax"}, {x + "_u"})
        .node("Expand", {x + "_u", x + "_e"}, {x + "_x"})
        .node("Reshape", {x + "_x", x + "_r"}, {x + "_h"});
    return x + "_h";
  };
  k = expand_heads(k, c.k);
  v = expand_heads(v, c.v);
  const float scale = c.scale ? *c.scale : 1.f / std::sqrt(static_cast<float>(c.q[3]));
  b.initializer("scale", f32_tensor({}, {scale}))
      .node("Transpose", {k}, {"kt"})
      .attr("perm", std::vector<int64_t>{0, 1, 3, 2})
      .node("MatMul", {"q", "kt"}, {"s0"})
      .node("Mul", {"s0", "scale"}, {"s1"});
  std::string s = "s1";
  if (!c.mask.empty()) {
    b.input("mask", c.mask_dt, sd(c.mask));
    if (c.mask_dt == DType::kBool) {
      b.initializer("ninf", f32_tensor({}, {-inf})).node("Where", {"mask", s, "ninf"}, {"s2"});
    } else {
      b.node("Add", {s, "mask"}, {"s2"});
    }
    s = "s2";
  }
  if (c.causal) {
    Tensor tri(DType::kF32, {sq, sk});
    for (int64_t i = 0; i < sq; ++i)
      for (int64_t j = 0; j < sk; ++j) tri.data<float>()[i * sk + j] = j <= i ? 0.f : -inf;
    b.initializer("tri", tri).node("Add", {s, "tri"}, {"s3"});
    s = "s3";
  }
  b.node("Softmax", {s}, {"p"}).attr("axis", int64_t{-1});
  std::string p = "p";
  if (c.nan_to_zero) {
    b.initializer("zero", f32_tensor({}, {0.f}))
        .node("IsNaN", {"p"}, {"pn"})
        .node("Where", {"pn", "zero", "p"}, {"p0"});
    p = "p0";
  }
  b.node("MatMul", {p, v}, {"y"}).output("y");
  return b;
}

std::map<std::string, Tensor> inputs(const Case& c, uint64_t seed) {
  std::map<std::string, Tensor> in = {{"q", testing::random_f32(c.q, seed)},
                                      {"k", testing::random_f32(c.k, seed + 1)},
                                      {"v", testing::random_f32(c.v, seed + 2)}};
  if (!c.mask.empty()) {
    Tensor r = testing::random_f32(c.mask, seed + 3);
    Tensor m(c.mask_dt, c.mask);
    for (int64_t i = 0; i < m.numel(); ++i) {
      const float x = r.data<float>()[i];
      if (c.mask_dt == DType::kBool)
        m.data<uint8_t>()[i] = x > -0.4f;
      else
        m.data<float>()[i] = x < -0.6f ? -std::numeric_limits<float>::infinity() : x * 3;
    }
    // The first mask row drops every key: NaN rows (or zeros with nan_to_zero) must agree too.
    const int64_t sk = c.mask.back();
    for (int64_t j = 0; j < sk && c.mask.size() >= 2; ++j) {
      if (c.mask_dt == DType::kBool)
        m.data<uint8_t>()[j] = 0;
      else
        m.data<float>()[j] = -std::numeric_limits<float>::infinity();
    }
    in["mask"] = m;
  }
  return in;
}

void expect_matches_unfused(const Case& c, uint64_t seed) {
  auto in = inputs(c, seed);
  auto want = run(unfused_model(c), in);
  ASSERT_TRUE(want.ok()) << want.status().to_string();
  auto got = run(fused_model(c), in);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  const Tensor &w = want->at("y"), &o = got->at("y");
  ASSERT_EQ(o.dims(), w.dims());
  int64_t bad = 0, nans = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    const double a = o.get_as_double(i), e = w.get_as_double(i);
    nans += std::isnan(e);
    if (a == e || (std::isnan(a) && std::isnan(e))) continue;
    if (!(std::fabs(a - e) <= 1e-5 + 1e-4 * std::fabs(e)) && bad++ < 5)
      ADD_FAILURE() << i << ": " << a << " vs " << e;
  }
  EXPECT_EQ(bad, 0);
  // A mask's first row drops every key: NaN without the guard, none with it.
  if (!c.mask.empty() && c.mask.size() >= 2) {
    if (c.nan_to_zero)
      EXPECT_EQ(nans, 0);
    else
      EXPECT_GT(nans, 0);
  }
}

TEST(FusedAttentionOp, PlainAndScaled) {
  expect_matches_unfused({{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 4}, {}, DType::kBool, std::nullopt}, 1);
  expect_matches_unfused({{1, 2, 1, 16}, {1, 2, 9, 16}, {1, 2, 9, 16}, {}, DType::kBool, 0.3f}, 2);
}

TEST(FusedAttentionOp, BoolAndAdditiveMasksBroadcast) {
  for (DType dt : {DType::kBool, DType::kF32})
    for (bool guard : {false, true})
      for (std::vector<int64_t> m :
           {std::vector<int64_t>{2, 1, 1, 6}, std::vector<int64_t>{5, 6}, std::vector<int64_t>{2, 3, 5, 6}}) {
        SCOPED_TRACE(std::string(dtype_name(dt)) + (guard ? " guarded " : " ") + dims_to_string(m));
        Case c{{2, 3, 5, 4}, {2, 3, 6, 4}, {2, 3, 6, 4}, m, dt, std::nullopt};
        c.nan_to_zero = guard;
        expect_matches_unfused(c, 10);
      }
}

TEST(FusedAttentionOp, CausalSquareAndRectangular) {
  for (auto [sq, sk] : {std::pair<int64_t, int64_t>{6, 6}, {3, 7}, {7, 3}, {1, 1}}) {
    SCOPED_TRACE(std::to_string(sq) + "x" + std::to_string(sk));
    Case c{{1, 2, sq, 4}, {1, 2, sk, 4}, {1, 2, sk, 4}, {}, DType::kBool, std::nullopt};
    c.causal = true;
    expect_matches_unfused(c, 20);
  }
}

TEST(FusedAttentionOp, GroupedQueryAndBatchBroadcast) {
  expect_matches_unfused({{2, 6, 4, 8}, {2, 2, 5, 8}, {2, 3, 5, 8}, {}, DType::kBool, std::nullopt}, 30);
  expect_matches_unfused({{2, 4, 4, 8}, {1, 1, 5, 8}, {2, 1, 5, 8}, {}, DType::kBool, std::nullopt}, 31);
}

TEST(FusedAttentionOp, NoKeysGiveZerosAndEmptyQueriesGiveEmpty) {
  Case c{{1, 2, 3, 4}, {1, 2, 0, 4}, {1, 2, 0, 5}, {}, DType::kBool, std::nullopt};
  auto got = run(fused_model(c), inputs(c, 40));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  const Tensor& y = got->at("y");
  EXPECT_EQ(y.dims(), (std::vector<int64_t>{1, 2, 3, 5}));
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.data<float>()[i], 0.f);
  Case e{{1, 2, 0, 4}, {1, 2, 3, 4}, {1, 2, 3, 5}, {}, DType::kBool, std::nullopt};
  auto empty = run(fused_model(e), inputs(e, 41));
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_EQ(empty->at("y").dims(), (std::vector<int64_t>{1, 2, 0, 5}));
}

TEST(FusedAttentionOp, InferenceErrorsNameTheProblem) {
  auto expect_error = [](const Case& c, const std::string& text) {
    auto r = run(fused_model(c), inputs(c, 50));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("(FusedAttention)"), std::string::npos) << r.status().message();
  };
  expect_error({{1, 2, 3, 8}, {1, 2, 4, 6}, {1, 2, 4, 8}, {}, DType::kBool, std::nullopt},
               "different head dims");
  expect_error({{1, 2, 3, 8}, {1, 2, 4, 8}, {1, 2, 5, 8}, {}, DType::kBool, std::nullopt},
               "different sequence lengths");
  expect_error({{1, 6, 3, 8}, {1, 4, 4, 8}, {1, 4, 4, 8}, {}, DType::kBool, std::nullopt}, "does not divide");
  expect_error({{1, 2, 3, 8}, {1, 2, 4, 8}, {1, 2, 4, 8}, {1, 1, 3, 5}, DType::kBool, std::nullopt},
               "does not broadcast");
  expect_error({{2, 3, 8}, {2, 4, 8}, {2, 4, 8}, {}, DType::kBool, std::nullopt}, "must be 4-D");
}

// *_bshd=1 reads that operand as [B, S, H, X] (Y is written so): the output shape follows y_bshd, the
// sequence and head checks use the logical dims, and a value other than 0/1 is an error.
TEST(FusedAttentionOp, BshdLayoutAttributes) {
  auto model = [](const std::vector<int64_t>& q, const std::vector<int64_t>& k, int64_t k_bshd,
                  int64_t y_bshd) {
    ModelBuilder b(18);
    b.input("q", DType::kF32, sd(q)).input("k", DType::kF32, sd(k)).input("v", DType::kF32, sd(k));
    b.node("FusedAttention", {"q", "k", "v"}, {"y"})
        .domain("kiln")
        .attr("q_bshd", int64_t{1})
        .attr("k_bshd", k_bshd)
        .attr("v_bshd", k_bshd)
        .attr("y_bshd", y_bshd)
        .output("y");
    return b;
  };
  // Q [B=2, Sq=5, H=3, D=4]; K/V [B, H, Sk=7, D]: logical scores [2, 3, 5, 7].
  std::map<std::string, Tensor> in = {{"q", testing::random_f32({2, 5, 3, 4}, 1)},
                                      {"k", testing::random_f32({2, 3, 7, 4}, 2)},
                                      {"v", testing::random_f32({2, 3, 7, 4}, 3)}};
  auto bhsd = run(model({2, 5, 3, 4}, {2, 3, 7, 4}, 0, 0), in);
  ASSERT_TRUE(bhsd.ok()) << bhsd.status().to_string();
  EXPECT_EQ(bhsd->at("y").dims(), (std::vector<int64_t>{2, 3, 5, 4}));
  auto bshd = run(model({2, 5, 3, 4}, {2, 3, 7, 4}, 0, 1), in);
  ASSERT_TRUE(bshd.ok()) << bshd.status().to_string();
  ASSERT_EQ(bshd->at("y").dims(), (std::vector<int64_t>{2, 5, 3, 4}));
  // The same values, transposed: y_bshd[b, s, h, :] == y[b, h, s, :].
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t i = 0; i < 5; ++i)
        for (int64_t e = 0; e < 4; ++e)
          EXPECT_EQ(bshd->at("y").data<float>()[((b * 5 + i) * 3 + h) * 4 + e],
                    bhsd->at("y").data<float>()[((b * 3 + h) * 5 + i) * 4 + e]);
  // K read as [B, S, H, D] = [2, 3, 7, 4] means 7 heads, which do not divide Q's 3.
  auto bad = run(model({2, 5, 3, 4}, {2, 3, 7, 4}, 1, 0), in);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("does not divide"), std::string::npos) << bad.status().message();
  auto bad_attr = run(model({2, 5, 3, 4}, {2, 3, 7, 4}, 2, 0), in);
  ASSERT_FALSE(bad_attr.ok());
  EXPECT_NE(bad_attr.status().message().find("k_bshd must be 0 or 1"), std::string::npos)
      << bad_attr.status().message();
}

// Outside the kiln domain the op is unknown: a model may not use kiln's fused ops as ONNX ops.
TEST(FusedAttentionOp, DefaultDomainIsRejected) {
  ModelBuilder b(18);
  b.input("q", DType::kF32, {"1", "1", "2", "4"}).node("FusedAttention", {"q", "q", "q"}, {"y"}).output("y");
  auto g = onnx::import_model_bytes(b.bytes(), ".", "test");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("FusedAttention"), std::string::npos) << g.status().message();
}

}  // namespace
}  // namespace kiln
