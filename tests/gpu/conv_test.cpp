// Conv on the GPU against the CPU reference: 1-D/2-D/3-D (cuDNN), 4-D spatial and oversized padded copies
// (direct kernel), groups and depthwise, strides, dilations, symmetric/asymmetric/auto pads, with and without
// bias, f32 (TF32 off: tight tolerance), f16 and bf16.
#include "gpu/gpu_harness.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

std::vector<std::string> str_dims(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (auto x : d) s.push_back(std::to_string(x));
  return s;
}

struct ConvCase {
  std::vector<int64_t> x, w;                     // X [N, C, ...], W [M, C/group, k...]
  std::vector<int64_t> strides, dilations, pads;  // empty: attribute omitted
  int64_t group = 1;
  std::string auto_pad;      // empty: attribute omitted
  bool bias = true;
  bool kernel_shape = false;  // also give kernel_shape
  bool initializers = false;  // W and B as initializers rather than inputs
};

void check_conv(DType dt, const ConvCase& c, uint64_t seed, std::optional<gputest::Tolerance> tol = std::nullopt) {
  SCOPED_TRACE(std::string(dtype_name(dt)) + " X " + dims_to_string(c.x) + " W " + dims_to_string(c.w) +
               " group " + std::to_string(c.group) + " pads " + dims_to_string(c.pads) + " strides " +
               dims_to_string(c.strides) + " dilations " + dims_to_string(c.dilations) + " auto_pad " + c.auto_pad);
  ModelBuilder b;
  std::map<std::string, Tensor> inputs;
  b.input("x", dt, str_dims(c.x));
  inputs["x"] = gputest::random_tensor(dt, c.x, seed);
  Tensor w = gputest::random_tensor(dt, c.w, seed + 1);
  Tensor bias = gputest::random_tensor(dt, {c.w[0]}, seed + 2);
  std::vector<std::string> ins{"x", "w"};
  if (c.initializers) {
    b.initializer("w", w);
    if (c.bias) b.initializer("b", bias);
  } else {
    b.input("w", dt, str_dims(c.w));
    inputs["w"] = w;
    if (c.bias) {
      b.input("b", dt, {std::to_string(c.w[0])});
      inputs["b"] = bias;
    }
  }
  if (c.bias) ins.push_back("b");
  b.node("Conv", ins, {"y"});
  if (c.group != 1) b.attr("group", c.group);
  if (!c.strides.empty()) b.attr("strides", c.strides);
  if (!c.dilations.empty()) b.attr("dilations", c.dilations);
  if (!c.pads.empty()) b.attr("pads", c.pads);
  if (!c.auto_pad.empty()) b.attr("auto_pad", c.auto_pad);
  if (c.kernel_shape) b.attr("kernel_shape", std::vector<int64_t>(c.w.begin() + 2, c.w.end()));
  b.output("y");
  // f32: cuDNN sums the C/group * k products in another order than the CPU; on sums of ~150 products of
  // magnitude ~1 that rounding noise reaches ~3e-6 absolute, hence atol 1e-5. TF32 (errors ~1e-3) still fails.
  if (!tol && dt == DType::kF32) tol = gputest::Tolerance{1e-5, 1e-5};
  gputest::expect_gpu_matches_cpu(b, inputs, 1, tol);
}

const DType kFloatTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

TEST(GpuConv, TwoDOddShapes) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    // 3x3 pads 1 on a 7x7 image, 3 -> 16 channels.
    check_conv(dt, {.x = {1, 3, 7, 7}, .w = {16, 3, 3, 3}, .pads = {1, 1, 1, 1}}, 1);
    // 5x5 stride 2 pads 2, N=3, odd channel counts.
    check_conv(dt, {.x = {3, 7, 17, 17}, .w = {5, 7, 5, 5}, .strides = {2, 2}, .pads = {2, 2, 2, 2}}, 2);
    // ResNet-style stem: 7x7 stride 2 pads 3, initializers, kernel_shape given.
    check_conv(dt, {.x = {1, 3, 32, 32}, .w = {16, 3, 7, 7}, .strides = {2, 2}, .pads = {3, 3, 3, 3},
                    .kernel_shape = true, .initializers = true}, 3);
    // 1x1 pointwise, no bias.
    check_conv(dt, {.x = {3, 16, 5, 5}, .w = {7, 16, 1, 1}, .bias = false}, 4);
    // 1x1 stride 2 (downsampling shortcut).
    check_conv(dt, {.x = {1, 16, 17, 17}, .w = {7, 16, 1, 1}, .strides = {2, 2}}, 5);
    // Non-square image and kernel, no pads.
    check_conv(dt, {.x = {1, 3, 5, 17}, .w = {7, 3, 3, 5}, .strides = {1, 2}}, 6);
    // 1x1 image with a 3x3 kernel fully in the padding but the centre.
    check_conv(dt, {.x = {3, 7, 1, 1}, .w = {16, 7, 3, 3}, .pads = {1, 1, 1, 1}}, 7);
    // Whole-image kernel (1x1 output).
    check_conv(dt, {.x = {1, 7, 5, 5}, .w = {3, 7, 5, 5}}, 8);
  }
}

TEST(GpuConv, GroupsAndDepthwise) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    check_conv(dt, {.x = {3, 16, 17, 17}, .w = {8, 8, 3, 3}, .pads = {1, 1, 1, 1}, .group = 2}, 11);
    check_conv(dt, {.x = {1, 16, 32, 32}, .w = {16, 1, 3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1}, .group = 16,
                    .initializers = true}, 12);
    // Depthwise with channel multiplier 2, 5x5.
    check_conv(dt, {.x = {3, 16, 17, 17}, .w = {32, 1, 5, 5}, .pads = {2, 2, 2, 2}, .group = 16}, 13);
    // Depthwise 7x7 on 7 channels, no bias.
    check_conv(dt, {.x = {1, 7, 17, 17}, .w = {7, 1, 7, 7}, .pads = {3, 3, 3, 3}, .group = 7, .bias = false}, 14);
    // Groups with dilation and stride.
    check_conv(dt, {.x = {1, 6, 17, 17}, .w = {9, 2, 3, 3}, .strides = {2, 2}, .dilations = {2, 2},
                    .pads = {2, 2, 2, 2}, .group = 3}, 15);
  }
}

TEST(GpuConv, Dilations) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    check_conv(dt, {.x = {1, 7, 17, 17}, .w = {3, 7, 3, 3}, .dilations = {2, 2}, .pads = {2, 2, 2, 2}}, 21);
    check_conv(dt, {.x = {3, 3, 32, 32}, .w = {16, 3, 3, 3}, .dilations = {2, 3}}, 22);
  }
}

TEST(GpuConv, AsymmetricAndAutoPads) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    // TF-style stride-2 padding: one extra row/column at the end.
    check_conv(dt, {.x = {1, 16, 32, 32}, .w = {16, 16, 3, 3}, .strides = {2, 2}, .pads = {0, 0, 1, 1}}, 31);
    check_conv(dt, {.x = {3, 7, 17, 5}, .w = {5, 7, 3, 3}, .pads = {1, 2, 0, 3}}, 32);
    // SAME_UPPER: 32 with k3 s2 pads (0, 1); 17 pads (1, 1).
    check_conv(dt, {.x = {1, 3, 32, 17}, .w = {16, 3, 3, 3}, .strides = {2, 2}, .auto_pad = "SAME_UPPER"}, 33);
    // SAME_LOWER: pads (1, 0) along 32.
    check_conv(dt, {.x = {1, 3, 32, 17}, .w = {16, 3, 3, 3}, .strides = {2, 2}, .auto_pad = "SAME_LOWER"}, 34);
    // SAME with stride 1 and an even kernel.
    check_conv(dt, {.x = {3, 7, 5, 7}, .w = {3, 7, 2, 4}, .auto_pad = "SAME_UPPER"}, 35);
    check_conv(dt, {.x = {1, 7, 17, 17}, .w = {3, 7, 5, 5}, .strides = {2, 2}, .auto_pad = "VALID"}, 36);
    // Asymmetric pads with groups (depthwise, MobileNet/EfficientNet-style from TF).
    check_conv(dt, {.x = {1, 16, 17, 17}, .w = {16, 1, 5, 5}, .strides = {2, 2}, .pads = {1, 1, 2, 2}, .group = 16},
               37);
  }
}

TEST(GpuConv, OneD) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    check_conv(dt, {.x = {3, 7, 17}, .w = {5, 7, 3}, .strides = {2}, .pads = {1, 1}}, 41);
    check_conv(dt, {.x = {1, 16, 32}, .w = {16, 16, 5}, .pads = {0, 4}}, 42);  // causal-style asymmetric
    check_conv(dt, {.x = {1, 16, 32}, .w = {8, 4, 3}, .dilations = {2}, .pads = {2, 2}, .group = 4}, 43);
    check_conv(dt, {.x = {3, 1, 1}, .w = {3, 1, 1}, .bias = false}, 44);
    check_conv(dt, {.x = {1, 7, 17}, .w = {7, 1, 3}, .group = 7, .auto_pad = "SAME_UPPER"}, 45);
  }
}

TEST(GpuConv, ThreeD) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    check_conv(dt, {.x = {1, 3, 5, 7, 7}, .w = {4, 3, 3, 3, 3}, .pads = {1, 1, 1, 1, 1, 1}}, 51);
    check_conv(dt, {.x = {3, 4, 7, 5, 17}, .w = {6, 2, 3, 1, 3}, .strides = {2, 1, 2}, .pads = {1, 0, 1, 1, 0, 1},
                    .group = 2}, 52);
    check_conv(dt, {.x = {1, 3, 7, 7, 7}, .w = {5, 3, 3, 3, 3}, .strides = {2, 2, 2}, .dilations = {1, 2, 1},
                    .pads = {0, 2, 1, 1, 2, 0}}, 53);  // asymmetric
    check_conv(dt, {.x = {1, 7, 5, 5, 5}, .w = {7, 1, 3, 3, 3}, .group = 7, .auto_pad = "SAME_LOWER",
                    .bias = false}, 54);
  }
}

TEST(GpuConv, FourSpatialDimsUseTheDirectKernel) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    check_conv(dt, {.x = {1, 4, 3, 5, 4, 7}, .w = {4, 2, 2, 3, 1, 3}, .strides = {1, 2, 1, 2},
                    .pads = {0, 1, 0, 1, 1, 1, 0, 0}, .group = 2}, 61);
  }
}

// f32 with K = 64*9 = 576: TF32 (10-bit mantissa) would miss this tolerance by orders of magnitude.
TEST(GpuConv, F32IsNotTF32) {
  KILN_REQUIRE_GPU();
  check_conv(DType::kF32, {.x = {1, 64, 17, 17}, .w = {32, 64, 3, 3}, .pads = {1, 1, 1, 1}}, 71,
             gputest::Tolerance{2e-5, 1e-5});
  check_conv(DType::kF32, {.x = {3, 32, 32, 32}, .w = {64, 32, 3, 3}, .strides = {2, 2}, .pads = {0, 0, 1, 1}}, 72,
             gputest::Tolerance{2e-5, 1e-5});
}

// An asymmetrically padded input larger than the 32 MiB scratch runs on the direct kernel.
TEST(GpuConv, LargeAsymmetricFallsBackToDirectKernel) {
  KILN_REQUIRE_GPU();
  check_conv(DType::kF32, {.x = {1, 2, 2100, 2100}, .w = {2, 2, 3, 3}, .strides = {2, 2}, .pads = {0, 0, 1, 1}}, 81);
}

TEST(GpuConv, EmptyBatch) {
  KILN_REQUIRE_GPU();
  ModelBuilder b;
  b.input("x", DType::kF32, {"0", "3", "5", "5"})
      .input("w", DType::kF32, {"4", "3", "3", "3"})
      .node("Conv", {"x", "w"}, {"y"})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .output("y");
  gputest::expect_gpu_matches_cpu(b, {{"x", Tensor(DType::kF32, {0, 3, 5, 5})},
                                      {"w", gputest::random_tensor(DType::kF32, {4, 3, 3, 3}, 91)}});
}

}  // namespace
}  // namespace kiln
