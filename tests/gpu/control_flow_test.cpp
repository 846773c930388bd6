// If, Loop and Scan on the CUDA backend, each checked against the CPU backend: bodies read values of the enclosing
// graphs by name (a data-dependent If's branches read the graph input and a GPU-computed value whose last
// top-level reader ran before the If; a Loop body reads an outer input), a runtime trip count, a condition the
// body computes on the GPU, an If nested in a Loop, loop-carried and scanned outputs, Scan over inner and outer
// axes in both directions. Bodies run on the GPU (no CPU fallback), and control flow decided by shapes alone
// stays one CUDA graph.
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

void expect_same(const std::map<std::string, Tensor>& inputs, Engine& cpu, Engine& gpu, RunInfo* info = nullptr) {
  auto want = cpu.create_context()->infer(inputs);
  auto gpu_ctx = gpu.create_context();
  auto got = gpu_ctx->infer(inputs);
  ASSERT_TRUE(want.ok()) << want.status().to_string();
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  if (info) *info = gpu_ctx->last_run_info();
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
  RunInfo info;
  expect_same({{"x", pos}}, cpu, gpu, &info);  // then: reads x and y
  // The branch ran on the GPU: the condition is the one value read back, and nothing fell back to the CPU.
  EXPECT_EQ(info.fallback_nodes, 0);
  EXPECT_EQ(info.downloads, 1);
  EXPECT_GE(info.gpu_nodes, 6);  // Mul, Add, ReduceSum, Greater, then Relu and Sub
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

// Loop(M, "", x) -> (final, trace). Each iteration: acc2 = acc * two; s = sum(acc2); the body's condition is
// s < limit (computed on the GPU, read back per iteration); r = If(s > 0) then acc2 + x else acc2 - x (a nested
// body reading the outermost graph's input); acc = r, and r * i is scanned.
ModelBuilder nested_loop_model() {
  ModelBuilder b(17);
  b.input("M", DType::kI64, {}).input("x", DType::kF32, {"3"}).input("limit", DType::kF32, {});
  b.initializer("two", testing::f32_tensor({1}, {2.f}));
  b.initializer("zero", testing::f32_tensor({}, {0.f}));
  ModelBuilder body(17);
  body.input("i", DType::kI64, {}).input("cond_in", DType::kBool, {}).input("acc", DType::kF32, {"3"});
  body.node("Mul", {"acc", "two"}, {"acc2"}, "body_double");
  body.node("ReduceSum", {"acc2"}, {"s"}, "body_sum").attr("keepdims", int64_t{0});
  body.node("Less", {"s", "limit"}, {"keep"}, "body_keep");
  body.node("Greater", {"s", "zero"}, {"positive"}, "body_positive");
  ModelBuilder then_b(17), else_b(17);
  then_b.node("Add", {"acc2", "x"}, {"t"}, "inner_add").output("t", DType::kF32, {"3"});
  else_b.node("Sub", {"acc2", "x"}, {"e"}, "inner_sub").output("e", DType::kF32, {"3"});
  body.node("If", {"positive"}, {"r"}, "inner_if");
  set_graph_attr(body, "then_branch", then_b);
  set_graph_attr(body, "else_branch", else_b);
  body.node("Cast", {"i"}, {"fi"}, "body_cast").attr("to", int64_t{1});
  body.node("Mul", {"r", "fi"}, {"scanned"}, "body_scale");
  body.output("keep", DType::kBool, {}).output("r", DType::kF32, {"3"}).output("scanned", DType::kF32, {"3"});
  b.node("Loop", {"M", "", "x"}, {"final", "trace"}, "outer_loop");
  set_graph_attr(b, "body", body);
  b.output("final", DType::kF32, {"3"}).output("trace", DType::kF32, {"N", "3"});
  return b;
}

TEST(GpuControlFlow, LoopWithGpuConditionNestedIfAndScannedOutput) {
  KILN_REQUIRE_GPU();
  Engine cpu = build(nested_loop_model(), BackendKind::kCpu), gpu = build(nested_loop_model(), BackendKind::kCuda);
  // Trip counts 0, 1, 5 and 40; limits that stop the loop early (after a few doublings) or never.
  for (int64_t m : {0, 1, 5, 40})
    for (float limit : {30.f, 1e6f}) {
      SCOPED_TRACE(::testing::Message() << "M " << m << " limit " << limit);
      // A sum that grows past the limit within a few iterations, one stuck below zero (the else branch each
      // time), one that changes sign.
      for (const auto& x : {testing::f32_tensor({3}, {1.f, 2.f, 0.5f}), testing::f32_tensor({3}, {-1.f, -2.f, 0.25f}),
                            testing::f32_tensor({3}, {3.f, -1.f, -1.5f})}) {
        RunInfo info;
        expect_same({{"M", Tensor::scalar_i64(m)}, {"x", x}, {"limit", Tensor::scalar_f32(limit)}}, cpu, gpu, &info);
        EXPECT_EQ(info.fallback_nodes, 0);
      }
    }
}

// Scan (opset 11) over xs [2, L] along axis 1 and zs [L, 2] along axis 0, backwards over zs; the state adds
// x_t * z_t, and the scanned output (state * scale, scale from the outer graph) is stacked along axis 1 in
// reverse.
ModelBuilder scan_model() {
  ModelBuilder b(11);
  b.input("init", DType::kF32, {"2"}).input("xs", DType::kF32, {"2", "L"}).input("zs", DType::kF32, {"L", "2"});
  b.initializer("scale", testing::f32_tensor({2}, {0.5f, -3.f}));
  ModelBuilder body(11);
  body.input("state", DType::kF32, {"2"}).input("x_t", DType::kF32, {"2"}).input("z_t", DType::kF32, {"2"});
  body.node("Mul", {"x_t", "z_t"}, {"xz"}, "body_mul").node("Add", {"state", "xz"}, {"next"}, "body_add");
  body.node("Mul", {"next", "scale"}, {"y"}, "body_scale");
  body.output("next", DType::kF32, {"2"}).output("y", DType::kF32, {"2"});
  b.node("Scan", {"init", "xs", "zs"}, {"final", "ys"}, "scan")
      .attr("num_scan_inputs", int64_t{2})
      .attr("scan_input_axes", std::vector<int64_t>{1, 0})
      .attr("scan_input_directions", std::vector<int64_t>{0, 1})
      .attr("scan_output_axes", std::vector<int64_t>{-1})
      .attr("scan_output_directions", std::vector<int64_t>{1});
  set_graph_attr(b, "body", body);
  b.output("final", DType::kF32, {"2"}).output("ys", DType::kF32, {"2", "L"});
  return b;
}

TEST(GpuControlFlow, ScanOverInnerAndOuterAxesBothDirections) {
  KILN_REQUIRE_GPU();
  Engine cpu = build(scan_model(), BackendKind::kCpu), gpu = build(scan_model(), BackendKind::kCuda);
  for (int64_t len : {1, 3, 7, 127}) {
    SCOPED_TRACE(len);
    RunInfo info;
    expect_same({{"init", testing::f32_tensor({2}, {1.f, -1.f})},
                 {"xs", testing::random_f32({2, len}, 11 + len)},
                 {"zs", testing::random_f32({len, 2}, 17 + len)}},
                cpu, gpu, &info);
    EXPECT_EQ(info.fallback_nodes, 0);
    EXPECT_EQ(info.downloads, 0);  // slices and stacking are device copies
  }
}

// Control flow decided by shapes alone: If(batch > 2) picks Relu or Neg, and a Loop runs `batch` times adding
// delta and scanning the running sum. With a dynamic batch nothing folds at build, yet nothing is read back:
// each batch size is one CUDA graph after its first run.
ModelBuilder shape_decided_model() {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", "4"}).input("delta", DType::kF32, {"4"});
  b.initializer("zero_idx", testing::i64_tensor({}, {0}));
  b.initializer("two", testing::i64_tensor({}, {2}));
  b.node("Shape", {"x"}, {"shape"}, "shape").node("Gather", {"shape", "zero_idx"}, {"batch_n"}, "batch_n");
  b.node("Greater", {"batch_n", "two"}, {"big"}, "is_big");
  ModelBuilder then_b(17), else_b(17);
  then_b.node("Relu", {"x"}, {"t"}, "then_relu").output("t", DType::kF32, {"batch", "4"});
  else_b.node("Neg", {"x"}, {"e"}, "else_neg").output("e", DType::kF32, {"batch", "4"});
  b.node("If", {"big"}, {"picked"}, "pick");
  set_graph_attr(b, "then_branch", then_b);
  set_graph_attr(b, "else_branch", else_b);
  ModelBuilder body(17);
  body.input("i", DType::kI64, {}).input("cond_in", DType::kBool, {}).input("acc", DType::kF32, {"4"});
  body.node("Identity", {"cond_in"}, {"cond_out"}, "body_cond").node("Add", {"acc", "delta"}, {"acc_out"}, "body_add");
  body.node("Identity", {"acc_out"}, {"seen"}, "body_seen");
  body.output("cond_out", DType::kBool, {}).output("acc_out", DType::kF32, {"4"}).output("seen", DType::kF32, {"4"});
  b.node("Loop", {"batch_n", "", "delta"}, {"sum", "sums"}, "repeat");
  set_graph_attr(b, "body", body);
  b.output("picked", DType::kF32, {"batch", "4"}).output("sum", DType::kF32, {"4"}).output("sums", DType::kF32, {"batch", "4"});
  return b;
}

TEST(GpuControlFlow, ShapeDecidedIfAndLoopStayOneCudaGraph) {
  KILN_REQUIRE_GPU();
  Engine cpu = build(shape_decided_model(), BackendKind::kCpu), gpu = build(shape_decided_model(), BackendKind::kCuda);
  auto ctx = gpu.create_context();
  auto cpu_ctx = cpu.create_context();
  for (int64_t batch : {1, 3, 7}) {
    SCOPED_TRACE(batch);
    const std::map<std::string, Tensor> inputs = {{"x", testing::random_f32({batch, 4}, 40 + batch)},
                                                  {"delta", testing::f32_tensor({4}, {0.5f, -1.f, 2.f, 0.f})}};
    auto want = cpu_ctx->infer(inputs);
    ASSERT_TRUE(want.ok()) << want.status().to_string();
    for (int run = 0; run < 3; ++run) {
      auto got = ctx->infer(inputs);
      ASSERT_TRUE(got.ok()) << got.status().to_string();
      for (const auto& [name, w] : *want) {
        ASSERT_EQ(got->at(name).dims(), w.dims()) << name;
        for (int64_t i = 0; i < w.numel(); ++i)
          EXPECT_NEAR(got->at(name).data<float>()[i], w.data<float>()[i], 1e-5f) << name << i;
      }
      const RunInfo info = ctx->last_run_info();
      EXPECT_EQ(info.downloads, 0) << "run " << run;
      EXPECT_EQ(info.fallback_nodes, 0) << "run " << run;
      if (run > 0) {
        EXPECT_TRUE(info.cuda_graph) << "run " << run << ": " << info.not_captured;
      }
    }
  }
}

}  // namespace
}  // namespace kiln
