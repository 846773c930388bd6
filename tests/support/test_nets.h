// Small models several test files build: one definition each, shared by the CPU pass tests and the GPU tests.
#pragma once
#include "support/model_builder.h"

namespace kiln::testing {

// Stem (3 -> 7 channels, stride 2) -> depthwise 3x3 (group 7) -> 1x1 with the block input as residual; then a
// strided block (7 -> 6, then group 2) whose residual comes through a strided 1x1 downsample conv.
inline ModelBuilder conv_residual_net() {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3", "11", "9"})
      .initializer("w_stem", random_f32({7, 3, 3, 3}, 1))
      .initializer("b_stem", random_f32({7}, 2))
      .initializer("w_dw", random_f32({7, 1, 3, 3}, 3))
      .initializer("w_pw", random_f32({7, 7, 1, 1}, 4))
      .initializer("b_pw", random_f32({7}, 5))
      .initializer("w_a", random_f32({6, 7, 3, 3}, 6))
      .initializer("w_b", random_f32({6, 3, 3, 3}, 7))
      .initializer("w_down", random_f32({6, 7, 1, 1}, 8))
      .node("Conv", {"x", "w_stem", "b_stem"}, {"s"}, "stem")
      .attr("strides", std::vector<int64_t>{2, 2})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Relu", {"s"}, {"s_act"})
      .node("Conv", {"s_act", "w_dw"}, {"dw"}, "depthwise")
      .attr("group", int64_t{7})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Relu", {"dw"}, {"dw_act"})
      .node("Conv", {"dw_act", "w_pw", "b_pw"}, {"pw"}, "pointwise")
      .node("Add", {"pw", "s_act"}, {"sum1"})
      .node("Relu", {"sum1"}, {"block1"})
      .node("Conv", {"block1", "w_a"}, {"a"}, "strided_a")
      .attr("strides", std::vector<int64_t>{2, 2})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Relu", {"a"}, {"a_act"})
      .node("Conv", {"a_act", "w_b"}, {"bb"}, "grouped_b")
      .attr("group", int64_t{2})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Conv", {"block1", "w_down"}, {"down"}, "downsample")
      .attr("strides", std::vector<int64_t>{2, 2})
      .node("Add", {"bb", "down"}, {"sum2"})
      .node("Relu", {"sum2"}, {"y"})
      .output("y");
  return b;
}

// ConvNeXt's blocks as torchvision exports them: the MLP's output, permuted back to NCHW, is scaled by a
// constant layer scale [C,1,1] (constant first) before the residual Add; here also a constant bias [C,1,1]
// (constant second) and a scalar. The constants are transposed once at build, so the residual stream stays
// channels-last from block to block.
inline ModelBuilder convnext_blocks(int64_t c) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3", "10", "10"})
      .initializer("w_stem", random_f32({c, 3, 2, 2}, 1))
      .initializer("half", testing::f32_tensor({}, {0.5f}))
      .node("Conv", {"x", "w_stem"}, {"h0"}, "stem")
      .attr("strides", std::vector<int64_t>{2, 2});
  std::string h = "h0";
  for (int blk = 0; blk < 3; ++blk) {
    const std::string p = "b" + std::to_string(blk) + "_";
    b.initializer(p + "w_dw", random_f32({c, 1, 3, 3}, 10 + blk))
        .initializer(p + "w1", random_f32({c, 2 * c}, 40 + blk))
        .initializer(p + "w2", random_f32({2 * c, c}, 50 + blk))
        .initializer(p + "gamma", random_f32({c, 1, 1}, 60 + blk))
        .initializer(p + "beta", random_f32({c, 1, 1}, 70 + blk))
        .node("Conv", {h, p + "w_dw"}, {p + "dw"}, p + "dwconv")
        .attr("group", c)
        .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
        .node("Transpose", {p + "dw"}, {p + "t"})
        .attr("perm", std::vector<int64_t>{0, 2, 3, 1})
        .node("MatMul", {p + "t", p + "w1"}, {p + "m1"})
        .node("Relu", {p + "m1"}, {p + "r"})
        .node("MatMul", {p + "r", p + "w2"}, {p + "m2"})
        .node("Transpose", {p + "m2"}, {p + "back"})
        .attr("perm", std::vector<int64_t>{0, 3, 1, 2})
        .node("Mul", {p + "gamma", p + "back"}, {p + "scaled"}, p + "layer_scale")
        .node("Add", {p + "scaled", p + "beta"}, {p + "biased"}, p + "bias")
        .node("Mul", {p + "biased", "half"}, {p + "halved"}, p + "scalar")
        .node("Add", {h, p + "halved"}, {p + "out"});
    h = p + "out";
  }
  b.node("ReduceMean", {h}, {"y"}).attr("axes", std::vector<int64_t>{2, 3}).output("y");
  return b;
}

}  // namespace kiln::testing
