// The builder's convolution layout choice: NHWC unless the engine only runs batch 1, or as asked.
#include "builder/layout_choice.h"

#include <gtest/gtest.h>

#include "kiln/kiln.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

ir::Graph graph_with_batch(const std::string& batch) {
  ModelBuilder b;
  b.input("image", DType::kF32, {batch, "3", "8", "8"})
      .input("scale", DType::kF32, {})
      .node("Mul", {"image", "scale"}, {"y"})
      .output("y", DType::kF32, {batch, "3", "8", "8"});
  return testing::import_inferred(b.bytes());
}

OptimizationProfile batches(int64_t lo, int64_t opt, int64_t hi) {
  OptimizationProfile p;
  p.inputs["image"] = {{lo, 3, 8, 8}, {opt, 3, 8, 8}, {hi, 3, 8, 8}};
  return p;
}

TEST(LayoutChoice, BatchOneEngines) {
  const ir::Graph dynamic = graph_with_batch("batch");
  const ir::Graph one = graph_with_batch("1");
  const ir::Graph four = graph_with_batch("4");
  EXPECT_FALSE(batch_one_engine(dynamic, {})) << "no profile, dynamic batch: unknown, not batch 1";
  EXPECT_TRUE(batch_one_engine(one, {})) << "static batch 1 (the rank-0 input does not count)";
  EXPECT_FALSE(batch_one_engine(four, {}));
  EXPECT_TRUE(batch_one_engine(dynamic, {batches(1, 1, 1)}));
  EXPECT_TRUE(batch_one_engine(dynamic, {batches(1, 1, 8)})) << "the opt shape decides";
  EXPECT_FALSE(batch_one_engine(dynamic, {batches(1, 32, 32)}));
  EXPECT_FALSE(batch_one_engine(dynamic, {batches(1, 1, 1), batches(8, 16, 32)})) << "every profile counts";
}

TEST(LayoutChoice, ExplicitChoiceWins) {
  const ir::Graph dynamic = graph_with_batch("batch");
  EXPECT_TRUE(use_channels_last(ConvLayoutChoice::kAuto, dynamic, {batches(1, 32, 32)}));
  EXPECT_FALSE(use_channels_last(ConvLayoutChoice::kAuto, dynamic, {batches(1, 1, 1)}));
  EXPECT_TRUE(use_channels_last(ConvLayoutChoice::kNHWC, dynamic, {batches(1, 1, 1)}));
  EXPECT_FALSE(use_channels_last(ConvLayoutChoice::kNCHW, dynamic, {batches(1, 32, 32)}));
}

TEST(LayoutChoice, OnlyForCudaReducedPrecision) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"}).node("Relu", {"x"}, {"y"}).output("y", DType::kF32, {"3"});
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.precision = Precision::kF16;
  cfg.conv_layout = ConvLayoutChoice::kNHWC;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("--conv-layout only applies to CUDA engines"), std::string::npos)
      << e.status().message();
  cfg.conv_layout = ConvLayoutChoice::kAuto;
  EXPECT_TRUE(Builder::build_from_bytes(b.bytes(), cfg).ok());
}

}  // namespace
}  // namespace kiln
