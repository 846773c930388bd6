// reduce_io_precision (kiln build --reduced-precision-io): f32 engine I/O takes the compute dtype, the edge
// Casts disappear, and results match the f32 graph within f16 rounding.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.h"
#include "passes/convert_precision.h"
#include "support/graph_test_util.h"
#include "support/model_builder.h"
#include "kiln/half.h"

namespace kiln {
namespace {

using testing::count_op;
using testing::ModelBuilder;
using testing::random_f32;

const ir::Node* producer(const ir::Graph& g, const std::string& v) {
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs)
      if (o == v) return &n;
  return nullptr;
}

// x -> MatMul(w) -> Add(bias) -> Relu -> y, and the int64 `ids` passed through Identity as `ids_out`.
ModelBuilder mlp() {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3"})
      .input("ids", DType::kI64, {"2"})
      .initializer("w", random_f32({3, 4}, 1))
      .initializer("bias", random_f32({4}, 2))
      .node("MatMul", {"x", "w"}, {"mm"}, "mm")
      .node("Add", {"mm", "bias"}, {"a"}, "add")
      .node("Relu", {"a"}, {"y"}, "relu")
      .node("Identity", {"ids"}, {"ids_out"}, "ids_copy")
      .output("y", DType::kF32, {"batch", "4"})
      .output("ids_out", DType::kI64, {"2"});
  return b;
}

ir::Graph converted(const ModelBuilder& b, DType target, passes::PrecisionOptions opt = {}) {
  ir::Graph g = testing::import_inferred(b.bytes());
  opt.target = target;
  Status s = passes::convert_precision(g, opt);
  EXPECT_TRUE(s.ok()) << s.to_string();
  s = passes::reduce_io_precision(g, target);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return g;
}

TEST(ReduceIoPrecision, EdgeCastsDisappear) {
  for (DType t : {DType::kF16, DType::kBF16}) {
    ir::Graph g = converted(mlp(), t);
    EXPECT_EQ(g.values.at("x").dtype, t);
    EXPECT_EQ(g.values.at("y").dtype, t);
    EXPECT_EQ(g.values.at("ids").dtype, DType::kI64) << "integer I/O keeps its dtype";
    EXPECT_EQ(g.values.at("ids_out").dtype, DType::kI64);
    EXPECT_EQ(count_op(g, "Cast"), 0) << "every node computes in the target: no cast is left at the edges";
    ASSERT_TRUE(producer(g, "y"));
    EXPECT_EQ(producer(g, "y")->name, "relu") << "the last node writes the output itself";
    EXPECT_EQ(g.inputs, (std::vector<std::string>{"x", "ids"}));
    EXPECT_EQ(g.outputs, (std::vector<std::string>{"y", "ids_out"}));
  }
}

TEST(ReduceIoPrecision, NodesKeptInF32GetCastsInside) {
  // MatMul stays f32 (as if its kernel had no f16 form): x is cast up for it, and y stays produced in f16.
  passes::PrecisionOptions opt;
  opt.fp32_layers = {"mm"};
  ir::Graph g = converted(mlp(), DType::kF16, opt);
  EXPECT_EQ(g.values.at("x").dtype, DType::kF16);
  const ir::Node* mm = nullptr;
  for (const auto& n : g.nodes)
    if (n.name == "mm") mm = &n;
  ASSERT_TRUE(mm);
  const ir::Node* up = producer(g, mm->inputs[0]);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->op_type, "Cast");
  EXPECT_EQ(up->inputs[0], "x");
  EXPECT_EQ(g.values.at(mm->inputs[0]).dtype, DType::kF32);
  EXPECT_EQ(g.values.at("y").dtype, DType::kF16);
}

TEST(ReduceIoPrecision, OutputOfAnF32NodeGetsACastToTheTarget) {
  // Without convert_precision (an f32 graph) the pass still gives f16 I/O: casts move inside the graph.
  ir::Graph g = testing::import_inferred(mlp().bytes());
  ASSERT_TRUE(passes::reduce_io_precision(g, DType::kF16).ok());
  EXPECT_EQ(g.values.at("x").dtype, DType::kF16);
  EXPECT_EQ(g.values.at("y").dtype, DType::kF16);
  const ir::Node* last = producer(g, "y");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->op_type, "Cast");
  EXPECT_EQ(g.values.at(last->inputs[0]).dtype, DType::kF32);
  EXPECT_EQ(count_op(g, "Cast"), 2);
}

TEST(ReduceIoPrecision, RejectsF32Target) {
  ir::Graph g = testing::import_inferred(mlp().bytes());
  Status s = passes::reduce_io_precision(g, DType::kF32);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("f16 or bf16"), std::string::npos) << s.message();
}

TEST(ReduceIoPrecision, EngineTakesAndGivesF16AndMatchesF32) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.precision = Precision::kF16;
  cfg.reduced_precision_io = true;
  auto reduced = Builder::build_from_bytes(mlp().bytes(), cfg);
  ASSERT_TRUE(reduced.ok()) << reduced.status().to_string();
  cfg.precision = Precision::kF32;
  cfg.reduced_precision_io = false;
  auto full = Builder::build_from_bytes(mlp().bytes(), cfg);
  ASSERT_TRUE(full.ok()) << full.status().to_string();

  const Tensor x32 = random_f32({5, 3}, 7);
  Tensor x16(DType::kF16, {5, 3});
  for (int64_t i = 0; i < x32.numel(); ++i) x16.data<uint16_t>()[i] = float_to_half(x32.data<float>()[i]);
  const Tensor ids = Tensor::from_vector<int64_t>(DType::kI64, {2}, {4, 9});

  auto rc = reduced->create_context();
  ASSERT_TRUE(rc.ok()) << rc.status().to_string();
  auto wrong = rc->infer({{"x", x32}, {"ids", ids}});
  ASSERT_FALSE(wrong.ok()) << "an f32 tensor for an f16 input is refused";
  EXPECT_NE(wrong.status().message().find("x"), std::string::npos) << wrong.status().message();
  auto out16 = rc->infer({{"x", x16}, {"ids", ids}});
  ASSERT_TRUE(out16.ok()) << out16.status().to_string();
  auto fc = full->create_context();
  ASSERT_TRUE(fc.ok());
  auto out32 = fc->infer({{"x", x32}, {"ids", ids}});
  ASSERT_TRUE(out32.ok()) << out32.status().to_string();

  const Tensor& y16 = out16->at("y");
  const Tensor& y32 = out32->at("y");
  ASSERT_EQ(y16.dtype(), DType::kF16);
  ASSERT_EQ(y16.dims(), y32.dims());
  for (int64_t i = 0; i < y32.numel(); ++i) {
    const float want = y32.data<float>()[i];
    EXPECT_NEAR(half_to_float(y16.data<uint16_t>()[i]), want, 2e-3 * (1 + std::fabs(want))) << i;
  }
  EXPECT_EQ(out16->at("ids_out").data<int64_t>()[1], 9);
}

TEST(ReduceIoPrecision, BuildRefusesWithoutReducedPrecision) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.reduced_precision_io = true;
  auto e = Builder::build_from_bytes(mlp().bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("--fp16 or --bf16"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace kiln
