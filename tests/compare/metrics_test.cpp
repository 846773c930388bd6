// compare_tensors on hand-made arrays: every metric, the worst element's index, NaN/Inf handling, the rule.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kiln/compare.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::f32_tensor;

TEST(CompareMetrics, ErrorsAndWorstIndex) {
  Tensor ref = f32_tensor({2, 3}, {1, 2, 4, -1, 0, 10});
  Tensor got = f32_tensor({2, 3}, {1, 2.5f, 4, -1, 0.25f, 10.1f});
  auto c = compare::compare_tensors("y", got, ref, {1e-3, 1e-3, 0});
  EXPECT_FALSE(c.pass);
  EXPECT_EQ(c.elements, 6);
  EXPECT_EQ(c.over_tolerance, 3);
  EXPECT_NEAR(c.max_abs, 0.5, 1e-6);
  EXPECT_NEAR(c.mean_abs, (0.5 + 0.25 + 0.1) / 6, 1e-6);
  EXPECT_NEAR(c.max_rel, 0.25, 1e-6);                      // 0.5 / 2; the reference 0 is left out
  EXPECT_NEAR(c.mean_rel, (0.25 + 0.01) / 5, 1e-6);
  EXPECT_EQ(c.worst_index, (std::vector<int64_t>{0, 1}));  // farthest past atol + rtol*|ref|
  EXPECT_FLOAT_EQ(static_cast<float>(c.worst_value), 2.5f);
  EXPECT_FLOAT_EQ(static_cast<float>(c.worst_reference), 2.f);
  EXPECT_LT(c.cosine, 1.0);
  EXPECT_GT(c.cosine, 0.99);
}

// The largest error over tolerance is its own maximum: not the worst element's (picked by absolute margin).
TEST(CompareMetrics, MaxToleranceRatio) {
  // Element 0 misses by 0.5 of an allowance of 1.001 (ratio ~0.5); element 1 by 0.02 of 0.011 (ratio ~1.8),
  // a smaller margin in absolute terms (0.009 over) than element 2's (0.1 - 0.011 = 0.089 over, ratio ~9.1).
  Tensor ref = f32_tensor({3}, {1000, 10, 10});
  Tensor got = f32_tensor({3}, {1000.5f, 10.02f, 10.1f});
  auto c = compare::compare_tensors("y", got, ref, {1e-3, 1e-3, 0});
  EXPECT_NEAR(c.max_tolerance_ratio, 0.1 / 0.011, 1e-3);
  // All within: the ratio says how close the closest call came, under 1.
  auto loose = compare::compare_tensors("y", got, ref, {1.0, 0, 0});
  EXPECT_TRUE(loose.pass);
  EXPECT_NEAR(loose.max_tolerance_ratio, 0.5, 1e-3);
  auto tight = compare::compare_tensors("y", got, ref, {0.4, 0, 0});
  EXPECT_FALSE(tight.pass);
  EXPECT_NEAR(tight.max_tolerance_ratio, 0.5 / 0.4, 1e-3);
  auto exact = compare::compare_tensors("y", ref, ref, {0, 0, 0});
  EXPECT_TRUE(exact.pass);
  EXPECT_EQ(exact.max_tolerance_ratio, 0);  // no difference and no allowance: 0, not 0/0
  auto zero_tol = compare::compare_tensors("y", got, ref, {0, 0, 0});
  EXPECT_TRUE(std::isinf(zero_tol.max_tolerance_ratio));
  const float inf = std::numeric_limits<float>::infinity();
  auto nonfinite = compare::compare_tensors("y", f32_tensor({2}, {1, inf}), f32_tensor({2}, {1, 2}), {1, 1, 0});
  EXPECT_TRUE(std::isinf(nonfinite.max_tolerance_ratio));
  auto shapes = compare::compare_tensors("y", f32_tensor({2}, {1, 2}), f32_tensor({1, 2}, {1, 2}), {1, 1, 0});
  EXPECT_TRUE(std::isinf(shapes.max_tolerance_ratio));
}

TEST(CompareMetrics, WithinToleranceAndCosineRule) {
  Tensor ref = f32_tensor({4}, {1, 2, 3, 4});
  Tensor got = f32_tensor({4}, {1.0001f, 2, 3, 4});
  EXPECT_TRUE(compare::compare_tensors("y", got, ref, {1e-3, 0, 0}).pass);
  EXPECT_FALSE(compare::compare_tensors("y", got, ref, {0, 1e-5, 0}).pass);
  // rtol scales with |ref|: 1e-4 of 1 is enough for 1.0001.
  EXPECT_TRUE(compare::compare_tensors("y", got, ref, {0, 2e-4, 0}).pass);
  // The cosine part of the rule: a scaled copy passes a loose atol but not cosine >= 1.
  Tensor flipped = f32_tensor({4}, {-1, 2, 3, 4});
  EXPECT_TRUE(compare::compare_tensors("y", flipped, ref, {3, 0, 0}).pass);
  auto c = compare::compare_tensors("y", flipped, ref, {3, 0, 0.99});
  EXPECT_FALSE(c.pass);
  EXPECT_NEAR(c.cosine, 28.0 / 30.0, 1e-9);
  EXPECT_NE(compare::describe_rule({1e-5, 1e-4, 0.99}).find("cosine similarity >= 0.99"), std::string::npos);
}

TEST(CompareMetrics, NonFiniteEngineValuesAreMismatches) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  Tensor ref = f32_tensor({2, 2}, {1, 2, 3, nan});
  Tensor got = f32_tensor({2, 2}, {1, inf, 3, nan});
  auto c = compare::compare_tensors("y", got, ref, {1, 1, 0});  // a huge tolerance does not excuse Inf
  EXPECT_FALSE(c.pass);
  EXPECT_EQ(c.over_tolerance, 1);
  EXPECT_EQ(c.nonfinite, 1);
  EXPECT_EQ(c.worst_index, (std::vector<int64_t>{0, 1}));
  EXPECT_TRUE(std::isinf(c.worst_value));
  // NaN where the reference is NaN agrees; the finite stats ignore both.
  EXPECT_EQ(c.max_abs, 0);
  Tensor nan_got = f32_tensor({2, 2}, {nan, 2, 3, nan});
  auto n = compare::compare_tensors("y", nan_got, ref, {1e-5, 1e-5, 0});
  EXPECT_FALSE(n.pass);
  EXPECT_EQ(n.nonfinite, 1);
  EXPECT_EQ(n.worst_index, (std::vector<int64_t>{0, 0}));
}

TEST(CompareMetrics, ShapeMismatchAndMixedDtypes) {
  auto c = compare::compare_tensors("y", f32_tensor({2, 3}, {}), f32_tensor({3, 2}, {}), {});
  EXPECT_FALSE(c.pass);
  EXPECT_NE(c.error.find("engine [2,3] vs reference [3,2]"), std::string::npos);
  // An f32 engine against an f64 reference, and integer outputs.
  Tensor d(DType::kF64, {2});
  d.data<double>()[0] = 0.1;
  d.data<double>()[1] = 1e8;
  auto m = compare::compare_tensors("y", f32_tensor({2}, {0.1f, 1e8f}), d, {1e-7, 1e-7, 0});
  EXPECT_TRUE(m.pass) << m.max_abs;
  EXPECT_GT(m.max_abs, 0);
  auto i = compare::compare_tensors("i", testing::i64_tensor({3}, {1, 2, 3}), testing::i64_tensor({3}, {1, 2, 4}), {});
  EXPECT_EQ(i.over_tolerance, 1);
  EXPECT_EQ(i.worst_index, (std::vector<int64_t>{2}));
}

TEST(CompareMetrics, DefaultToleranceLoosensWithPrecision) {
  EXPECT_LT(compare::default_tolerance("f32").rtol, compare::default_tolerance("tf32").rtol);
  EXPECT_LT(compare::default_tolerance("tf32").atol, compare::default_tolerance("f16").atol);
  EXPECT_LT(compare::default_tolerance("f16").atol, compare::default_tolerance("bf16").atol);
}

}  // namespace
}  // namespace kiln
