// fuse_add_layer_norm alone: Add(X, R) of one shape → LayerNormalization over the last axis becomes one
// FusedAddLayerNorm computing what the pair did (bit for bit on the CPU reference, which composes the same
// two kernels), with the sum S as a second output exactly when something else reads it; broadcasting Adds,
// other axes, read statistics and gammas made too late stay as they are. In the default pipeline it takes
// only the Adds fuse_matmul_epilogue leaves, and the four real models' counts are pinned.
#include <gtest/gtest.h>

#include <cstdio>

#ifdef KILN_WITH_CUDA
#include "backends/cuda/kernel_list.h"
#endif
#include "onnx/importer.h"
#include "passes/convert_precision.h"
#include "passes/pass.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"
#include "support/skeleton.h"
#include "kiln/half.h"

namespace kiln {
namespace {

using namespace testing;  // graph_test_util.h, model_builder.h

// The fused node runs the same reference kernels as the pair: identical outputs.
ir::Graph fuse_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  return testing::pass_keeps_outputs(b.bytes(), passes::fuse_add_layer_norm, inputs, 0.0);
}

// BERT's post-norm: y = LayerNorm(x + r) * gamma + beta, the sum read by the norm alone.
ModelBuilder post_norm(const std::vector<std::string>& dims, int64_t d, bool beta = true) {
  ModelBuilder b(20);
  b.input("x", DType::kF32, dims).input("r", DType::kF32, dims).initializer("gamma", random_f32({d}, 7));
  std::vector<std::string> ln_in = {"sum", "gamma"};
  if (beta) {
    b.initializer("beta", random_f32({d}, 8));
    ln_in.push_back("beta");
  }
  b.node("Add", {"x", "r"}, {"sum"}, "residual")
      .node("LayerNormalization", ln_in, {"y"}, "ln")
      .attr("axis", int64_t{-1})
      .attr("epsilon", 1e-12f)
      .output("y");
  return b;
}

TEST(FuseAddLayerNorm, PostNormOnOddShapesHasNoSumOutput) {
  for (std::vector<int64_t> x : {std::vector<int64_t>{1, 1}, std::vector<int64_t>{3, 7},
                                 std::vector<int64_t>{2, 3, 127}, std::vector<int64_t>{7, 768}}) {
    for (bool beta : {true, false}) {
      SCOPED_TRACE(dims_to_string(x) + (beta ? " beta" : ""));
      ir::Graph g = fuse_and_compare(post_norm(sdims(x), x.back(), beta),
                                     {{"x", random_f32(x, 1)}, {"r", random_f32(x, 2)}});
      ASSERT_EQ(count_op(g, "FusedAddLayerNorm"), 1);
      EXPECT_EQ(g.nodes.size(), 1u);
      const ir::Node* n = find_op(g, "FusedAddLayerNorm");
      EXPECT_EQ(n->domain, "kiln");
      EXPECT_EQ(n->name, "ln");
      std::vector<std::string> want_in = {"x", "r", "gamma"};
      if (beta) want_in.push_back("beta");
      EXPECT_EQ(n->inputs, want_in);
      EXPECT_EQ(n->outputs, (std::vector<std::string>{"y"}));
      EXPECT_FLOAT_EQ(n->attr_float("epsilon", 0), 1e-12f);
      EXPECT_EQ(g.value("sum"), nullptr) << "the sum no longer exists";
    }
  }
}

TEST(FuseAddLayerNorm, PreNormWritesTheSumForItsOtherReaders) {
  // GPT-2/ViT: h = x + r; y = LayerNorm(h); out = h + f(y). The residual reads h after the norm.
  ModelBuilder b(20);
  b.input("x", DType::kF32, {"batch", "5", "8"})
      .input("r", DType::kF32, {"batch", "5", "8"})
      .input("gamma", DType::kF32, {"8"})  // a graph input: need not be a constant
      .node("Add", {"x", "r"}, {"h"})
      .node("LayerNormalization", {"h", "gamma"}, {"y"}, "ln")
      .node("Relu", {"y"}, {"f"})
      .node("Add", {"h", "f"}, {"out"})
      .output("out");
  std::map<std::string, Tensor> in = {
      {"x", random_f32({3, 5, 8}, 1)}, {"r", random_f32({3, 5, 8}, 2)}, {"gamma", random_f32({8}, 3)}};
  ir::Graph g = fuse_and_compare(b, in);
  ASSERT_EQ(count_op(g, "FusedAddLayerNorm"), 1);
  const ir::Node* n = find_op(g, "FusedAddLayerNorm");
  EXPECT_EQ(n->outputs, (std::vector<std::string>{"y", "h"}));
  EXPECT_EQ(n->inputs, (std::vector<std::string>{"x", "r", "gamma"}));
  EXPECT_EQ(count_op(g, "Add"), 1) << "the second residual Add reads S";
}

TEST(FuseAddLayerNorm, SumAsGraphOutputOrReadBeforeTheNorm) {
  {
    ModelBuilder b = post_norm({"4", "6"}, 6);
    b.output("sum");
    ir::Graph g = fuse_and_compare(b, {{"x", random_f32({4, 6}, 1)}, {"r", random_f32({4, 6}, 2)}});
    ASSERT_EQ(count_op(g, "FusedAddLayerNorm"), 1);
    EXPECT_EQ(find_op(g, "FusedAddLayerNorm")->outputs, (std::vector<std::string>{"y", "sum"}));
  }
  {
    // A reader of the sum sits between the Add and the norm in node order: the fused node takes the Add's
    // place, or that reader would run before its input exists.
    ModelBuilder b(20);
    b.input("x", DType::kF32, {"4", "6"})
        .input("r", DType::kF32, {"4", "6"})
        .initializer("gamma", random_f32({6}, 7))
        .node("Add", {"x", "r"}, {"sum"})
        .node("Neg", {"sum"}, {"neg"})
        .node("LayerNormalization", {"sum", "gamma"}, {"y"})
        .node("Add", {"y", "neg"}, {"out"})
        .output("out");
    ir::Graph g = fuse_and_compare(b, {{"x", random_f32({4, 6}, 3)}, {"r", random_f32({4, 6}, 4)}});
    ASSERT_EQ(count_op(g, "FusedAddLayerNorm"), 1);
    EXPECT_EQ(g.nodes[0].op_type, "FusedAddLayerNorm");
    EXPECT_EQ(g.nodes[1].op_type, "Neg");
  }
}

TEST(FuseAddLayerNorm, GammaMadeAfterTheAdd) {
  // gamma comes from a node after the Add: with no other reader of the sum the fused node takes the norm's
  // place; when the sum is read before the norm, no place works and the pair stays.
  auto model = [](bool early_reader) {
    ModelBuilder b(20);
    b.input("x", DType::kF32, {"4", "6"}).input("r", DType::kF32, {"4", "6"}).input("g0", DType::kF32, {"6"});
    b.node("Add", {"x", "r"}, {"sum"});
    if (early_reader) b.node("Neg", {"sum"}, {"neg"});
    b.node("Abs", {"g0"}, {"gamma"}).node("LayerNormalization", {"sum", "gamma"}, {"y"});
    if (early_reader) {
      b.node("Add", {"y", "neg"}, {"out"}).output("out");
    } else {
      b.output("y");
    }
    return b;
  };
  std::map<std::string, Tensor> in = {
      {"x", random_f32({4, 6}, 1)}, {"r", random_f32({4, 6}, 2)}, {"g0", random_f32({6}, 3)}};
  ir::Graph g = fuse_and_compare(model(false), in);
  ASSERT_EQ(count_op(g, "FusedAddLayerNorm"), 1);
  EXPECT_EQ(g.nodes.back().op_type, "FusedAddLayerNorm");
  ir::Graph h = fuse_and_compare(model(true), in);
  EXPECT_EQ(count_op(h, "FusedAddLayerNorm"), 0);
  EXPECT_EQ(count_op(h, "LayerNormalization"), 1);
}

TEST(FuseAddLayerNorm, BroadcastOtherAxisAndReadStatisticsStay) {
  {
    // BERT's position embeddings: [b, s, d] + [1, s, d].
    ModelBuilder b(20);
    b.input("x", DType::kF32, {"2", "5", "8"})
        .input("p", DType::kF32, {"1", "5", "8"})
        .initializer("gamma", random_f32({8}, 7))
        .node("Add", {"x", "p"}, {"sum"})
        .node("LayerNormalization", {"sum", "gamma"}, {"y"})
        .output("y");
    ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 5, 8}, 1)}, {"p", random_f32({1, 5, 8}, 2)}});
    EXPECT_EQ(count_op(g, "FusedAddLayerNorm"), 0);
  }
  {
    // Different symbols: not provably one shape.
    ModelBuilder b(20);
    b.input("x", DType::kF32, {"a", "8"})
        .input("r", DType::kF32, {"b", "8"})
        .initializer("gamma", random_f32({8}, 7))
        .node("Add", {"x", "r"}, {"sum"})
        .node("LayerNormalization", {"sum", "gamma"}, {"y"})
        .output("y");
    ir::Graph g = fuse_and_compare(b, {{"x", random_f32({3, 8}, 1)}, {"r", random_f32({3, 8}, 2)}});
    EXPECT_EQ(count_op(g, "FusedAddLayerNorm"), 0);
  }
  {
    // Normalizing the last two axes.
    ModelBuilder b(20);
    b.input("x", DType::kF32, {"2", "5", "8"})
        .input("r", DType::kF32, {"2", "5", "8"})
        .initializer("gamma", random_f32({5, 8}, 7))
        .node("Add", {"x", "r"}, {"sum"})
        .node("LayerNormalization", {"sum", "gamma"}, {"y"})
        .attr("axis", int64_t{1})
        .output("y");
    ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 5, 8}, 1)}, {"r", random_f32({2, 5, 8}, 2)}});
    EXPECT_EQ(count_op(g, "FusedAddLayerNorm"), 0);
  }
  {
    // Mean read by someone: the fused op has no statistics output.
    ModelBuilder s(20);
    s.input("x", DType::kF32, {"3", "8"})
        .input("r", DType::kF32, {"3", "8"})
        .initializer("gamma", random_f32({8}, 7))
        .node("Add", {"x", "r"}, {"sum"})
        .node("LayerNormalization", {"sum", "gamma"}, {"y", "mean"})
        .output("y")
        .output("mean");
    ir::Graph g = fuse_and_compare(s, {{"x", random_f32({3, 8}, 1)}, {"r", random_f32({3, 8}, 2)}});
    EXPECT_EQ(count_op(g, "FusedAddLayerNorm"), 0);
  }
}

TEST(FuseAddLayerNorm, UnreadStatisticsAndSymbolicDimsFuse) {
  ModelBuilder b(20);
  b.input("x", DType::kF32, {"batch", "seq", "8"})
      .input("r", DType::kF32, {"batch", "seq", "8"})
      .initializer("gamma", random_f32({8}, 7))
      .node("Add", {"r", "x"}, {"sum"})
      .node("LayerNormalization", {"sum", "gamma"}, {"y", "mean", "inv"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 3, 8}, 1)}, {"r", random_f32({2, 3, 8}, 2)}});
  ASSERT_EQ(count_op(g, "FusedAddLayerNorm"), 1);
  EXPECT_EQ(find_op(g, "FusedAddLayerNorm")->outputs, (std::vector<std::string>{"y"}));
  EXPECT_EQ(g.value("mean"), nullptr);
}

TEST(FuseAddLayerNorm, HalfPrecisionMatchesThePairExactly) {
  // f16: S is rounded to f16 before the norm reads it, in the pair and in the fused node alike.
  for (DType dt : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dt));
    auto half = [&](const Tensor& f) {
      Tensor t(dt, f.dims());
      for (int64_t i = 0; i < f.numel(); ++i)
        t.data<uint16_t>()[i] = dt == DType::kF16 ? float_to_half(f.data<float>()[i] * 50.f)
                                                  : float_to_bf16(f.data<float>()[i] * 50.f);
      return t;
    };
    ModelBuilder b(20);
    b.input("x", dt, {"7", "33"})
        .input("r", dt, {"7", "33"})
        .initializer("gamma", half(random_f32({33}, 7)))
        .initializer("beta", half(random_f32({33}, 8)))
        .node("Add", {"x", "r"}, {"sum"})
        .node("LayerNormalization", {"sum", "gamma", "beta"}, {"y"})
        .output("y")
        .output("sum");
    ir::Graph g =
        fuse_and_compare(b, {{"x", half(random_f32({7, 33}, 1))}, {"r", half(random_f32({7, 33}, 2))}});
    EXPECT_EQ(count_op(g, "FusedAddLayerNorm"), 1);
  }
}

TEST(FuseAddLayerNorm, DefaultPipelineLeavesGemmResidualsToTheEpilogue) {
  // x -> MatMul(W) + bias + residual -> LayerNorm: fuse_matmul_epilogue takes the residual (no Add left
  // here); a residual that reaches the norm through a Transpose (ViT's seq-first attention) is this pass's.
  ModelBuilder b(20);
  b.input("x", DType::kF32, {"2", "5", "8"})
      .input("t", DType::kF32, {"5", "2", "8"})
      .initializer("w", random_f32({8, 8}, 3))
      .initializer("bias", random_f32({8}, 4))
      .initializer("gamma", random_f32({8}, 5))
      .initializer("beta", random_f32({8}, 6))
      .node("MatMul", {"x", "w"}, {"mm"})
      .node("Add", {"mm", "bias"}, {"lin"})
      .node("Add", {"lin", "x"}, {"h1"})
      .node("LayerNormalization", {"h1", "gamma", "beta"}, {"y1"})
      .node("Transpose", {"t"}, {"tt"})
      .attr("perm", std::vector<int64_t>{1, 0, 2})
      .node("Add", {"tt", "y1"}, {"h2"})
      .node("LayerNormalization", {"h2", "gamma", "beta"}, {"y2"})
      .node("Add", {"h2", "y2"}, {"out"})
      .output("out");
  std::map<std::string, Tensor> in = {{"x", random_f32({2, 5, 8}, 1)}, {"t", random_f32({5, 2, 8}, 2)}};
  ir::Graph g = import_inferred(b.bytes());
  auto want = testing::run_cpu(g, in);
  ASSERT_TRUE(passes::run_pipeline(g, passes::default_pipeline(), nullptr).ok());
  EXPECT_EQ(count_op(g, "FusedMatMul"), 1);
  EXPECT_EQ(count_op(g, "LayerNormalization"), 1);
  ASSERT_EQ(count_op(g, "FusedAddLayerNorm"), 1);
  EXPECT_EQ(find_op(g, "FusedAddLayerNorm")->outputs.size(), 2u);
  testing::expect_same_outputs(want, testing::run_cpu(g, in), 1e-5);
#ifdef KILN_WITH_CUDA
  // --fp16 for CUDA: the fused node computes in f16 (its kernel takes f16 X, R, gamma, beta), no Casts around
  // it.
  passes::PrecisionOptions opt;
  opt.target = DType::kF16;
  opt.supports = [](const ir::Node& n, const std::vector<DType>& dts) {
    const cuda::KernelDef* k = cuda::kernel_table().find(n.op_type);
    return k != nullptr && (k->supports == nullptr || k->supports(n, dts));
  };
  passes::PrecisionReport report;
  ASSERT_TRUE(passes::convert_precision(g, opt, &report).ok());
  const ir::Node* n = find_op(g, "FusedAddLayerNorm");
  ASSERT_NE(n, nullptr);
  for (const auto& v : n->inputs)
    EXPECT_EQ(g.is_constant(v) ? g.initializers.at(v).dtype() : g.value(v)->dtype, DType::kF16) << v;
  for (const auto& [node, why] : report.kept_f32) EXPECT_NE(node, n->name) << why;
#endif
}

// The four real models after the full pipeline: no LayerNormalization reads a same-shape Add any more (each
// residual sum is computed inside a FusedMatMul epilogue or a FusedAddLayerNorm), and a FusedAddLayerNorm in
// these pre-norm models writes S. The counts are printed: they depend on what the passes before leave (with
// the residual Adds behind GEMMs taken by fuse_matmul_epilogue, and BERT's and GPT-2's embedding sums
// broadcasting the position embeddings, few or none are left for this pass).
TEST(FuseAddLayerNorm, SkeletonsKeepNoAddBeforeANorm) {
  for (const char* name : {"resnet50", "vit_b_16", "bert_base", "gpt2"}) {
    SCOPED_TRACE(name);
    auto g = onnx::import_model_bytes(testing::load_skeleton(name), ".", name);
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    ASSERT_TRUE(passes::run_pipeline(*g, passes::default_pipeline()).ok());
    std::map<std::string, const ir::Node*> producer;
    for (const auto& n : g->nodes)
      for (const auto& o : n.outputs) producer[o] = &n;
    int plain_pairs = 0, norms = 0;
    for (const auto& n : g->nodes) {
      if (n.op_type == "FusedAddLayerNorm") EXPECT_EQ(n.outputs.size(), 2u) << n.name << ": pre-norm needs S";
      if (n.op_type != "LayerNormalization") continue;
      ++norms;
      auto it = producer.find(n.inputs[0]);
      if (it == producer.end() || it->second->op_type != "Add") continue;
      const ir::ValueInfo* a = g->value(it->second->inputs[0]);
      const ir::ValueInfo* b = g->value(it->second->inputs[1]);
      if (a && b && a->shape.to_string() == b->shape.to_string()) {
        ++plain_pairs;
        ADD_FAILURE() << n.name << " still reads " << it->second->name << " = Add " << a->shape.to_string();
      }
    }
    EXPECT_EQ(plain_pairs, 0);
    std::printf("[ info ] %s: %d FusedAddLayerNorm, %d LayerNormalization after the pipeline\n", name,
                count_op(*g, "FusedAddLayerNorm"), norms);
  }
}

}  // namespace
}  // namespace kiln
