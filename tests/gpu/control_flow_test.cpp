// If and Loop on the CUDA backend: bodies read values of the enclosing graph by name (a data-dependent If's
// branches read the graph input and a GPU-computed value whose last top-level reader ran before the If; a Loop
// body reads an outer input), and a runtime trip count. Each is checked against the CPU backend.
#include <kiln_onnx/onnx.pb.h>

#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

void set_graph_attr(ModelBuilder& b, const std::string& key, ModelBuilder& body) {
  auto* g = b.proto().mutable_graph();
  auto* a = g->mutable_node(g->node_size() - 1)->add_attribute();
  a->set_name(key);
  a->set_type(kiln_onnx::AttributeProto::GRAPH);
  *a->mutable_g() = body.proto().graph();
}

// y = 2x; z = y + 1; r = If(sum(x) > 0) then relu(y) - x else -z; outputs r and z.
ModelBuilder if_model() {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", "4"});
  b.initializer("two", testing::f32_tensor({1}, {2.f}));
  b.initializer("one", testing::f32_tensor({1}, {1.f}));
  b.initializer("zero", testing::f32_tensor({}, {0.f}));
  b.node("Mul", {"x", "two"}, {"y"}, "double");
  b.node("Add", {"y", "one"}, {"z"}, "plus_one");
  b.node("ReduceSum", {"x"}, {"s"}, "sum").attr("keepdims", int64_t{0});
  b.node("Greater", {"s", "zero"}, {"cond"}, "positive");
  ModelBuilder then_b(17), else_b(17);
  then_b.node("Relu", {"y"}, {"ry"}, "then_relu").node("Sub", {"ry", "x"}, {"t"}, "then_sub");
  then_b.output("t", DType::kF32, {"batch", "4"});
  else_b.node("Neg", {"z"}, {"e"}, "else_neg").output("e", DType::kF32, {"batch", "4"});
  b.node("If", {"cond"}, {"r"}, "branch");
  set_graph_attr(b, "then_branch", then_b);
  set_graph_attr(b, "else_branch", else_b);
  b.output("r", DType::kF32, {"batch", "4"}).output("z", DType::kF32, {"batch", "4"});
  return b;
}

// acc = start; repeat M times: acc = acc + delta (delta read from the outer graph).
ModelBuilder loop_model() {
  ModelBuilder b(17);
  b.input("M", DType::kI64, {}).input("start", DType::kF32, {"3"}).input("delta", DType::kF32, {"3"});
  ModelBuilder body(17);
  body.input("i", DType::kI64, {}).input("cond_in", DType::kBool, {}).input("acc", DType::kF32, {"3"});
  body.node("Identity", {"cond_in"}, {"cond_out"}).node("Add", {"acc", "delta"}, {"acc_out"}, "body_add");
  body.output("cond_out", DType::kBool, {}).output("acc_out", DType::kF32, {"3"});
  b.node("Loop", {"M", "", "start"}, {"final"}, "repeat");
  set_graph_attr(b, "body", body);
  b.output("final", DType::kF32, {"3"});
  return b;
}

Engine build(const ModelBuilder& b, BackendKind backend) {
  BuildConfig cfg;
  cfg.backend = backend;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? *e : Engine();
}

void expect_same(const std::map<std::string, Tensor>& inputs, Engine& cpu, Engine& gpu) {
  auto want = cpu.create_context()->infer(inputs);
  auto got = gpu.create_context()->infer(inputs);
  ASSERT_TRUE(want.ok()) << want.status().to_string();
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  for (const auto& [name, w] : *want) {
    const Tensor& g = got->at(name);
    ASSERT_EQ(g.dims(), w.dims()) << name;
    for (int64_t i = 0; i < w.numel(); ++i) EXPECT_NEAR(g.data<float>()[i], w.data<float>()[i], 1e-5f) << name << i;
  }
}

TEST(GpuControlFlow, DataDependentIfBranchesReadOuterValues) {
  KILN_REQUIRE_GPU();
  Engine cpu = build(if_model(), BackendKind::kCpu), gpu = build(if_model(), BackendKind::kCuda);
  Tensor pos = testing::random_f32({3, 4}, 5), neg = testing::random_f32({3, 4}, 6);
  for (int64_t i = 0; i < 12; ++i) {
    pos.data<float>()[i] = std::abs(pos.data<float>()[i]) + 0.1f;
    neg.data<float>()[i] = -std::abs(neg.data<float>()[i]) - 0.1f;
  }
  expect_same({{"x", pos}}, cpu, gpu);  // then: reads x and y
  expect_same({{"x", neg}}, cpu, gpu);  // else: reads z
  // One context, both branches in turn, and a batch of 1.
  auto ctx = gpu.create_context();
  for (const Tensor* x : {&pos, &neg, &pos}) ASSERT_TRUE(ctx->infer({{"x", *x}}).ok());
  expect_same({{"x", testing::random_f32({1, 4}, 9)}}, cpu, gpu);
}

TEST(GpuControlFlow, LoopWithRuntimeTripCountReadsOuterInput) {
  KILN_REQUIRE_GPU();
  Engine cpu = build(loop_model(), BackendKind::kCpu), gpu = build(loop_model(), BackendKind::kCuda);
  for (int64_t m : {0, 1, 7}) {
    SCOPED_TRACE(m);
    expect_same({{"M", Tensor::scalar_i64(m)},
                 {"start", testing::f32_tensor({3}, {1.f, -2.f, 0.5f})},
                 {"delta", testing::f32_tensor({3}, {0.25f, 1.f, -3.f})}},
                cpu, gpu);
  }
}

}  // namespace
}  // namespace kiln
