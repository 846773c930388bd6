// compare::emulate_reduced_precision: a CPU --fp16 engine whose values are rounded as an f16 GPU engine
// stores them: rounding shows, an overflow becomes Inf, fp32_layers are left unrounded, and what is not a CPU
// f16/bf16 engine is refused.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/compare.h"
#include "kiln/kiln.h"
#include "support/model_builder.h"
#include "kiln/half.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

// y = (x @ w) * 1e-4 with w large: x @ w reaches about 3e4 * sum(x) (past f16's 65504 for x = 1).
std::string overflow_model() {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "4"})
      .initializer("w", testing::f32_tensor({4, 2}, {3e4f, 1e-3f, 3e4f, 1e-3f, 3e4f, 1e-3f, 3e4f, 1e-3f}))
      .initializer("s", testing::f32_tensor({}, {1e-4f}))
      .node("MatMul", {"x", "w"}, {"h"}, "big")
      .node("Mul", {"h", "s"}, {"y"}, "scale")
      .output("y", DType::kF32, {"2", "2"});
  return b.bytes();
}

Result<std::vector<float>> run(const Engine& e, const Tensor& x) {
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, e.create_context());
  KILN_ASSIGN_OR_RETURN(auto out, ctx.infer({{"x", x}}));
  const Tensor& y = out.at("y");
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

Result<Engine> build(Precision p, std::vector<std::string> fp32_layers) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.precision = p;
  cfg.fp32_layers = std::move(fp32_layers);
  return Builder::build_from_bytes(overflow_model(), cfg);
}

TEST(EmulatePrecision, OverflowShowsAndFp32LayersKeepItAway) {
  // Row 0: all ones (x @ w = 1.2e5 in column 0: overflows f16); row 1: 0.1 each (1.2e4: fits, rounded).
  Tensor x = testing::f32_tensor({2, 4}, {1, 1, 1, 1, 0.1f, 0.1f, 0.1f, 0.1f});
  auto plain = build(Precision::kF16, {});
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  auto f32_values = run(*plain, x);  // the CPU backend computes in f32
  ASSERT_TRUE(f32_values.ok());
  EXPECT_NEAR((*f32_values)[0], 12.f, 1e-4);

  auto emulated = compare::emulate_reduced_precision(*plain);
  ASSERT_TRUE(emulated.ok()) << emulated.status().to_string();
  auto y = run(*emulated, x);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  EXPECT_TRUE(std::isinf((*y)[0])) << (*y)[0];
  // Finite values come out as f16 holds them: off the f32 result by f16's rounding (about 2^-11 relative, a
  // few times over), and exactly representable in f16.
  EXPECT_NE((*y)[2], (*f32_values)[2]);
  EXPECT_NEAR((*y)[2], (*f32_values)[2], 4e-3 * std::abs((*f32_values)[2]));
  EXPECT_EQ(half_to_float(float_to_half((*y)[2])), (*y)[2]);

  // 'big' alone in f32 is not enough ('scale' reads its result as f16: Inf); with 'scale' it is.
  auto big_only = build(Precision::kF16, {"big"});
  ASSERT_TRUE(big_only.ok());
  auto y_big = run(*compare::emulate_reduced_precision(*big_only), x);
  ASSERT_TRUE(y_big.ok());
  EXPECT_TRUE(std::isinf((*y_big)[0]));
  auto both = build(Precision::kF16, {"big", "scale"});
  ASSERT_TRUE(both.ok());
  auto y_both = run(*compare::emulate_reduced_precision(*both), x);
  ASSERT_TRUE(y_both.ok());
  EXPECT_NEAR((*y_both)[0], 12.f, 1e-4);
}

TEST(EmulatePrecision, Bf16RoundsCoarser) {
  Tensor x = testing::f32_tensor({2, 4}, {1, 1, 1, 1, 0.1f, 0.1f, 0.1f, 0.1f});
  auto e = build(Precision::kBF16, {});
  ASSERT_TRUE(e.ok());
  auto y = run(*compare::emulate_reduced_precision(*e), x);
  ASSERT_TRUE(y.ok());
  EXPECT_TRUE(std::isfinite((*y)[0]));  // bf16 has f32's range
  // Row 1, column 0 is 1.2 in f32; bf16 keeps 8 significant bits (0.1 -> 0.10009765625, 3e4 -> 29952 ...).
  EXPECT_NE((*y)[2], 1.2f);
  EXPECT_NEAR((*y)[2], 1.2f, 1.2f / 64);
  for (float v : *y) EXPECT_EQ(bf16_to_float(float_to_bf16(v)), v) << v << " is not a bf16 value";
}

TEST(EmulatePrecision, RefusesWhatIsNotACpuReducedEngine) {
  auto f32 = build(Precision::kF32, {});
  ASSERT_TRUE(f32.ok());
  auto r = compare::emulate_reduced_precision(*f32);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--fp16 or --bf16"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace kiln
