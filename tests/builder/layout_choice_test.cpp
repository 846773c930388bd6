// The builder's convolution layout choice: NHWC unless NCHW is asked for.
#include "builder/layout_choice.h"

#include <gtest/gtest.h>

#include "kiln/kiln.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

TEST(LayoutChoice, ChannelsLastUnlessNchwIsAsked) {
  EXPECT_TRUE(use_channels_last(ConvLayoutChoice::kAuto)) << "auto is NHWC at every batch, batch 1 included";
  EXPECT_TRUE(use_channels_last(ConvLayoutChoice::kNHWC));
  EXPECT_FALSE(use_channels_last(ConvLayoutChoice::kNCHW));
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
