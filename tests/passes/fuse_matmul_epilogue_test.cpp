// fuse_matmul_epilogue alone on small graphs (fused graph computes what the unfused one did on the CPU
// reference, whose FusedMatMul composes MatMul/Gemm + Add + Add + act), the cases it must leave alone, and
// the transformer skeletons: fused nodes counted, fused CPU engine (through the engine file round trip) vs
// the unfused graph.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/executor.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#include "support/model_builder.h"
#include "support/skeleton.h"
#include "support/graph_test_util.h"

namespace kiln {
namespace {

using testing::import_inferred;
using testing::count_op;
using testing::find_op;
using testing::run_cpu;

using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;
using testing::random_f32;

// Relative to the output's largest magnitude.
void expect_close(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.dims(), want.dims()) << what;
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  double scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(want.get_as_double(i)));
  int bad = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.get_as_double(i), e = want.get_as_double(i);
    if (!(std::fabs(a - e) <= tol * (scale + 1e-30)) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "] " << a << " vs " << e;
  }
  EXPECT_EQ(bad, 0) << what;
}

ir::Graph fuse_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs,
                           double tol = 1e-6) {
  ir::Graph g = import_inferred(b.bytes());
  auto want = run_cpu(g, inputs);
  Status s = passes::fuse_matmul_epilogue(g);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(passes::eliminate_dead_code(g).ok());
  s = passes::infer_shapes(g);
  EXPECT_TRUE(s.ok()) << s.to_string();
  auto got = run_cpu(g, inputs);
  for (const auto& [name, t] : want) {
    EXPECT_TRUE(got.count(name)) << name;
    if (got.count(name)) expect_close(got.at(name), t, tol, name);
  }
  return g;
}

TEST(FuseMatMulEpilogue, BatchedMatMulBiasGelu) {
  ModelBuilder b(20);
  b.input("x", DType::kF32, {"batch", "5", "7"})
      .initializer("w", random_f32({7, 3}, 1))
      .initializer("bias", random_f32({3}, 2))
      .node("MatMul", {"x", "w"}, {"xw"}, "fc1")
      .node("Add", {"xw", "bias"}, {"h"})
      .node("Gelu", {"h"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 5, 7}, 3)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  const ir::Node& n = g.nodes[0];
  EXPECT_EQ(n.op_type, "FusedMatMul");
  EXPECT_EQ(n.domain, "kiln");
  EXPECT_EQ(n.name, "fc1");
  EXPECT_EQ(n.attr_string("activation", "?"), "gelu_erf");
  EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "w", "bias"}));
  EXPECT_EQ(n.outputs, std::vector<std::string>{"y"});
  EXPECT_EQ(g.values.at("y").shape.to_string(), "[batch,5,3]");
}

TEST(FuseMatMulEpilogue, BiasThenResidualEitherOperandOrder) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "4", "6"})
      .input("skip", DType::kF32, {"batch", "4", "5"})
      .initializer("w", random_f32({6, 5}, 4))
      .initializer("bias", random_f32({5}, 5))
      .node("MatMul", {"x", "w"}, {"xw"})
      .node("Add", {"bias", "xw"}, {"h"})
      .node("Add", {"skip", "h"}, {"y"})
      .node("Neg", {"y"}, {"ln"})
      .output("ln");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({3, 4, 6}, 6)}, {"skip", random_f32({3, 4, 5}, 7)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 1);
  EXPECT_EQ(count_op(g, "Add"), 0);
  const ir::Node* n = find_op(g, "FusedMatMul");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->inputs, (std::vector<std::string>{"x", "w", "bias", "skip"}));
  EXPECT_EQ(n->attr_string("activation", "?"), "none");
}

TEST(FuseMatMulEpilogue, GemmTransBAlphaBiasRelu) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"m", "7"})
      .initializer("w", random_f32({3, 7}, 8))
      .initializer("c", random_f32({1, 3}, 9))  // [1, N]: stored as [N] for the fused op
      .node("Gemm", {"x", "w", "c"}, {"xw"})
      .attr("transB", int64_t{1})
      .attr("alpha", 0.5f)
      .node("Relu", {"xw"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({4, 7}, 10)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  const ir::Node& n = g.nodes[0];
  EXPECT_EQ(n.op_type, "FusedMatMul");
  EXPECT_EQ(n.attr_int("trans_b", 0), 1);
  EXPECT_FLOAT_EQ(n.attr_float("alpha", 0.f), 0.5f);
  EXPECT_EQ(n.attr_string("activation", "?"), "relu");
  ASSERT_EQ(n.inputs.size(), 3u);
  EXPECT_EQ(g.initializers.at(n.inputs[2]).dims(), std::vector<int64_t>{3});
}

TEST(FuseMatMulEpilogue, ResidualWithoutBias) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "3", "4"})
      .input("r", DType::kF32, {"2", "3", "5"})
      .initializer("w", random_f32({4, 5}, 11))
      .node("MatMul", {"x", "w"}, {"xw"})
      .node("Add", {"xw", "r"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 3, 4}, 12)}, {"r", random_f32({2, 3, 5}, 13)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<std::string>{"x", "w", "", "r"}));
}

// GPT-2's shape: Gemm on [B*S, K] → Reshape to [B, S, N] → GELU / residual Add.
TEST(FuseMatMulEpilogue, GemmReshapeTanhGeluLooksThroughReshape) {
  ModelBuilder b(20);
  b.input("x", DType::kF32, {"6", "4"})
      .initializer("w", random_f32({4, 5}, 14))
      .initializer("shape", i64_tensor({3}, {2, 3, 5}))
      .node("Gemm", {"x", "w"}, {"xw"})
      .node("Reshape", {"xw", "shape"}, {"xw3"})
      .node("Gelu", {"xw3"}, {"y"})
      .attr("approximate", std::string("tanh"))
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({6, 4}, 15)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 1);
  EXPECT_EQ(count_op(g, "Gelu"), 0);
  EXPECT_EQ(count_op(g, "Reshape"), 1);
  EXPECT_EQ(find_op(g, "FusedMatMul")->attr_string("activation", "?"), "gelu_tanh");
  EXPECT_EQ(g.values.at("y").shape.to_string(), "[2,3,5]");
}

TEST(FuseMatMulEpilogue, GemmReshapeResidualReshapesTheResidual) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"6", "4"})
      .input("r", DType::kF32, {"2", "3", "5"})
      .initializer("w", random_f32({4, 5}, 16))
      .initializer("shape", i64_tensor({3}, {2, 3, 5}))
      .node("Gemm", {"x", "w"}, {"xw"})
      .node("Reshape", {"xw", "shape"}, {"xw3"})
      .node("Add", {"r", "xw3"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({6, 4}, 17)}, {"r", random_f32({2, 3, 5}, 18)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 1);
  EXPECT_EQ(count_op(g, "Add"), 0);
  EXPECT_EQ(count_op(g, "Reshape"), 2);  // the residual to [6, 5], the result back to [2, 3, 5]
}

TEST(FuseMatMulEpilogue, ReshapeThatChangesTheLastDimIsNotLookedThrough) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"6", "4"})
      .initializer("w", random_f32({4, 6}, 19))
      .initializer("shape", i64_tensor({3}, {6, 2, 3}))
      .initializer("bias", random_f32({3}, 20))
      .node("Gemm", {"x", "w"}, {"xw"})
      .node("Reshape", {"xw", "shape"}, {"xw3"})
      .node("Add", {"xw3", "bias"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({6, 4}, 21)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 0);
  EXPECT_EQ(count_op(g, "Gemm"), 1);
}

TEST(FuseMatMulEpilogue, IntermediateWithAnotherReaderStopsTheChain) {
  ModelBuilder b(20);
  b.input("x", DType::kF32, {"3", "4"})
      .initializer("w", random_f32({4, 5}, 22))
      .initializer("bias", random_f32({5}, 23))
      .node("MatMul", {"x", "w"}, {"xw"})
      .node("Add", {"xw", "bias"}, {"h"})
      .node("Gelu", {"h"}, {"y"})
      .node("Neg", {"h"}, {"side"})  // h read twice: bias fuses, Gelu stays
      .output("y")
      .output("side");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({3, 4}, 24)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 1);
  EXPECT_EQ(count_op(g, "Gelu"), 1);
  EXPECT_EQ(find_op(g, "FusedMatMul")->attr_string("activation", "?"), "none");
}

TEST(FuseMatMulEpilogue, MatMulOutputReadTwiceIsLeftAlone) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3", "4"})
      .initializer("w", random_f32({4, 5}, 25))
      .initializer("bias", random_f32({5}, 26))
      .node("MatMul", {"x", "w"}, {"xw"})
      .node("Add", {"xw", "bias"}, {"y"})
      .output("y")
      .output("xw");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({3, 4}, 27)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 0);
}

TEST(FuseMatMulEpilogue, NonConstantWeightIsLeftAlone) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3", "4"})
      .input("w", DType::kF32, {"4", "5"})
      .initializer("bias", random_f32({5}, 28))
      .node("MatMul", {"x", "w"}, {"xw"})
      .node("Add", {"xw", "bias"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({3, 4}, 29)}, {"w", random_f32({4, 5}, 30)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 0);
}

TEST(FuseMatMulEpilogue, BroadcastingAddsAreNotFused) {
  // [N, 1]-shaped constant and a [1, N] runtime tensor broadcast: neither is a bias nor a residual.
  ModelBuilder b;
  b.input("x", DType::kF32, {"3", "4"})
      .input("r", DType::kF32, {"1", "5"})
      .initializer("w", random_f32({4, 5}, 31))
      .initializer("col", random_f32({3, 1}, 32))
      .node("MatMul", {"x", "w"}, {"xw"})
      .node("Add", {"xw", "col"}, {"h"})
      .output("h");
  ModelBuilder b2;
  b2.input("x", DType::kF32, {"3", "4"})
      .input("r", DType::kF32, {"1", "5"})
      .initializer("w", random_f32({4, 5}, 31))
      .node("MatMul", {"x", "w"}, {"xw"})
      .node("Add", {"xw", "r"}, {"h"})
      .output("h");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({3, 4}, 33)}, {"r", random_f32({1, 5}, 34)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 0);
  ir::Graph g2 = fuse_and_compare(b2, {{"x", random_f32({3, 4}, 33)}, {"r", random_f32({1, 5}, 34)}});
  EXPECT_EQ(count_op(g2, "FusedMatMul"), 0);
}

TEST(FuseMatMulEpilogue, PlainGemmWithBiasStaysGemm) {
  // Nothing follows: the Gemm already runs with its bias in the cuBLASLt epilogue.
  ModelBuilder b;
  b.input("x", DType::kF32, {"3", "4"})
      .initializer("w", random_f32({4, 5}, 35))
      .initializer("c", random_f32({5}, 36))
      .node("Gemm", {"x", "w", "c"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({3, 4}, 37)}});
  EXPECT_EQ(count_op(g, "Gemm"), 1);
  EXPECT_EQ(count_op(g, "FusedMatMul"), 0);
}

TEST(FuseMatMulEpilogue, ResidualAfterActivationIsNotFused) {
  // act(xW + b) + r is not what FusedMatMul computes (act(xW + b + r)): the last Add stays.
  ModelBuilder b;
  b.input("x", DType::kF32, {"3", "4"})
      .input("r", DType::kF32, {"3", "5"})
      .initializer("w", random_f32({4, 5}, 38))
      .initializer("bias", random_f32({5}, 39))
      .node("MatMul", {"x", "w"}, {"xw"})
      .node("Add", {"xw", "bias"}, {"h"})
      .node("Relu", {"h"}, {"a"})
      .node("Add", {"a", "r"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({3, 4}, 40)}, {"r", random_f32({3, 5}, 41)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 1);
  EXPECT_EQ(count_op(g, "Add"), 1);
  EXPECT_EQ(find_op(g, "FusedMatMul")->attr_string("activation", "?"), "relu");
}

TEST(FuseMatMulEpilogue, F16GraphFusesAndStaysClose) {
  ModelBuilder b(20);
  b.input("x", DType::kF32, {"3", "8"})
      .initializer("w", random_f32({8, 4}, 42))
      .initializer("bias", random_f32({4}, 43))
      .node("Cast", {"x"}, {"xh"})
      .attr("to", int64_t{10})
      .node("Cast", {"w"}, {"wh"})
      .attr("to", int64_t{10})
      .node("Cast", {"bias"}, {"bh"})
      .attr("to", int64_t{10})
      .node("MatMul", {"xh", "wh"}, {"xw"})
      .node("Add", {"xw", "bh"}, {"h"})
      .node("Gelu", {"h"}, {"y"})
      .node("Cast", {"y"}, {"out"})
      .attr("to", int64_t{1})
      .output("out");
  ir::Graph g = import_inferred(b.bytes());
  ASSERT_TRUE(passes::fold_constants(g).ok());  // the weight casts become f16 initializers
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  const std::map<std::string, Tensor> in = {{"x", random_f32({3, 8}, 44)}};
  auto want = run_cpu(g, in);
  ASSERT_TRUE(passes::fuse_matmul_epilogue(g).ok());
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  EXPECT_EQ(count_op(g, "FusedMatMul"), 1);
  auto got = run_cpu(g, in);
  // The fused reference rounds to f16 once, the chain after every op.
  expect_close(got.at("out"), want.at("out"), 2e-3, "out");
}

// --- a weight under Transpose(perm [1, 0]): read directly with trans_b
// ---------------------------------------------------------

// GPT-2's tied lm_head: MatMul(x, Transpose(W)) with W also feeding the embedding Gather. The fused node
// reads W itself (no copy), the Transpose is gone and the Gather still reads W.
TEST(FuseMatMulEpilogue, TiedTransposedWeightAloneFuses) {
  ModelBuilder b(20);
  b.input("x", DType::kF32, {"batch", "5", "7"})
      .input("ids", DType::kI64, {"4"})
      .initializer("wte", random_f32({11, 7}, 60))
      .node("Gather", {"wte", "ids"}, {"emb"})
      .node("Transpose", {"wte"}, {"wte_t"}, "lm_head_t")
      .attr("perm", std::vector<int64_t>{1, 0})
      .node("MatMul", {"x", "wte_t"}, {"logits"}, "lm_head")
      .output("logits")
      .output("emb");
  ir::Graph g =
      fuse_and_compare(b, {{"x", random_f32({2, 5, 7}, 61)}, {"ids", i64_tensor({4}, {0, 3, 10, 3})}});
  EXPECT_EQ(count_op(g, "Transpose"), 0);
  EXPECT_EQ(count_op(g, "MatMul"), 0);
  EXPECT_EQ(g.values.count("wte_t"), 0u);
  EXPECT_EQ(g.initializers.size(), 1u) << "the weight must not be copied";
  const ir::Node* n = find_op(g, "FusedMatMul");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->name, "lm_head");
  EXPECT_EQ(n->inputs, (std::vector<std::string>{"x", "wte"}));
  EXPECT_EQ(n->attr_int("trans_b", 0), 1);
  EXPECT_EQ(n->attr_string("activation", "?"), "none");
  EXPECT_EQ(g.values.at("logits").shape.to_string(), "[batch,5,11]");
  ASSERT_NE(find_op(g, "Gather"), nullptr);
  EXPECT_EQ(find_op(g, "Gather")->inputs[0], "wte");
}

TEST(FuseMatMulEpilogue, TransposedWeightWithBiasAndGelu) {
  ModelBuilder b(20);
  b.input("x", DType::kF32, {"3", "7"})
      .initializer("w", random_f32({5, 7}, 62))
      .initializer("bias", random_f32({5}, 63))
      .node("Transpose", {"w"}, {"wt"})  // no perm: reverses the two dims
      .node("MatMul", {"x", "wt"}, {"xw"})
      .node("Add", {"xw", "bias"}, {"h"})
      .node("Gelu", {"h"}, {"y"})
      .attr("approximate", std::string("tanh"))
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({3, 7}, 64)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  const ir::Node& n = g.nodes[0];
  EXPECT_EQ(n.op_type, "FusedMatMul");
  EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "w", "bias"}));
  EXPECT_EQ(n.attr_int("trans_b", 0), 1);
  EXPECT_EQ(n.attr_string("activation", "?"), "gelu_tanh");
}

TEST(FuseMatMulEpilogue, GemmTransBOfATransposedWeightReadsItAsStored) {
  // Gemm(x, Transpose(W), transB=1) is x·W: the two transposes cancel.
  ModelBuilder b;
  b.input("x", DType::kF32, {"4", "6"})
      .initializer("w", random_f32({6, 3}, 65))
      .initializer("c", random_f32({3}, 66))
      .node("Transpose", {"w"}, {"wt"})
      .attr("perm", std::vector<int64_t>{1, 0})
      .node("Gemm", {"x", "wt", "c"}, {"y"})
      .attr("transB", int64_t{1})
      .attr("alpha", 0.25f)
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({4, 6}, 67)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  const ir::Node& n = g.nodes[0];
  EXPECT_EQ(n.op_type, "FusedMatMul");
  EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "w", "c"}));
  EXPECT_EQ(n.attr_int("trans_b", 1), 0);
  EXPECT_FLOAT_EQ(n.attr_float("alpha", 0.f), 0.25f);
}

TEST(FuseMatMulEpilogue, TransposeSharedByTwoMatMulsGoesOnceBothReadTheWeight) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "4"})
      .input("z", DType::kF32, {"3", "4"})
      .initializer("w", random_f32({5, 4}, 68))
      .node("Transpose", {"w"}, {"wt"})
      .attr("perm", std::vector<int64_t>{1, 0})
      .node("MatMul", {"x", "wt"}, {"y1"})
      .node("MatMul", {"z", "wt"}, {"y2"})
      .output("y1")
      .output("y2");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 4}, 69)}, {"z", random_f32({3, 4}, 70)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 2);
  EXPECT_EQ(count_op(g, "Transpose"), 0);  // dead once both read w (eliminate_dead_code)
  for (const auto& n : g.nodes) {
    EXPECT_EQ(n.inputs[1], "w");
    EXPECT_EQ(n.attr_int("trans_b", 0), 1);
  }
}

TEST(FuseMatMulEpilogue, TransposeThatIsAGraphOutputStays) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "4"})
      .initializer("w", random_f32({5, 4}, 71))
      .node("Transpose", {"w"}, {"wt"})
      .attr("perm", std::vector<int64_t>{1, 0})
      .node("MatMul", {"x", "wt"}, {"y"})
      .output("y")
      .output("wt");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 4}, 72)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 1);
  EXPECT_EQ(count_op(g, "Transpose"), 1);
  EXPECT_EQ(find_op(g, "FusedMatMul")->inputs[1], "w");
}

TEST(FuseMatMulEpilogue, TransposesThatAreNotOfAConstantWeightAreLeftAlone) {
  // Identity perm, a runtime B, and a 3-D constant: nothing to read directly, nothing else to fuse.
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "4"})
      .input("v", DType::kF32, {"5", "4"})
      .initializer("w", random_f32({4, 5}, 73))
      .initializer("w3", random_f32({1, 5, 4}, 74))
      .node("Transpose", {"w"}, {"w_same"})
      .attr("perm", std::vector<int64_t>{0, 1})
      .node("MatMul", {"x", "w_same"}, {"y1"})
      .node("Transpose", {"v"}, {"vt"})
      .attr("perm", std::vector<int64_t>{1, 0})
      .node("MatMul", {"x", "vt"}, {"y2"})
      .node("Transpose", {"w3"}, {"w3t"})
      .attr("perm", std::vector<int64_t>{0, 2, 1})
      .node("MatMul", {"x", "w3t"}, {"y3"})
      .output("y1")
      .output("y2")
      .output("y3");
  ir::Graph g = fuse_and_compare(b, {{"x", random_f32({2, 4}, 75)}, {"v", random_f32({5, 4}, 76)}});
  EXPECT_EQ(count_op(g, "FusedMatMul"), 0);
  EXPECT_EQ(count_op(g, "Transpose"), 3);
  EXPECT_EQ(count_op(g, "MatMul"), 3);
}

// --- the transformer skeletons
// ---------------------------------------------------------------------------------

// The default pipeline up to the two passes under test (later passes, such as fuse_pointwise, would take the
// chains first), then dead code and shapes: the unfused reference graph.
ir::Graph unfused_skeleton(const std::string& name) {
  auto g = onnx::import_model_bytes(testing::load_skeleton(name), ".", name);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  std::vector<passes::Pass> before;
  for (const auto& p : passes::default_pipeline()) {
    if (p.name == "fuse_gelu" || p.name == "fuse_matmul_epilogue") break;
    before.push_back(p);
  }
  before.push_back({"eliminate_dead_code", passes::eliminate_dead_code});
  before.push_back({"infer_shapes", passes::infer_shapes});
  Status s = passes::run_pipeline(*g, before);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return std::move(*g);
}

struct SkeletonCase {
  const char* name;
  int fused;
  std::map<std::string, Tensor> inputs;
};

std::map<std::string, Tensor> text_inputs(bool with_mask) {
  Tensor ids(DType::kI64, {2, 9}), mask(DType::kI64, {2, 9});
  for (int64_t i = 0; i < 18; ++i) {
    ids.data<int64_t>()[i] = (i * 37) % 30000;
    mask.data<int64_t>()[i] = i % 9 < 7 ? 1 : 0;
  }
  std::map<std::string, Tensor> in = {{"input_ids", ids}};
  if (with_mask) in["attention_mask"] = mask;
  return in;
}

void check_skeleton(const SkeletonCase& c) {
  ir::Graph plain = unfused_skeleton(c.name);
  ir::Graph fused = plain;
  ASSERT_TRUE(passes::fuse_gelu(fused).ok());
  ASSERT_TRUE(passes::fuse_matmul_epilogue(fused).ok());
  ASSERT_TRUE(passes::eliminate_dead_code(fused).ok());
  Status s = passes::infer_shapes(fused);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(count_op(fused, "FusedMatMul"), c.fused) << c.name;

  // The engine builder runs the same passes; its engine also round-trips FusedMatMul through the file format.
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto engine = Builder::build_from_bytes(testing::load_skeleton(c.name), cfg);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  auto got = engine->create_context()->infer(c.inputs);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  auto want = run_cpu(plain, c.inputs);
  ASSERT_FALSE(want.empty());
  for (const auto& [name, t] : want) {
    ASSERT_TRUE(got->count(name)) << name;
    expect_close(got->at(name), t, 1e-5, std::string(c.name) + ":" + name);
  }
}

TEST(FuseMatMulEpilogueSkeleton, BertBase) {
  // 12 layers x (Q, K, V: bias; output projection: bias + residual; FFN up: bias + GELU; down: bias +
  // residual).
  check_skeleton({"bert_base", 72, text_inputs(true)});
}

TEST(FuseMatMulEpilogueSkeleton, Gpt2) {
  // 12 layers x (attention projection: residual through the Reshape; FFN up: tanh GELU; down: residual), and
  // the tied lm_head reading wte directly. The fused qkv Gemm feeds a Split (nothing to fuse); the exporter
  // dropped the zero biases.
  check_skeleton({"gpt2", 37, text_inputs(false)});
}

// The whole default pipeline (what the builder runs) on GPT-2: the lm_head Transpose of the tied wte is gone,
// the logits come from one FusedMatMul reading wte with trans_b, and the embedding Gather reads the same wte.
TEST(FuseMatMulEpilogueSkeleton, Gpt2LmHeadReadsTheTiedWeightDirectly) {
  auto g = onnx::import_model_bytes(testing::load_skeleton("gpt2"), ".", "gpt2");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  const std::string wte = "m.lm_head.weight";
  ASSERT_TRUE(g->initializers.count(wte));
  const std::vector<int64_t> wte_dims = g->initializers.at(wte).dims();
  Status s = passes::run_pipeline(*g, passes::default_pipeline());
  ASSERT_TRUE(s.ok()) << s.to_string();
  int readers = 0;
  for (const auto& n : g->nodes) {
    if (n.op_type == "Transpose")
      EXPECT_NE(n.attr_ints("perm"), (std::vector<int64_t>{1, 0})) << n.name << " still transposes a weight";
    for (const auto& in : n.inputs) readers += in == wte;
  }
  EXPECT_EQ(readers, 2);  // the Gather and the lm_head
  const ir::Node* head = nullptr;
  for (const auto& n : g->nodes)
    if (n.outputs.size() == 1 && n.outputs[0] == g->outputs[0]) head = &n;
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->op_type, "FusedMatMul");
  ASSERT_GE(head->inputs.size(), 2u);
  EXPECT_EQ(head->inputs[1], wte);
  EXPECT_EQ(head->attr_int("trans_b", 0), 1);
  EXPECT_EQ(g->initializers.at(wte).dims(), wte_dims);  // the stored [vocab, 768], not a transposed copy
  for (const auto& [name, t] : g->initializers)
    if (name != wte)
      EXPECT_NE(t.numel(), g->initializers.at(wte).numel()) << name << " looks like a copy of wte";
  const ir::ValueInfo* logits = g->value(g->outputs[0]);
  ASSERT_NE(logits, nullptr);
  ASSERT_TRUE(logits->shape.has_rank());
  EXPECT_EQ(logits->shape[logits->shape.rank() - 1].value(), wte_dims[0]);
}

TEST(FuseMatMulEpilogueSkeleton, VitB16) {
  // 12 layers x (Q, K and V: bias each, fold_attention_layout having cut the packed in-projection in three;
  // out-projection: bias + residual, its head Transposes folded away; MLP up: bias + GELU; down: bias +
  // residual).
  Tensor image = random_f32({1, 3, 224, 224}, 7);
  check_skeleton({"vit_b_16", 72, {{"image", image}}});
}

}  // namespace
}  // namespace kiln
