// Which nodes a CUDA engine leaves to the CPU reference, and why: kiln build reports them (refuses them with
// --no-cpu-fallback) and kiln inspect lists them. The prediction needs only the CUDA kernel table, not a GPU.
#include <gtest/gtest.h>

#include <map>

#ifdef KILN_WITH_CUDA
#include <kiln_onnx/onnx.pb.h>

#include "backends/cuda/kernel_coverage.h"
#include "backends/cuda/placement.h"
#include "onnx/importer.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

ir::Graph import(const ModelBuilder& mb) {
  auto g = onnx::import_model_bytes(mb.bytes(), ".", "model");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? std::move(*g) : ir::Graph();
}

OptimizationProfile batch_profile(const std::string& input, std::vector<int64_t> opt) {
  OptimizationProfile p;
  p.inputs[input] = {opt, opt, opt};
  return p;
}

TEST(CpuFallback, NamesNodesWithoutACudaKernelAndWhy) {
  ModelBuilder mb;
  mb.input("x", DType::kF32, {"batch", "4", "4"})
      .node("Relu", {"x"}, {"r"}, "relu")
      .node("Det", {"r"}, {"d"}, "determinant")
      .node("Neg", {"d"}, {"y"}, "negate")
      .output("y", DType::kF32, {"batch"});
  ir::Graph g = import(mb);
  auto f = cuda::predict_cpu_fallbacks(g, {batch_profile("x", {3, 4, 4})});
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].name, "determinant");
  EXPECT_EQ((*f)[0].op, "Det");
  EXPECT_NE((*f)[0].why.find("no kernel for Det"), std::string::npos) << (*f)[0].why;
}

TEST(CpuFallback, DtypeTheKernelDoesNotTakeIsTheReason) {
  ModelBuilder mb;
  mb.input("x", DType::kF64, {"2", "3"}).node("Exp", {"x"}, {"y"}, "exp64").output("y", DType::kF64, {"2", "3"});
  ir::Graph g = import(mb);
  auto f = cuda::predict_cpu_fallbacks(g, {});  // static dims: no profile needed
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].name, "exp64");
  EXPECT_NE((*f)[0].why.find("does not take input dtypes (f64)"), std::string::npos) << (*f)[0].why;
}

TEST(CpuFallback, CleanGraphHasNoneAndEachNodeIsListedOnceAcrossProfiles) {
  ModelBuilder clean;
  clean.input("x", DType::kF32, {"batch", "8"}).node("Relu", {"x"}, {"y"}, "relu").output("y", DType::kF32, {"batch", "8"});
  auto none = cuda::predict_cpu_fallbacks(import(clean), {batch_profile("x", {1, 8}), batch_profile("x", {64, 8})});
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_TRUE(none->empty());

  ModelBuilder det;
  det.input("x", DType::kF32, {"batch", "2", "2"}).node("Det", {"x"}, {"y"}, "det").output("y", DType::kF32, {"batch"});
  // A dynamic dim with no profile counts as 1; two profiles still name the node once.
  for (const auto& profiles : {std::vector<OptimizationProfile>{},
                               std::vector<OptimizationProfile>{batch_profile("x", {1, 2, 2}),
                                                                batch_profile("x", {16, 2, 2})}}) {
    auto f = cuda::predict_cpu_fallbacks(import(det), profiles);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    EXPECT_EQ(f->size(), 1u);
  }
}

TEST(CpuFallback, UnknownRankInputWithoutProfileIsAnErrorNamingIt) {
  ModelBuilder mb;
  mb.input("x", DType::kF32, {"4"}).node("Relu", {"x"}, {"y"}).output("y");
  ir::Graph g = import(mb);
  g.values["x"].shape = Shape();  // rank unknown, as some exporters leave it
  auto f = cuda::predict_cpu_fallbacks(g, {});
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("'x' has unknown rank"), std::string::npos) << f.status().to_string();
}

// A data-dependent If reads its condition back, then its branch's nodes are placed like any others: on the GPU
// where they have kernels, reading the enclosing values they name in place (no read-back for those).
TEST(CpuFallback, IfReadsOnlyItsConditionBackAndPlacesItsBranchNodes) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "4"});
  b.node("Relu", {"x"}, {"y"}, "relu").node("ReduceSum", {"x"}, {"s"}, "sum").attr("keepdims", int64_t{0});
  b.initializer("zero", testing::f32_tensor({}, {0.f}));
  b.node("Greater", {"s", "zero"}, {"cond"}, "positive");
  ModelBuilder then_b, else_b;
  then_b.node("Neg", {"y"}, {"t"}, "neg").output("t", DType::kF32, {"2", "4"});
  // Dropout has no CUDA kernel: the one body node that falls back, named by its path.
  else_b.node("Dropout", {"x"}, {"d"}, "drop").node("Add", {"x", "d"}, {"e"}, "add").output("e", DType::kF32, {"2", "4"});
  b.node("If", {"cond"}, {"r"}, "branch");
  for (auto [key, body] : {std::pair{"then_branch", &then_b}, std::pair{"else_branch", &else_b}}) {
    auto* g = b.proto().mutable_graph();
    auto* a = g->mutable_node(g->node_size() - 1)->add_attribute();
    a->set_name(key);
    a->set_type(kiln_onnx::AttributeProto::GRAPH);
    *a->mutable_g() = body->proto().graph();
  }
  b.output("r", DType::kF32, {"2", "4"});
  ir::Graph g = import(b);
  auto placed = cuda::predict_placement(g, {{"x", {2, 4}}});
  ASSERT_TRUE(placed.ok()) << placed.status().to_string();
  std::map<std::string, const cuda::PlacedNode*> by_name;
  for (const auto& p : *placed) by_name[p.name] = &p;
  ASSERT_TRUE(by_name.count("branch"));
  const cuda::PlacedNode& iff = *by_name["branch"];
  EXPECT_EQ(iff.where, cuda::Placement::kControlFlow);
  EXPECT_NE(iff.why.find("data-dependent condition"), std::string::npos) << iff.why;
  EXPECT_EQ(iff.downloads, (std::vector<std::string>{"cond"}));
  ASSERT_TRUE(by_name.count("branch/then_branch/neg"));
  EXPECT_EQ(by_name["branch/then_branch/neg"]->where, cuda::Placement::kGpu);
  EXPECT_TRUE(by_name["branch/then_branch/neg"]->downloads.empty());
  ASSERT_TRUE(by_name.count("branch/else_branch/drop"));
  EXPECT_EQ(by_name["branch/else_branch/drop"]->where, cuda::Placement::kCpuFallback);
  EXPECT_EQ(by_name["branch/else_branch/drop"]->downloads, (std::vector<std::string>{"x"}));
  // kiln build reports the body's fallback by its path.
  auto f = cuda::predict_cpu_fallbacks(g, {});
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].name, "branch/else_branch/drop");
  // The conformance runner's coverage walks the bodies too, typing their values: only Dropout lacks a kernel
  // (Add reads the body-made 'd', typed f32 from Dropout).
  const auto gaps = cuda::uncovered_nodes(g);
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].op, "Dropout");
}

// A Loop whose body computes its condition on the GPU reads it back each iteration; one that passes its
// condition through reads nothing back.
TEST(CpuFallback, LoopBodyConditionFromTheGpuIsAReadBack) {
  for (bool gpu_condition : {true, false}) {
    SCOPED_TRACE(gpu_condition);
    ModelBuilder b;
    b.input("M", DType::kI64, {}).input("x", DType::kF32, {"3"});
    b.initializer("limit", testing::f32_tensor({}, {100.f}));
    ModelBuilder body;
    body.input("i", DType::kI64, {}).input("cond_in", DType::kBool, {}).input("acc", DType::kF32, {"3"});
    body.node("Add", {"acc", "x"}, {"acc_out"}, "add");
    if (gpu_condition) {
      body.node("ReduceSum", {"acc_out"}, {"s"}, "sum").attr("keepdims", int64_t{0});
      body.node("Less", {"s", "limit"}, {"cond_out"}, "keep_going");
    } else {
      body.node("Identity", {"cond_in"}, {"cond_out"}, "pass");
    }
    body.output("cond_out", DType::kBool, {}).output("acc_out", DType::kF32, {"3"});
    b.node("Loop", {"M", "", "x"}, {"final"}, "loop");
    auto* g = b.proto().mutable_graph();
    auto* a = g->mutable_node(g->node_size() - 1)->add_attribute();
    a->set_name("body");
    a->set_type(kiln_onnx::AttributeProto::GRAPH);
    *a->mutable_g() = body.proto().graph();
    b.output("final", DType::kF32, {"3"});
    auto placed = cuda::predict_placement(import(b), {{"M", {}}, {"x", {3}}});
    ASSERT_TRUE(placed.ok()) << placed.status().to_string();
    const cuda::PlacedNode& loop = placed->front();
    ASSERT_EQ(loop.name, "loop");
    EXPECT_EQ(loop.where, cuda::Placement::kControlFlow);
    // M is a graph input on the GPU: read back once; the body's condition only when the GPU computes it.
    EXPECT_EQ(loop.downloads, gpu_condition ? (std::vector<std::string>{"M", "cond_out"}) : (std::vector<std::string>{"M"}));
  }
}

// Scan before opset 9 (batch-major, sequence lengths) is the one control-flow form left to the CPU reference.
TEST(CpuFallback, ScanBeforeOpset9FallsBackAndLaterScansRunTheirBodies) {
  for (int64_t opset : {8, 11}) {
    SCOPED_TRACE(opset);
    ir::Node scan;
    scan.op_type = "Scan";
    const cuda::KernelDef* kernel = nullptr;
    const auto where = cuda::place_node(scan, opset, {}, &kernel);
    EXPECT_EQ(where, opset < 9 ? cuda::Placement::kCpuFallback : cuda::Placement::kControlFlow);
    EXPECT_EQ(kernel, nullptr);
  }
}


// q, k, v [1, 2, seq, head] -> FusedAttention: the kernel's limits are on head dims and sequence lengths.
ModelBuilder attention_model(const std::string& seq, const std::string& head) {
  ModelBuilder mb;
  mb.input("q", DType::kF32, {"1", "2", seq, head})
      .input("k", DType::kF32, {"1", "2", seq, head})
      .input("v", DType::kF32, {"1", "2", seq, head})
      .node("FusedAttention", {"q", "k", "v"}, {"y"}, "attention")
      .domain("kiln")
      .output("y", DType::kF32, {"1", "2", seq, head});
  return mb;
}

TEST(CpuFallback, AShapeTheKernelCannotTakeIsTheReasonNamingDtypesAndShapes) {
  auto f = cuda::predict_cpu_fallbacks(import(attention_model("16", "640")), {});
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].name, "attention");
  EXPECT_TRUE((*f)[0].by_shape);
  const std::string& why = (*f)[0].why;
  EXPECT_NE(why.find("cannot take inputs (f32, f32, f32) of shapes ([1,2,16,640], [1,2,16,640], [1,2,16,640])"),
            std::string::npos) << why;
  EXPECT_NE(why.find("head dims D=640 Dv=640 (at most 512)"), std::string::npos) << why;

  auto fits = cuda::predict_cpu_fallbacks(import(attention_model("16", "128")), {});
  ASSERT_TRUE(fits.ok()) << fits.status().to_string();
  EXPECT_TRUE(fits->empty()) << fits->front().why;
}

TEST(CpuFallback, KernelLimitsAreAskedAtEveryProfileEndNotOnlyOpt) {
  OptimizationProfile p;
  const auto range = [](int64_t min, int64_t opt, int64_t max) {
    return InputRange{{1, 2, min, 64}, {1, 2, opt, 64}, {1, 2, max, 64}};
  };
  for (const char* name : {"q", "k", "v"}) p.inputs[name] = range(1, 128, 4096);
  auto fits = cuda::predict_cpu_fallbacks(import(attention_model("seq", "64")), {p});
  ASSERT_TRUE(fits.ok()) << fits.status().to_string();
  EXPECT_TRUE(fits->empty());

  // 2,000,000 queries are past the kernel's grid at the profile's max only: opt alone would have missed it.
  for (const char* name : {"q", "k", "v"}) p.inputs[name] = range(1, 128, 2000000);
  auto f = cuda::predict_cpu_fallbacks(import(attention_model("seq", "64")), {p});
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_NE((*f)[0].why.find("2000000 queries"), std::string::npos) << (*f)[0].why;
  EXPECT_NE((*f)[0].why.find("(at profile 0 max)"), std::string::npos) << (*f)[0].why;
}

TEST(CpuFallback, ConvolutionsPastTheKernelsSpatialRankRunOnTheCpu) {
  for (const int spatial : {3, 7}) {
    std::vector<std::string> x_dims = {"1", "1"}, w_dims = {"1", "1"};
    std::vector<int64_t> w_shape = {1, 1};
    for (int i = 0; i < spatial; ++i) {
      x_dims.push_back("2");
      w_dims.push_back("1");
      w_shape.push_back(1);
    }
    ModelBuilder mb;
    mb.input("x", DType::kF32, x_dims)
        .initializer("w", testing::f32_tensor(w_shape, std::vector<float>{0.5f}))
        .node("Conv", {"x", "w"}, {"y"}, "conv")
        .output("y", DType::kF32, x_dims);
    auto f = cuda::predict_cpu_fallbacks(import(mb), {});
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    if (spatial == 3) {
      EXPECT_TRUE(f->empty()) << f->front().why;
      continue;
    }
    ASSERT_EQ(f->size(), 1u);
    EXPECT_NE((*f)[0].why.find("7 spatial dims (the GPU kernels take at most 6)"), std::string::npos) << (*f)[0].why;
  }
}

TEST(CpuFallback, KernelsWithShapeLimitsStateThem) {
  for (const char* op : {"Conv", "FusedConv", "MaxPool", "AveragePool", "Resize", "Upsample", "FusedAttention"}) {
    ASSERT_NE(cuda::kernel_table().find(op), nullptr) << op;
    EXPECT_NE(cuda::shape_limit_of(op), nullptr) << op;
  }
}

}  // namespace
}  // namespace kiln
#endif  // KILN_WITH_CUDA
