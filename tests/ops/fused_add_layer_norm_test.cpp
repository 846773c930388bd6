// kiln::FusedAddLayerNorm on the CPU reference: S = X + R (rounded to X's dtype), Y = LayerNorm(S) * gamma +
// beta over the last dim, checked against a plain loop computed here on odd shapes, f32/f16/bf16, with and
// without beta and the S output, scalar gamma; and its shape, dtype and attribute errors.
#include <gtest/gtest.h>

#include "ops/nn_test_util.h"
#include "kiln/half.h"

namespace kiln {
namespace {

using namespace nn_test;

// What X's dtype stores for v.
double round_to(DType dt, double v) {
  if (dt == DType::kF16) return half_to_float(float_to_half(static_cast<float>(v)));
  if (dt == DType::kBF16) return bf16_to_float(float_to_bf16(static_cast<float>(v)));
  return static_cast<float>(v);
}

Tensor make(DType dt, const std::vector<int64_t>& dims, uint64_t seed, float scale = 1.f,
            float offset = 0.f) {
  Tensor f = random_f32(dims, seed);
  Tensor t(dt, dims);
  for (int64_t i = 0; i < f.numel(); ++i) {
    const float v = f.data<float>()[i] * scale + offset;
    if (dt == DType::kF32) t.data<float>()[i] = v;
    if (dt == DType::kF16) t.data<uint16_t>()[i] = float_to_half(v);
    if (dt == DType::kBF16) t.data<uint16_t>()[i] = float_to_bf16(v);
  }
  return t;
}

struct Ref {
  std::vector<double> y, s;
};

// The definition, one row at a time in double: the sum rounded to dt, mean, variance, normalize, scale,
// shift.
Ref reference(DType dt, const Tensor& x, const Tensor& r, const Tensor& gamma, const Tensor* beta,
              double eps) {
  const int64_t d = x.dims().back(), rows = d ? x.numel() / d : 0;
  Ref out;
  out.y.resize(x.numel());
  out.s.resize(x.numel());
  for (int64_t i = 0; i < rows; ++i) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < d; ++j) {
      const int64_t e = i * d + j;
      out.s[e] = round_to(dt, at(x, e) + at(r, e));
      mean += out.s[e];
    }
    mean /= static_cast<double>(d);
    for (int64_t j = 0; j < d; ++j) var += (out.s[i * d + j] - mean) * (out.s[i * d + j] - mean);
    var /= static_cast<double>(d);
    for (int64_t j = 0; j < d; ++j) {
      const double g = at(gamma, gamma.numel() == 1 ? 0 : j),
                   b = beta ? at(*beta, beta->numel() == 1 ? 0 : j) : 0;
      out.y[i * d + j] = (out.s[i * d + j] - mean) / std::sqrt(var + eps) * g + b;
    }
  }
  return out;
}

ModelBuilder model(DType dt, const std::vector<int64_t>& x, const std::vector<int64_t>& gdims, bool beta,
                   bool with_s, float eps) {
  ModelBuilder mb(20);
  mb.input("x", dt, dim_strs(x)).input("r", dt, dim_strs(x)).input("gamma", dt, dim_strs(gdims));
  std::vector<std::string> ins = {"x", "r", "gamma"};
  if (beta) {
    mb.input("beta", dt, dim_strs(gdims));
    ins.push_back("beta");
  }
  std::vector<std::string> outs = {"y"};
  if (with_s) outs.push_back("s");
  mb.node("FusedAddLayerNorm", ins, outs, "faln").domain("kiln").attr("epsilon", eps);
  for (const auto& o : outs) mb.output(o);
  return mb;
}

void check(DType dt, const std::vector<int64_t>& x, bool scalar_gamma, bool beta, bool with_s,
           uint64_t seed) {
  SCOPED_TRACE(std::string(dtype_name(dt)) + dims_to_string(x) + (scalar_gamma ? " scalar gamma" : "") +
               (beta ? " beta" : "") + (with_s ? " S" : ""));
  const float eps = 1e-5f;
  const std::vector<int64_t> gdims = scalar_gamma ? std::vector<int64_t>{1} : std::vector<int64_t>{x.back()};
  // Offset rows: the mean is far from zero, as residual streams are.
  Tensor tx = make(dt, x, seed, 2.f, 3.f), tr = make(dt, x, seed + 1),
         tg = make(dt, gdims, seed + 2, 0.5f, 1.f), tb = make(dt, gdims, seed + 3);
  std::map<std::string, Tensor> in = {{"x", tx}, {"r", tr}, {"gamma", tg}};
  if (beta) in["beta"] = tb;
  auto out = run(model(dt, x, gdims, beta, with_s, eps), in);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Ref want = reference(dt, tx, tr, tg, beta ? &tb : nullptr, eps);
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dtype(), dt);
  ASSERT_EQ(y.dims(), x);
  // Y is rounded once to dt at the end.
  const double tol = dt == DType::kF32 ? 1e-5 : (dt == DType::kF16 ? 2e-3 : 1.6e-2);
  expect_near(y, want.y, tol);
  if (with_s) {
    const Tensor& s = out->at("s");
    ASSERT_EQ(s.dims(), x);
    for (int64_t i = 0; i < s.numel(); ++i)
      ASSERT_EQ(at(s, i), want.s[i]) << "S[" << i << "] is the rounded sum";
  } else {
    EXPECT_EQ(out->count("s"), 0u);
  }
}

TEST(FusedAddLayerNormOp, MatchesTheDefinitionOnOddShapes) {
  uint64_t seed = 1;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16})
    for (std::vector<int64_t> x :
         {std::vector<int64_t>{1, 1}, std::vector<int64_t>{3}, std::vector<int64_t>{7, 7},
          std::vector<int64_t>{2, 3, 127}, std::vector<int64_t>{3, 1000}})
      for (bool beta : {false, true})
        for (bool with_s : {false, true}) check(dt, x, false, beta, with_s, seed += 4);
}

TEST(FusedAddLayerNormOp, ScalarGammaAndBeta) {
  check(DType::kF32, {5, 9}, true, true, true, 100);
  check(DType::kF16, {5, 9}, true, false, false, 110);
}

TEST(FusedAddLayerNormOp, EmptyRowsAreEmptyOutputs) {
  auto out = run(model(DType::kF32, {0, 8}, {8}, true, true, 1e-5f), {{"x", Tensor(DType::kF32, {0, 8})},
                                                                      {"r", Tensor(DType::kF32, {0, 8})},
                                                                      {"gamma", random_f32({8}, 1)},
                                                                      {"beta", random_f32({8}, 2)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").dims(), (std::vector<int64_t>{0, 8}));
  EXPECT_EQ(out->at("s").dims(), (std::vector<int64_t>{0, 8}));
}

TEST(FusedAddLayerNormOp, RejectsBadInputs) {
  {
    ModelBuilder mb(20);
    mb.input("x", DType::kF32, {"2", "8"})
        .input("r", DType::kF32, {"1", "8"})
        .input("g", DType::kF32, {"8"})
        .node("FusedAddLayerNorm", {"x", "r", "g"}, {"y"}, "faln")
        .domain("kiln")
        .output("y");
    const std::string e = build_error(mb);
    EXPECT_NE(e.find("node 'faln' (FusedAddLayerNorm)"), std::string::npos) << e;
    EXPECT_NE(e.find("residual R [1,8] must have X's shape [2,8]"), std::string::npos) << e;
  }
  {
    ModelBuilder mb(20);
    mb.input("x", DType::kF32, {"2", "8"})
        .input("r", DType::kF16, {"2", "8"})
        .input("g", DType::kF32, {"8"})
        .node("FusedAddLayerNorm", {"x", "r", "g"}, {"y"})
        .domain("kiln")
        .output("y");
    EXPECT_NE(build_error(mb).find("same dtype"), std::string::npos) << build_error(mb);
  }
  {
    ModelBuilder mb(20);
    mb.input("x", DType::kF32, {"2", "8"})
        .input("r", DType::kF32, {"2", "8"})
        .input("g", DType::kF32, {"7"})
        .node("FusedAddLayerNorm", {"x", "r", "g"}, {"y"})
        .domain("kiln")
        .output("y");
    EXPECT_NE(build_error(mb).find("gamma"), std::string::npos) << build_error(mb);
  }
  {
    ModelBuilder mb(20);
    mb.input("x", DType::kF32, {"2", "8"})
        .input("r", DType::kF32, {"2", "8"})
        .input("g", DType::kF32, {"8"})
        .node("FusedAddLayerNorm", {"x", "r", "g"}, {"y"})
        .domain("kiln")
        .attr("epsilon", -1.f)
        .output("y");
    EXPECT_NE(build_error(mb).find("epsilon"), std::string::npos) << build_error(mb);
  }
  {
    ModelBuilder mb(20);
    mb.input("x", DType::kI64, {"2", "8"})
        .input("r", DType::kI64, {"2", "8"})
        .input("g", DType::kF32, {"8"})
        .node("FusedAddLayerNorm", {"x", "r", "g"}, {"y"})
        .domain("kiln")
        .output("y");
    EXPECT_NE(build_error(mb).find("float input X"), std::string::npos) << build_error(mb);
  }
  {
    // Outside the kiln domain the op does not exist.
    ModelBuilder mb(20);
    mb.input("x", DType::kF32, {"2", "8"})
        .input("r", DType::kF32, {"2", "8"})
        .input("g", DType::kF32, {"8"})
        .node("FusedAddLayerNorm", {"x", "r", "g"}, {"y"})
        .output("y");
    EXPECT_FALSE(build_error(mb).empty());
  }
}

TEST(FusedAddLayerNormOp, ResidualShapeIsCheckedAtRunTime) {
  // Symbolic dims pass the build; a residual that does not match X's concrete shape is an error, not a
  // broadcast.
  ModelBuilder mb(20);
  mb.input("x", DType::kF32, {"m", "5"})
      .input("r", DType::kF32, {"n", "5"})
      .input("g", DType::kF32, {"5"})
      .node("FusedAddLayerNorm", {"x", "r", "g"}, {"y"})
      .domain("kiln")
      .output("y");
  auto out = run(mb, {{"x", random_f32({3, 5}, 1)}, {"r", random_f32({1, 5}, 2)}, {"g", random_f32({5}, 3)}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("residual"), std::string::npos) << out.status().message();
}

}  // namespace
}  // namespace kiln
