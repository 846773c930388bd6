// fold_static_if: an If on a constant or shape-derived condition becomes its taken branch; a data-dependent one
// stays. Each folded graph is also run on the CPU backend against the same model with the If left in.
#include <gtest/gtest.h>

#include <kiln_onnx/onnx.pb.h>

#include <set>

#include "kiln/kiln.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::count_op;
using testing::f32_tensor;
using testing::ModelBuilder;

ir::Graph import(const ModelBuilder& b) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "test");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return std::move(*g);
}

void set_branches(ModelBuilder& b, ModelBuilder& then_b, ModelBuilder& else_b) {
  for (auto [key, body] : {std::pair{"then_branch", &then_b}, std::pair{"else_branch", &else_b}}) {
    auto* g = b.proto().mutable_graph();
    auto* a = g->mutable_node(g->node_size() - 1)->add_attribute();
    a->set_name(key);
    a->set_type(kiln_onnx::AttributeProto::GRAPH);
    *a->mutable_g() = body->proto().graph();
  }
}

// y = If(cond) then Neg(x) + 1 else x * 2, with the condition given as an initializer.
ModelBuilder constant_condition(bool cond) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "3"});
  Tensor c(DType::kBool, {});
  c.data<bool>()[0] = cond;
  b.initializer("cond", c);
  b.initializer("one", f32_tensor({}, {1.f}));
  b.initializer("two", f32_tensor({}, {2.f}));
  ModelBuilder then_b, else_b;
  then_b.node("Neg", {"x"}, {"n"}, "neg").node("Add", {"n", "one"}, {"t"}, "add_one").output("t", DType::kF32, {"2", "3"});
  else_b.node("Mul", {"x", "two"}, {"e"}, "double").output("e", DType::kF32, {"2", "3"});
  b.node("If", {"cond"}, {"y"}, "branch");
  set_branches(b, then_b, else_b);
  b.output("y", DType::kF32, {"2", "3"});
  return b;
}

std::vector<float> run_cpu(const ModelBuilder& b, const Tensor& x) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  if (!e.ok()) return {};
  auto ctx = e->create_context();
  EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
  auto out = ctx->infer({{"x", x}});
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  if (!out.ok()) return {};
  const Tensor& y = out->begin()->second;
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

TEST(FoldStaticIf, ConstantConditionInlinesTheTakenBranchOnly) {
  for (bool cond : {true, false}) {
    ir::Graph g = import(constant_condition(cond));
    ASSERT_TRUE(passes::fold_static_if(g).ok());
    EXPECT_EQ(count_op(g, "If"), 0);
    EXPECT_EQ(count_op(g, "Neg"), cond ? 1 : 0);
    EXPECT_EQ(count_op(g, "Mul"), cond ? 0 : 1);
    // What became of the If is recorded for kiln inspect: the branch taken and the condition.
    EXPECT_EQ(g.metadata.at(std::string(passes::kFoldedIfKey) + "branch"),
              std::string(cond ? "then_branch" : "else_branch") + "\tcond");
    ASSERT_TRUE(passes::infer_shapes(g).ok());
    EXPECT_EQ(g.values.at("y").shape.to_string(), "[2,3]");
    // The engine built with the default passes computes the taken branch.
    Tensor x = f32_tensor({2, 3}, {1, -2, 3, -4, 5, 0.5f});
    auto y = run_cpu(constant_condition(cond), x);
    ASSERT_EQ(y.size(), 6u);
    for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(y[i], cond ? -x.data<float>()[i] + 1 : 2 * x.data<float>()[i]);
  }
}

// The condition is `x.shape[0] > 2`: constant once x's dims are static, unknown while the batch is symbolic.
ModelBuilder shape_condition(const std::string& batch) {
  ModelBuilder b;
  b.input("x", DType::kF32, {batch, "3"});
  b.initializer("zero", testing::i64_tensor({1}, {0}));
  b.initializer("limit", testing::i64_tensor({}, {2}));
  b.node("Shape", {"x"}, {"shape"}).node("Gather", {"shape", "zero"}, {"dim0v"}).attr("axis", int64_t{0});
  b.node("Squeeze", {"dim0v"}, {"dim0"}).node("Greater", {"dim0", "limit"}, {"cond"});
  ModelBuilder then_b, else_b;
  then_b.node("Relu", {"x"}, {"t"}, "relu").output("t", DType::kF32, {batch, "3"});
  else_b.node("Sigmoid", {"x"}, {"e"}, "sigmoid").output("e", DType::kF32, {batch, "3"});
  b.node("If", {"cond"}, {"y"}, "by_batch");
  set_branches(b, then_b, else_b);
  b.output("y", DType::kF32, {batch, "3"});
  return b;
}

TEST(FoldStaticIf, ConditionFromStaticShapesFoldsInTheShapeLoop) {
  ir::Graph g = import(shape_condition("4"));
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  ASSERT_TRUE(passes::fold_shape_subgraphs(g).ok());
  EXPECT_EQ(count_op(g, "If"), 0);
  EXPECT_EQ(count_op(g, "Relu"), 1);
  EXPECT_EQ(count_op(g, "Sigmoid"), 0);
  auto y = run_cpu(shape_condition("4"), f32_tensor({4, 3}, {-1, 2, -3, 4, -5, 6, -7, 8, -9, 10, -11, 12}));
  ASSERT_EQ(y.size(), 12u);
  EXPECT_FLOAT_EQ(y[0], 0.f);
  EXPECT_FLOAT_EQ(y[1], 2.f);
  // A symbolic batch: the condition is known only at run time, and the If stays.
  ir::Graph dynamic = import(shape_condition("batch"));
  ASSERT_TRUE(passes::infer_shapes(dynamic).ok());
  ASSERT_TRUE(passes::fold_shape_subgraphs(dynamic).ok());
  EXPECT_EQ(count_op(dynamic, "If"), 1);
}

TEST(FoldStaticIf, DataDependentConditionStays) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "3"}).input("flag", DType::kBool, {});
  ModelBuilder then_b, else_b;
  then_b.node("Relu", {"x"}, {"t"}).output("t", DType::kF32, {"2", "3"});
  else_b.node("Neg", {"x"}, {"e"}).output("e", DType::kF32, {"2", "3"});
  b.node("If", {"flag"}, {"y"}, "branch");
  set_branches(b, then_b, else_b);
  b.output("y", DType::kF32, {"2", "3"});
  ir::Graph g = import(b);
  ASSERT_TRUE(passes::fold_static_if(g).ok());
  EXPECT_EQ(count_op(g, "If"), 1);
  EXPECT_EQ(g.metadata.count(std::string(passes::kFoldedIfKey) + "branch"), 0u);
}

// The taken branch holds a nested If (data-dependent) whose body reads the branch's own 'n'. The importer refuses
// a model whose branch reuses an outer name, but an earlier rewrite may bring one in: here the outer Relu is
// renamed to write 'n' too. The inlined 'n' gets a new name, and the nested body reads the renamed value.
TEST(FoldStaticIf, ClashingNamesAreRenamedIntoNestedBodies) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "3"}).input("flag", DType::kBool, {});
  Tensor c(DType::kBool, {});
  c.data<bool>()[0] = true;
  b.initializer("cond", c);
  b.node("Relu", {"x"}, {"outer"}, "outer_relu");
  ModelBuilder inner_then, inner_else;
  inner_then.node("Identity", {"n"}, {"it"}).output("it", DType::kF32, {"2", "3"});
  inner_else.node("Neg", {"n"}, {"ie"}).output("ie", DType::kF32, {"2", "3"});
  ModelBuilder then_b, else_b;
  then_b.node("Neg", {"x"}, {"n"}, "inner_neg");  // the branch's own 'n' = -x
  then_b.node("If", {"flag"}, {"t"}, "nested");
  set_branches(then_b, inner_then, inner_else);
  then_b.output("t", DType::kF32, {"2", "3"});
  else_b.node("Identity", {"x"}, {"e"}).output("e", DType::kF32, {"2", "3"});
  b.node("If", {"cond"}, {"r"}, "outer_if");
  set_branches(b, then_b, else_b);
  b.node("Add", {"r", "outer"}, {"y"}, "sum");  // -x (or x) + relu(x)
  b.output("y", DType::kF32, {"2", "3"});

  ir::Graph g = import(b);
  for (auto& n : g.nodes) {  // the clash: the outer graph now has an 'n' of its own
    for (auto& o : n.outputs) o = o == "outer" ? "n" : o;
    for (auto& i : n.inputs) i = i == "outer" ? "n" : i;
  }
  g.values["n"] = g.values["outer"];
  g.values.erase("outer");
  ASSERT_TRUE(passes::fold_static_if(g).ok());
  EXPECT_EQ(count_op(g, "If"), 1);  // the nested, data-dependent one
  const ir::Node* neg = nullptr;
  const ir::Node* nested = nullptr;
  const ir::Node* sum = nullptr;
  for (const auto& n : g.nodes) {
    if (n.name == "inner_neg") neg = &n;
    if (n.op_type == "If") nested = &n;
    if (n.name == "sum") sum = &n;
  }
  ASSERT_TRUE(neg && nested && sum);
  EXPECT_EQ(neg->outputs[0], "outer_if/n");
  EXPECT_EQ(nested->attr("then_branch")->g->nodes[0].inputs[0], "outer_if/n");
  EXPECT_EQ(nested->attr("else_branch")->g->nodes[0].inputs[0], "outer_if/n");
  EXPECT_EQ(sum->inputs[1], "n");  // the outer value keeps its name
  ASSERT_TRUE(ir::topological_sort(g).ok());
  ASSERT_TRUE(passes::infer_shapes(g).ok());

  // Run it: the folded engine and the values it should give, for both nested conditions.
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = e->create_context();
  ASSERT_TRUE(ctx.ok());
  Tensor x = f32_tensor({2, 3}, {1, -2, 3, -4, 5, -6});
  for (bool flag : {true, false}) {
    Tensor f(DType::kBool, {});
    f.data<bool>()[0] = flag;
    auto out = ctx->infer({{"x", x}, {"flag", f}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    const float* y = out->at("y").data<float>();
    for (int i = 0; i < 6; ++i) {
      const float v = x.data<float>()[i], relu = v > 0 ? v : 0;
      EXPECT_FLOAT_EQ(y[i], (flag ? -v : v) + relu) << "flag " << flag << " element " << i;
    }
  }
}

}  // namespace
}  // namespace kiln
