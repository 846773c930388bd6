// The CPU reference (f32 and f64, with intermediates) and engines with intermediate tensors as outputs.
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/compare.h"
#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

// y = Relu(x * w + b) * 3 — MatMul+Add+Relu fuse in the engine; the final Mul stays.
std::string small_model(float bias) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "4"})
      .initializer("w", testing::random_f32({4, 4}, 1))
      .initializer("b", testing::f32_tensor({4}, {bias, bias, bias, bias}))
      .initializer("three", testing::f32_tensor({}, {3}))
      .node("MatMul", {"x", "w"}, {"mm"}, "matmul")
      .node("Add", {"mm", "b"}, {"biased"}, "add")
      .node("Relu", {"biased"}, {"act"}, "relu")
      .node("Mul", {"act", "three"}, {"y"}, "scale")
      .output("y", DType::kF32, {"batch", "4"});
  const std::string path = (std::filesystem::path(::testing::TempDir()) /
                            ("kiln_compare_small_" + std::to_string(bias) + ".onnx"))
                               .string();
  b.save(path);
  return path;
}

TEST(CompareReference, LayersInNodeOrderAndIntermediates) {
  auto ref = compare::Reference::load(small_model(0.5f), compare::ReferencePrecision::kF32);
  ASSERT_TRUE(ref.ok()) << ref.status().to_string();
  ASSERT_EQ(ref->layers().size(), 4u);
  EXPECT_EQ(ref->layers()[0].node, "matmul");
  EXPECT_EQ(ref->layers()[3].value, "y");
  Tensor x = testing::random_f32({2, 4}, 3);
  auto outs = ref->run({{"x", x}}, false);
  ASSERT_TRUE(outs.ok());
  EXPECT_EQ(outs->size(), 1u);
  auto all = ref->run({{"x", x}}, true);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 4u);
  EXPECT_EQ(all->at("act").dims(), (std::vector<int64_t>{2, 4}));
}

TEST(CompareReference, F64ComputesInDoubleAndAgreesWithF32) {
  const std::string path = small_model(0.5f);
  auto r32 = compare::Reference::load(path, compare::ReferencePrecision::kF32);
  auto r64 = compare::Reference::load(path, compare::ReferencePrecision::kF64);
  ASSERT_TRUE(r32.ok() && r64.ok());
  EXPECT_EQ(r64->inputs()[0].dtype, DType::kF32);  // the model's declared dtype: callers pass f32 data
  Tensor x = testing::random_f32({3, 4}, 4);
  auto a = r32->run({{"x", x}}, false);
  auto b = r64->run({{"x", x}}, false);
  ASSERT_TRUE(a.ok() && b.ok()) << b.status().to_string();
  EXPECT_EQ(b->at("y").dtype(), DType::kF64);
  auto c = compare::compare_tensors("y", a->at("y"), b->at("y"), {1e-5, 1e-5, 0});
  EXPECT_TRUE(c.pass) << c.max_abs;
}

TEST(CompareReference, EngineIntermediatesAsOutputs) {
  const std::string path = small_model(0.5f);
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_file(path, cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto values = compare::engine_values(*e);
  EXPECT_EQ(values.count("y"), 1u);
  EXPECT_EQ(values.count("mm"), 0u);  // fused into the MatMul's epilogue
  ASSERT_EQ(values.count("act"), 1u);
  auto tapped = compare::with_extra_outputs(*e, {"act"});
  ASSERT_TRUE(tapped.ok()) << tapped.status().to_string();
  EXPECT_EQ(tapped->outputs().size(), 2u);
  EXPECT_EQ(e->outputs().size(), 1u);  // the original engine is unchanged
  auto ctx = tapped->create_context();
  ASSERT_TRUE(ctx.ok());
  Tensor x = testing::random_f32({2, 4}, 5);
  auto got = ctx->infer({{"x", x}});
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  auto ref = compare::Reference::load(path, compare::ReferencePrecision::kF32);
  ASSERT_TRUE(ref.ok());
  auto want = ref->run({{"x", x}}, true);
  ASSERT_TRUE(want.ok());
  EXPECT_TRUE(compare::compare_tensors("act", got->at("act"), want->at("act"), {}).pass);
  auto gone = compare::with_extra_outputs(*e, {"mm"});
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("fused or folded away"), std::string::npos);
}

TEST(CompareReference, ChangedWeightsDivergeAtTheirLayer) {
  auto a = compare::Reference::load(small_model(0.5f), compare::ReferencePrecision::kF32);
  auto b = compare::Reference::load(small_model(0.7f), compare::ReferencePrecision::kF32);
  ASSERT_TRUE(a.ok() && b.ok());
  Tensor x = testing::random_f32({2, 4}, 6);
  auto ra = a->run({{"x", x}}, true);
  auto rb = b->run({{"x", x}}, true);
  ASSERT_TRUE(ra.ok() && rb.ok());
  std::string first;
  for (const auto& l : a->layers())
    if (first.empty() && !compare::compare_tensors(l.value, ra->at(l.value), rb->at(l.value), {}).pass) first = l.node;
  EXPECT_EQ(first, "add");
}

}  // namespace
}  // namespace kiln
