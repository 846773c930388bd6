// lower_patch_conv: patchify convolutions (kernel == stride > 1x1) become Reshape -> Transpose -> MatMul
// [+ Add] with the same CPU results at odd sizes (batch 1/3, channels 1/3, rectangular patches, with and
// without bias); ViT's flatten-and-transpose tail is absorbed; every other kind of conv stays; the ViT
// skeleton loses its conv and still matches.
#include <gtest/gtest.h>

#include "passes/pass.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"
#include "support/skeleton.h"

namespace kiln {
namespace {

using testing::count_op;
using testing::ModelBuilder;
using testing::run_cpu;
using testing::sdims;

struct Case {
  int64_t b = 3, c = 3, h = 6, w = 9, m = 5, p = 2, q = 3;
  bool bias = true;
  bool vit_tail = false;  // Reshape [B, M, H'W'] -> Transpose [0, 2, 1] after the conv
};

ModelBuilder patch_model(const Case& c, const std::map<std::string, int64_t>& extra = {}) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, sdims({c.b, c.c, c.h, c.w}));
  b.initializer("w", testing::random_f32({c.m, c.c, c.p, c.q}, 7));
  std::vector<std::string> ins = {"x", "w"};
  if (c.bias) {
    b.initializer("bias", testing::random_f32({c.m}, 8));
    ins.push_back("bias");
  }
  b.node("Conv", ins, {"y"}, "patch_embed")
      .attr("kernel_shape", std::vector<int64_t>{c.p, c.q})
      .attr("strides", std::vector<int64_t>{c.p, c.q});
  for (const auto& [key, v] : extra) {
    if (key == "group") b.attr("group", v);
    if (key == "pad") b.attr("pads", std::vector<int64_t>{v, v, v, v});
    if (key == "dilation") b.attr("dilations", std::vector<int64_t>{v, v});
  }
  if (c.vit_tail) {
    const int64_t hw = (c.h / c.p) * (c.w / c.q);
    b.initializer("flat", testing::i64_tensor({3}, {0, c.m, hw}));
    b.node("Reshape", {"y", "flat"}, {"flat_y"});
    b.node("Transpose", {"flat_y"}, {"tokens"}).attr("perm", std::vector<int64_t>{0, 2, 1}).output("tokens");
  } else {
    b.output("y");
  }
  return b;
}

ir::Graph lower_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  return testing::pass_keeps_outputs(b.bytes(), passes::lower_patch_conv, inputs, 1e-5);
}

TEST(LowerPatchConv, PatchConvsBecomeGemmsAtOddSizes) {
  std::vector<Case> cases;
  for (int64_t b : {1, 3})
    for (int64_t c : {1, 3}) {
      Case k;
      k.b = b;
      k.c = c;
      k.bias = b == 3;
      k.m = c == 1 ? 1 : 5;
      if (b == 1 && c == 3) k.p = 3, k.q = 3, k.h = 9, k.w = 6;
      cases.push_back(k);
    }
  for (const Case& c : cases) {
    SCOPED_TRACE(fmt::format("b={} c={} m={} patch {}x{} bias={}", c.b, c.c, c.m, c.p, c.q, c.bias));
    ir::Graph g = lower_and_compare(patch_model(c), {{"x", testing::random_f32({c.b, c.c, c.h, c.w}, 30 + c.b)}});
    EXPECT_EQ(count_op(g, "Conv"), 0);
    EXPECT_EQ(count_op(g, "MatMul"), 1);
    EXPECT_EQ(count_op(g, "Add"), c.bias ? 1 : 0);
    EXPECT_EQ(count_op(g, "Transpose"), 2);  // patches to the end, channels back to the front
  }
}

TEST(LowerPatchConv, VitFlattenTailIsAbsorbed) {
  for (int64_t b : {1, 2}) {
    Case c;
    c.b = b;
    c.vit_tail = true;
    ir::Graph g = lower_and_compare(patch_model(c), {{"x", testing::random_f32({c.b, c.c, c.h, c.w}, 40 + b)}});
    EXPECT_EQ(count_op(g, "Conv"), 0);
    EXPECT_EQ(count_op(g, "Transpose"), 1);  // only the patch gather; the GEMM writes the tokens directly
    ASSERT_FALSE(g.nodes.empty());
    EXPECT_EQ(g.nodes.back().outputs[0], "tokens");
  }
}

TEST(LowerPatchConv, OtherConvsStay) {
  Case base;
  struct Variant {
    const char* what;
    Case c;
    std::map<std::string, int64_t> extra;
  };
  Case one_by_one = base;  // 1x1 stride 1: a plain pointwise conv, cuDNN's business
  one_by_one.p = one_by_one.q = 1;
  Case ragged = base;  // 7 rows: the conv drops the last one
  ragged.h = 7;
  std::vector<Variant> variants = {{"padded", base, {{"pad", 1}}},
                                   {"dilated", base, {{"dilation", 2}}},
                                   {"1x1", one_by_one, {}},
                                   {"ragged", ragged, {}}};
  for (const auto& v : variants) {
    SCOPED_TRACE(v.what);
    ir::Graph g = testing::import_inferred(patch_model(v.c, v.extra).bytes());
    ASSERT_TRUE(passes::lower_patch_conv(g).ok());
    EXPECT_EQ(count_op(g, "Conv"), 1);
  }
  // A conv built from its dims directly, for the cases patch_model cannot express.
  const auto stays = [](const char* what, std::vector<int64_t> x, std::vector<int64_t> w,
                        std::vector<int64_t> kernel, std::vector<int64_t> strides, int64_t group) {
    SCOPED_TRACE(what);
    ModelBuilder b(17);
    b.input("x", DType::kF32, sdims(x));
    b.initializer("w", testing::random_f32(w, 1));
    b.node("Conv", {"x", "w"}, {"y"}).attr("kernel_shape", kernel).attr("strides", strides).attr("group", group);
    b.output("y");
    ir::Graph g = testing::import_inferred(b.bytes());
    ASSERT_TRUE(passes::lower_patch_conv(g).ok());
    EXPECT_EQ(count_op(g, "Conv"), 1);
  };
  stays("grouped: 4 channels in 2 groups", {1, 4, 6, 9}, {4, 2, 2, 3}, {2, 3}, {2, 3}, 2);
  stays("stride 2 with a 3x3 kernel (overlapping windows)", {1, 3, 7, 7}, {2, 3, 3, 3}, {3, 3}, {2, 2}, 1);
}

TEST(LowerPatchConv, VitSkeletonPatchEmbeddingBecomesAGemm) {
  const std::string bytes = testing::load_skeleton("vit_b_16");
  ir::Graph lowered = testing::import_plain(bytes, "vit"), conv = testing::import_plain(bytes, "vit");
  ASSERT_TRUE(passes::run_pipeline(lowered, passes::default_pipeline()).ok());
  ASSERT_TRUE(passes::run_pipeline(conv, testing::pipeline_without({"lower_patch_conv"})).ok());
  EXPECT_EQ(count_op(conv, "FusedConv") + count_op(conv, "Conv"), 1);
  EXPECT_EQ(count_op(lowered, "FusedConv") + count_op(lowered, "Conv"), 0);
  // The model's own [0, 2, 1] permute is absorbed; the patch gather's Transpose takes its place.
  EXPECT_EQ(count_op(lowered, "Transpose"), count_op(conv, "Transpose"));
  const std::map<std::string, Tensor> in = {{"image", testing::random_f32({2, 3, 224, 224}, 5)}};
  testing::expect_same_outputs(run_cpu(conv, in), run_cpu(lowered, in), 1e-4);
}

}  // namespace
}  // namespace kiln
