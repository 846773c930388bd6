// kiln::FusedMatMul on the CPU reference: Y = act(alpha * A @ op(B) + bias + residual), checked against the
// definition computed here, and its shape/attribute errors.
#include <gtest/gtest.h>

#include "ops/nn_test_util.h"

namespace kiln {
namespace {

using namespace nn_test;

double act_ref(const std::string& act, double x) {
  if (act == "relu") return x > 0 ? x : 0;
  if (act == "gelu_erf") return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
  if (act == "gelu_tanh")
    return 0.5 * x * (1 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
  return x;
}

// a [rows, K] (batch dims flattened), b [K, N] or [N, K].
std::vector<double> fused_ref(const Tensor& a, const Tensor& b, bool tb, double alpha, const Tensor* bias,
                              const Tensor* res, const std::string& act) {
  const int64_t k = a.dims().back(), n = tb ? b.dim(0) : b.dim(1);
  const int64_t rows = num_elements({a.dims().begin(), a.dims().end() - 1});
  std::vector<double> y(rows * n);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) s += at(a, i * k + p) * at(b, tb ? j * k + p : p * n + j);
      s = alpha * s + (bias ? at(*bias, j) : 0) + (res ? at(*res, i * n + j) : 0);
      y[i * n + j] = act_ref(act, s);
    }
  return y;
}

ModelBuilder fused_model(const std::vector<int64_t>& a, const std::vector<int64_t>& b, bool bias, bool res,
                         const std::vector<int64_t>& y_dims) {
  ModelBuilder mb(20);
  mb.input("a", DType::kF32, dim_strs(a)).input("b", DType::kF32, dim_strs(b));
  std::vector<std::string> ins = {"a", "b", bias ? "bias" : "", res ? "r" : ""};
  while (!ins.empty() && ins.back().empty()) ins.pop_back();
  if (bias) mb.input("bias", DType::kF32, {std::to_string(y_dims.back())});
  if (res) mb.input("r", DType::kF32, dim_strs(y_dims));
  mb.node("FusedMatMul", ins, {"y"}).domain("kiln");
  return mb;
}

TEST(FusedMatMulOp, EveryActivationWithBiasAndResidual) {
  for (const std::string act : {"none", "relu", "gelu_erf", "gelu_tanh"}) {
    for (bool tb : {false, true}) {
      Tensor a = random_f32({2, 3, 4}, 1),
             b = random_f32(tb ? std::vector<int64_t>{5, 4} : std::vector<int64_t>{4, 5}, 2);
      Tensor bias = random_f32({5}, 3), r = random_f32({2, 3, 5}, 4);
      ModelBuilder mb = fused_model(a.dims(), b.dims(), true, true, {2, 3, 5});
      mb.attr("activation", act).attr("trans_b", int64_t(tb)).attr("alpha", 1.5f).output("y");
      Tensor y = run_y(mb, {{"a", a}, {"b", b}, {"bias", bias}, {"r", r}});
      EXPECT_EQ(y.dims(), (std::vector<int64_t>{2, 3, 5})) << act;
      expect_near(y, fused_ref(a, b, tb, 1.5, &bias, &r, act));
    }
  }
}

TEST(FusedMatMulOp, OptionalInputsMayBeOmitted) {
  Tensor a = random_f32({7, 3}, 5), b = random_f32({3, 2}, 6), r = random_f32({7, 2}, 7);
  ModelBuilder only_res = fused_model(a.dims(), b.dims(), false, true, {7, 2});
  only_res.attr("activation", std::string("relu")).output("y");
  expect_near(run_y(only_res, {{"a", a}, {"b", b}, {"r", r}}),
              fused_ref(a, b, false, 1, nullptr, &r, "relu"));
  ModelBuilder plain = fused_model(a.dims(), b.dims(), false, false, {7, 2});
  plain.output("y");
  expect_near(run_y(plain, {{"a", a}, {"b", b}}), fused_ref(a, b, false, 1, nullptr, nullptr, "none"));
}

TEST(FusedMatMulOp, ZeroKIsBiasPlusResidual) {
  for (bool tb : {false, true}) {
    Tensor a(DType::kF32, {2, 3, 0}), b(DType::kF32, tb ? std::vector<int64_t>{4, 0} : std::vector<int64_t>{0, 4});
    Tensor bias = random_f32({4}, 11), r = random_f32({2, 3, 4}, 12);
    ModelBuilder mb = fused_model(a.dims(), b.dims(), true, true, {2, 3, 4});
    mb.attr("activation", std::string("relu")).attr("trans_b", int64_t(tb)).attr("alpha", 3.f).output("y");
    Tensor y = run_y(mb, {{"a", a}, {"b", b}, {"bias", bias}, {"r", r}});
    EXPECT_EQ(y.dims(), (std::vector<int64_t>{2, 3, 4}));
    expect_near(y, fused_ref(a, b, tb, 3.0, &bias, &r, "relu"));
  }
}

TEST(FusedMatMulOp, RejectsBadShapesAndAttributes) {
  {
    ModelBuilder mb = fused_model({2, 4}, {3, 5}, false, false, {2, 5});
    mb.output("y");
    EXPECT_NE(build_error(mb).find("inner dims differ"), std::string::npos) << build_error(mb);
  }
  {
    ModelBuilder mb(20);
    mb.input("a", DType::kF32, {"2", "4"})
        .input("b", DType::kF32, {"4", "5"})
        .input("bias", DType::kF32, {"4"})
        .node("FusedMatMul", {"a", "b", "bias"}, {"y"}, "fm")
        .domain("kiln")
        .output("y");
    const std::string e = build_error(mb);
    EXPECT_NE(e.find("bias must be [N] = [5]"), std::string::npos) << e;
    EXPECT_NE(e.find("node 'fm' (FusedMatMul)"), std::string::npos) << e;
  }
  {
    ModelBuilder mb = fused_model({2, 4}, {4, 5}, false, true, {3, 5});  // residual [3,5] vs Y [2,5]
    mb.output("y");
    EXPECT_NE(build_error(mb).find("residual"), std::string::npos) << build_error(mb);
  }
  {
    ModelBuilder mb = fused_model({2, 4}, {4, 5}, false, false, {2, 5});
    mb.attr("activation", std::string("swish")).output("y");
    EXPECT_NE(build_error(mb).find("activation 'swish'"), std::string::npos) << build_error(mb);
  }
  {
    ModelBuilder mb = fused_model({2, 4}, {1, 4, 5}, false, false, {2, 5});
    mb.output("y");
    EXPECT_NE(build_error(mb).find("B must be a 2-D weight"), std::string::npos) << build_error(mb);
  }
}

TEST(FusedMatMulOp, ResidualShapeIsCheckedAtRunTime) {
  // Dynamic dims pass the build; a residual that does not match Y's concrete shape is an error, not a
  // broadcast.
  ModelBuilder mb(20);
  mb.input("a", DType::kF32, {"m", "4"})
      .input("b", DType::kF32, {"4", "5"})
      .input("r", DType::kF32, {"rm", "5"})
      .node("FusedMatMul", {"a", "b", "", "r"}, {"y"})
      .domain("kiln")
      .output("y");
  auto out =
      run(mb, {{"a", random_f32({3, 4}, 8)}, {"b", random_f32({4, 5}, 9)}, {"r", random_f32({1, 5}, 10)}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("residual"), std::string::npos) << out.status().message();
}

}  // namespace
}  // namespace kiln
