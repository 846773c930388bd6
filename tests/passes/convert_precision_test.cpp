// convert_precision alone on small graphs: weights, I/O casts, parameter inputs, kept nodes, cast chains.
#include "passes/convert_precision.h"

#include <gtest/gtest.h>

#include <cmath>

#include "onnx/importer.h"
#include "passes/pass.h"
#include "support/model_builder.h"
#include "kiln/half.h"

namespace kiln {
namespace {

using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;
using testing::random_f32;

ir::Graph import(const ModelBuilder& b) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "test");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? std::move(*g) : ir::Graph();
}

ir::Graph convert(const ModelBuilder& b, passes::PrecisionOptions opt,
                  passes::PrecisionReport* report = nullptr) {
  ir::Graph g = import(b);
  Status s = passes::convert_precision(g, opt, report);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return g;
}

passes::PrecisionOptions f16() {
  return {};
}
passes::PrecisionOptions bf16() {
  passes::PrecisionOptions o;
  o.target = DType::kBF16;
  return o;
}

const ir::Node* node_named(const ir::Graph& g, const std::string& name) {
  for (const auto& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}
const ir::Node* producer(const ir::Graph& g, const std::string& value) {
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs)
      if (o == value) return &n;
  return nullptr;
}
DType dtype_of(const ir::Graph& g, const std::string& value) {
  const ir::ValueInfo* v = g.value(value);
  return v ? v->dtype : DType::kUndefined;
}
int count_op(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op_type == op;
  return n;
}
// No Cast reads another Cast's output: the pass folds every chain it creates.
void expect_no_cast_chains(const ir::Graph& g) {
  for (const auto& n : g.nodes) {
    if (n.op_type != "Cast") continue;
    const ir::Node* p = producer(g, n.inputs[0]);
    EXPECT_FALSE(p && p->op_type == "Cast") << "cast chain: " << p->name << " -> " << n.name;
  }
}

// x -> MatMul(w) -> Add(bias) -> Relu -> y
ModelBuilder mlp() {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3"})
      .initializer("w", random_f32({3, 4}, 1))
      .initializer("bias", random_f32({4}, 2))
      .node("MatMul", {"x", "w"}, {"mm"}, "mm")
      .node("Add", {"mm", "bias"}, {"a"}, "add")
      .node("Relu", {"a"}, {"y"}, "relu")
      .output("y", DType::kF32, {"batch", "4"});
  return b;
}

TEST(ConvertPrecision, WeightsConvertAndIoKeepsDtypes) {
  passes::PrecisionReport r;
  ir::Graph g = convert(mlp(), f16(), &r);
  EXPECT_EQ(g.inputs, std::vector<std::string>{"x"});
  EXPECT_EQ(g.outputs, std::vector<std::string>{"y"});
  EXPECT_EQ(dtype_of(g, "x"), DType::kF32);
  EXPECT_EQ(dtype_of(g, "y"), DType::kF32);
  EXPECT_EQ(g.values.at("y").shape.to_string(), "[batch,4]");
  // Weights read only in f16 convert in place, keeping their names.
  ASSERT_TRUE(g.is_constant("w"));
  EXPECT_EQ(g.initializers.at("w").dtype(), DType::kF16);
  EXPECT_EQ(g.initializers.at("bias").dtype(), DType::kF16);
  EXPECT_EQ(dtype_of(g, "w"), DType::kF16);
  // The input gets a Cast right before the first converted consumer.
  const ir::Node* mm = node_named(g, "mm");
  ASSERT_TRUE(mm);
  const ir::Node* in_cast = producer(g, mm->inputs[0]);
  ASSERT_TRUE(in_cast);
  EXPECT_EQ(in_cast->op_type, "Cast");
  EXPECT_EQ(in_cast->inputs[0], "x");
  EXPECT_EQ(in_cast->attr_int("to", 0), static_cast<int64_t>(DType::kF16));
  EXPECT_EQ(dtype_of(g, mm->outputs[0]), DType::kF16);
  // The output is produced in f16 under another name and cast back to f32 as 'y'.
  const ir::Node* out_cast = producer(g, "y");
  ASSERT_TRUE(out_cast);
  EXPECT_EQ(out_cast->op_type, "Cast");
  EXPECT_EQ(out_cast->attr_int("to", 0), static_cast<int64_t>(DType::kF32));
  EXPECT_EQ(producer(g, out_cast->inputs[0])->name, "relu");
  EXPECT_EQ(dtype_of(g, out_cast->inputs[0]), DType::kF16);
  EXPECT_EQ(r.converted_nodes, 3);
  EXPECT_EQ(r.casts_added, 2);
  EXPECT_TRUE(r.kept_f32.empty());
}

TEST(ConvertPrecision, Bf16Target) {
  ir::Graph g = convert(mlp(), bf16());
  EXPECT_EQ(g.initializers.at("w").dtype(), DType::kBF16);
  EXPECT_EQ(dtype_of(g, node_named(g, "add")->outputs[0]), DType::kBF16);
  EXPECT_EQ(dtype_of(g, "y"), DType::kF32);
}

TEST(ConvertPrecision, WeightsSaturateToTheFiniteRange) {
  // torch writes finfo(float32).min into attention masks; as -inf a fully masked softmax row would be NaN.
  const float lowest = -3.4028234e38f;
  for (DType t : {DType::kF16, DType::kBF16}) {
    ModelBuilder b;
    b.input("x", DType::kF32, {"4"})
        .initializer("c", f32_tensor({4}, {lowest, 1e6f, 0.5f, -INFINITY}))
        .node("Add", {"x", "c"}, {"y"}, "add")
        .output("y", DType::kF32, {"4"});
    passes::PrecisionOptions o;
    o.target = t;
    ir::Graph g = convert(b, o);
    const Tensor& c = g.initializers.at("c");
    ASSERT_EQ(c.dtype(), t);
    const double max = t == DType::kF16 ? 65504.0 : 3.3895313892515355e38;
    EXPECT_EQ(c.get_as_double(0), -max) << dtype_name(t);
    EXPECT_EQ(c.get_as_double(1), t == DType::kF16 ? 65504.0 : c.get_as_double(1));
    EXPECT_TRUE(std::isfinite(c.get_as_double(1)));
    EXPECT_EQ(c.get_as_double(2), 0.5);
    EXPECT_TRUE(std::isinf(c.get_as_double(3)) && c.get_as_double(3) < 0) << "-inf stays -inf";
  }
}

TEST(ConvertPrecision, Fp32LayersStayF32WithCastsAround) {
  passes::PrecisionOptions o;
  o.fp32_layers = {"add"};
  passes::PrecisionReport r;
  ir::Graph g = convert(mlp(), o, &r);
  const ir::Node* add = node_named(g, "add");
  ASSERT_TRUE(add);
  EXPECT_EQ(dtype_of(g, add->inputs[0]), DType::kF32);
  EXPECT_EQ(dtype_of(g, add->inputs[1]), DType::kF32);
  EXPECT_EQ(dtype_of(g, add->outputs[0]), DType::kF32);
  EXPECT_EQ(g.initializers.at("bias").dtype(), DType::kF32);
  EXPECT_EQ(producer(g, add->inputs[0])->op_type, "Cast");  // mm's f16 result back to f32
  EXPECT_EQ(dtype_of(g, node_named(g, "mm")->outputs[0]), DType::kF16);
  const ir::Node* relu = node_named(g, "relu");
  EXPECT_EQ(producer(g, relu->inputs[0])->op_type, "Cast");  // and f16 again for relu
  EXPECT_EQ(dtype_of(g, relu->outputs[0]), DType::kF16);
  ASSERT_EQ(r.kept_f32.size(), 1u);
  EXPECT_EQ(r.kept_f32[0].first, "add");
  EXPECT_NE(r.kept_f32[0].second.find("fp32_layers"), std::string::npos);
  EXPECT_EQ(r.converted_nodes, 2);
  expect_no_cast_chains(g);
}

TEST(ConvertPrecision, UnknownFp32LayerListsNearestNames) {
  ir::Graph g = import(mlp());
  passes::PrecisionOptions o;
  o.fp32_layers = {"relu", "ad"};
  Status s = passes::convert_precision(g, o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'ad'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("nearest node names: 'add'"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("'relu',"), std::string::npos)
      << "known names are not reported: " << s.message();
}

TEST(ConvertPrecision, UnsupportedKernelsStayF32) {
  passes::PrecisionOptions o;
  std::vector<std::vector<DType>> asked;
  o.supports = [&](const ir::Node& n, const std::vector<DType>& dts) {
    if (n.op_type == "Add") asked.push_back(dts);
    return n.op_type != "Add";
  };
  passes::PrecisionReport r;
  ir::Graph g = convert(mlp(), o, &r);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], (std::vector<DType>{DType::kF16, DType::kF16}))
      << "the predicate sees the converted dtypes";
  const ir::Node* add = node_named(g, "add");
  EXPECT_EQ(dtype_of(g, add->outputs[0]), DType::kF32);
  EXPECT_EQ(g.initializers.at("bias").dtype(), DType::kF32);
  ASSERT_EQ(r.kept_f32.size(), 1u);
  EXPECT_NE(r.kept_f32[0].second.find("no f16 kernel"), std::string::npos) << r.kept_f32[0].second;
}

TEST(ConvertPrecision, SharedWeightGetsACopyPerDtype) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"4"})
      .initializer("s", f32_tensor({4}, {1, 2, 3, 4}))
      .node("Mul", {"x", "s"}, {"a"}, "mul_f16")
      .node("Mul", {"a", "s"}, {"y"}, "mul_f32")
      .output("y", DType::kF32, {"4"});
  passes::PrecisionOptions o;
  o.fp32_layers = {"mul_f32"};
  ir::Graph g = convert(b, o);
  EXPECT_EQ(g.initializers.at("s").dtype(), DType::kF32);
  const std::string copy = node_named(g, "mul_f16")->inputs[1];
  EXPECT_NE(copy, "s");
  ASSERT_TRUE(g.is_constant(copy));
  EXPECT_EQ(g.initializers.at(copy).dtype(), DType::kF16);
  EXPECT_EQ(g.initializers.at(copy).get_as_double(3), 4.0);
  EXPECT_EQ(node_named(g, "mul_f32")->inputs[1], "s");
}

TEST(ConvertPrecision, ParameterInputsKeepTheirTypes) {
  ModelBuilder b(18);
  b.input("x", DType::kF32, {"1", "2", "3", "3"})
      .initializer("scale", f32_tensor({2}, {1, 2}))
      .initializer("bias", f32_tensor({2}, {0, 1}))
      .initializer("mean", f32_tensor({2}, {0.5f, -0.5f}))
      .initializer("var", f32_tensor({2}, {1e-6f, 4}))
      .node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"bn"}, "bn")
      .initializer("roi", f32_tensor({0}, {}))
      .initializer("scales", f32_tensor({4}, {1, 1, 2, 2}))
      .node("Resize", {"bn", "roi", "scales"}, {"rs"}, "resize")
      .initializer("two", f32_tensor({}, {2}))
      .node("Pow", {"rs", "two"}, {"pw"}, "pow")
      .initializer("lo", f32_tensor({}, {0}))
      .initializer("hi", f32_tensor({}, {6}))
      .node("Clip", {"pw", "lo", "hi"}, {"clip"}, "clip")
      .node("Shape", {"clip"}, {"shape"}, "shape")
      .output("clip", DType::kF32, {"1", "2", "6", "6"})
      .output("shape", DType::kI64, {"4"});
  ir::Graph g = convert(b, f16());
  // BatchNormalization from opset 15: scale/bias follow T, the running statistics keep f32.
  EXPECT_EQ(g.initializers.at("scale").dtype(), DType::kF16);
  EXPECT_EQ(g.initializers.at("bias").dtype(), DType::kF16);
  EXPECT_EQ(g.initializers.at("mean").dtype(), DType::kF32);
  EXPECT_EQ(g.initializers.at("var").dtype(), DType::kF32);
  EXPECT_EQ(dtype_of(g, "bn"), DType::kF16);
  // Resize: X in f16, roi/scales as the spec types them.
  const ir::Node* resize = node_named(g, "resize");
  EXPECT_EQ(dtype_of(g, resize->inputs[0]), DType::kF16);
  EXPECT_EQ(g.initializers.at("scales").dtype(), DType::kF32);
  EXPECT_EQ(g.initializers.at("roi").dtype(), DType::kF32);
  // Pow's exponent has its own type: left as is, no Cast.
  EXPECT_EQ(g.initializers.at("two").dtype(), DType::kF32);
  EXPECT_EQ(dtype_of(g, "pw"), DType::kF16);
  // Clip's bounds follow T.
  EXPECT_EQ(g.initializers.at("lo").dtype(), DType::kF16);
  EXPECT_EQ(g.initializers.at("hi").dtype(), DType::kF16);
  // Shape reads the f16 value directly rather than a Cast back to f32.
  const ir::Node* shape = node_named(g, "shape");
  EXPECT_EQ(dtype_of(g, shape->inputs[0]), DType::kF16);
  EXPECT_EQ(producer(g, shape->inputs[0])->name, "clip");
  EXPECT_EQ(dtype_of(g, "clip"), DType::kF32);
  EXPECT_EQ(count_op(g, "Cast"), 2);  // x in, clip out
}

TEST(ConvertPrecision, BatchNormBeforeOpset15ConvertsItsStatistics) {
  ModelBuilder b(14);
  b.input("x", DType::kF32, {"1", "2", "3"})
      .initializer("scale", f32_tensor({2}, {1, 2}))
      .initializer("bias", f32_tensor({2}, {0, 1}))
      .initializer("mean", f32_tensor({2}, {0.5f, -0.5f}))
      .initializer("var", f32_tensor({2}, {1, 4}))
      .node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y"}, "bn")
      .output("y", DType::kF32, {"1", "2", "3"});
  ir::Graph g = convert(b, f16());
  EXPECT_EQ(g.initializers.at("mean").dtype(), DType::kF16);  // one type T for every input before opset 15
  EXPECT_EQ(g.initializers.at("var").dtype(), DType::kF16);
}

TEST(ConvertPrecision, LayerNormParametersFollowAndStatisticsStayF32) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"2", "8"})
      .initializer("gamma", random_f32({8}, 3))
      .initializer("beta", random_f32({8}, 4))
      .node("LayerNormalization", {"x", "gamma", "beta"}, {"y", "mean", "inv"}, "ln")
      .output("y", DType::kF32, {"2", "8"})
      .output("mean", DType::kF32, {"2", "1"});
  ir::Graph g = convert(b, f16());
  EXPECT_EQ(g.initializers.at("gamma").dtype(), DType::kF16);
  EXPECT_EQ(g.initializers.at("beta").dtype(), DType::kF16);
  const ir::Node* ln = node_named(g, "ln");
  EXPECT_EQ(dtype_of(g, ln->outputs[0]), DType::kF16);
  EXPECT_EQ(ln->outputs[1], "mean") << "stash_type f32 statistics need no Cast";
  EXPECT_EQ(dtype_of(g, "mean"), DType::kF32);
  EXPECT_EQ(dtype_of(g, "y"), DType::kF32);
}

TEST(ConvertPrecision, RangeAndModelCastsStayAndChainsFold) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"5"})
      .input("mask", DType::kBool, {"5"})
      .initializer("start", f32_tensor({}, {0}))
      .initializer("limit", f32_tensor({}, {5}))
      .initializer("delta", f32_tensor({}, {1}))
      .node("Range", {"start", "limit", "delta"}, {"r"}, "range")
      .node("Cast", {"mask"}, {"m"}, "mask_to_f32")
      .attr("to", int64_t{1})
      .node("Mul", {"x", "m"}, {"xm"}, "mul")
      .node("Add", {"xm", "r"}, {"sum"}, "add")
      .node("Cast", {"sum"}, {"idx"}, "to_int")
      .attr("to", int64_t{7})
      .output("sum", DType::kF32, {"5"})
      .output("idx", DType::kI64, {"5"});
  passes::PrecisionReport r;
  ir::Graph g = convert(b, f16(), &r);
  // Range computes in f32 (its arithmetic decides the length); its consumer gets a Cast.
  const ir::Node* range = node_named(g, "range");
  ASSERT_TRUE(range);
  EXPECT_EQ(dtype_of(g, range->outputs[0]), DType::kF32);
  EXPECT_EQ(g.initializers.at("limit").dtype(), DType::kF32);
  EXPECT_EQ(dtype_of(g, node_named(g, "add")->outputs[0]), DType::kF16);
  // bool -> f32 -> f16 folds into one Cast from the bool mask.
  const ir::Node* mul = node_named(g, "mul");
  const ir::Node* mask_cast = producer(g, mul->inputs[1]);
  ASSERT_TRUE(mask_cast);
  EXPECT_EQ(mask_cast->op_type, "Cast");
  EXPECT_EQ(mask_cast->inputs[0], "mask");
  EXPECT_EQ(mask_cast->attr_int("to", 0), static_cast<int64_t>(DType::kF16));
  EXPECT_EQ(node_named(g, "mask_to_f32"), nullptr) << "the f32 mask has no reader left";
  // f16 -> f32 -> i64 folds into f16 -> i64 (f32 holds every f16 exactly).
  const ir::Node* to_int = node_named(g, "to_int");
  ASSERT_TRUE(to_int);
  EXPECT_EQ(dtype_of(g, to_int->inputs[0]), DType::kF16);
  EXPECT_EQ(dtype_of(g, "idx"), DType::kI64);
  expect_no_cast_chains(g);
  bool range_reported = false;
  for (const auto& [name, why] : r.kept_f32)
    range_reported |= name == "range" && why.find("length") != std::string::npos;
  EXPECT_TRUE(range_reported);
}

TEST(ConvertPrecision, OutputAlsoReadInsideReadsTheF16Value) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"})
      .node("Relu", {"x"}, {"y"}, "relu")
      .node("Neg", {"y"}, {"z"}, "neg")
      .output("y", DType::kF32, {"3"})
      .output("z", DType::kF32, {"3"});
  ir::Graph g = convert(b, f16());
  const ir::Node* neg = node_named(g, "neg");
  EXPECT_EQ(dtype_of(g, neg->inputs[0]), DType::kF16);
  EXPECT_EQ(producer(g, neg->inputs[0])->name, "relu") << "no f16 -> f32 -> f16 round trip";
  EXPECT_EQ(dtype_of(g, "y"), DType::kF32);
  EXPECT_EQ(dtype_of(g, "z"), DType::kF32);
  EXPECT_EQ(count_op(g, "Cast"), 3);  // x in, y and z out
}

TEST(ConvertPrecision, DataMovementFollowsItsData) {
  // f32 input -> Reshape -> MatMul: the Reshape moves f32 (one Cast, after it); MatMul -> Transpose ->
  // output: the Transpose moves f16 and the Cast back sits at the output.
  ModelBuilder b;
  b.input("x", DType::kF32, {"6"})
      .initializer("shape", i64_tensor({2}, {2, 3}))
      .node("Reshape", {"x", "shape"}, {"x2"}, "reshape")
      .initializer("w", random_f32({3, 4}, 5))
      .node("MatMul", {"x2", "w"}, {"mm"}, "mm")
      .node("Transpose", {"mm"}, {"y"}, "transpose")
      .attr("perm", std::vector<int64_t>{1, 0})
      .output("y", DType::kF32, {"4", "2"});
  ir::Graph g = convert(b, f16());
  EXPECT_EQ(dtype_of(g, node_named(g, "reshape")->outputs[0]), DType::kF32);
  EXPECT_EQ(dtype_of(g, node_named(g, "transpose")->outputs[0]), DType::kF16);
  EXPECT_EQ(g.initializers.at("shape").dtype(), DType::kI64);
  EXPECT_EQ(count_op(g, "Cast"), 2);
}

TEST(ConvertPrecision, GatherOfAWeightConvertsTheTable) {
  ModelBuilder b;
  b.input("ids", DType::kI64, {"3"})
      .initializer("table", random_f32({10, 4}, 6))
      .node("Gather", {"table", "ids"}, {"emb"}, "embedding")
      .node("Relu", {"emb"}, {"y"}, "relu")
      .output("y", DType::kF32, {"3", "4"});
  ir::Graph g = convert(b, f16());
  EXPECT_EQ(g.initializers.at("table").dtype(), DType::kF16);
  EXPECT_EQ(dtype_of(g, "emb"), DType::kF16);
  EXPECT_EQ(count_op(g, "Cast"), 1);  // only at the output
}

TEST(ConvertPrecision, ValuesReadBySubgraphsKeepTheirNameAndDtype) {
  // h = Relu(x) is read by name inside both If branches: it must stay f32 under its name; Relu still computes
  // in f16 and a Cast back produces h.
  ir::Graph g;
  g.opset = 17;
  g.ir_version = 8;
  g.inputs = {"x", "cond"};
  g.outputs = {"y"};
  g.values["x"] = {DType::kF32, Shape::from_dims({3})};
  g.values["cond"] = {DType::kBool, Shape::from_dims({})};
  ir::Node relu;
  relu.name = "relu";
  relu.op_type = "Relu";
  relu.inputs = {"x"};
  relu.outputs = {"h"};
  auto branch = [](const std::string& op, const std::string& out) {
    auto b = std::make_shared<ir::Graph>();
    b->opset = 17;
    ir::Node n;
    n.name = out + "_node";
    n.op_type = op;
    n.inputs = {"h"};
    n.outputs = {out};
    b->nodes = {n};
    b->outputs = {out};
    b->values[out] = {DType::kF32, Shape::from_dims({3})};
    return b;
  };
  ir::Node iff;
  iff.name = "if";
  iff.op_type = "If";
  iff.inputs = {"cond"};
  iff.outputs = {"y"};
  iff.attrs["then_branch"].kind = ir::Attribute::Kind::kGraph;
  iff.attrs["then_branch"].g = branch("Identity", "t");
  iff.attrs["else_branch"].kind = ir::Attribute::Kind::kGraph;
  iff.attrs["else_branch"].g = branch("Neg", "e");
  g.nodes = {relu, iff};
  ASSERT_TRUE(passes::infer_shapes(g).ok());
  ASSERT_TRUE(passes::convert_precision(g, f16()).ok());
  EXPECT_EQ(dtype_of(g, "h"), DType::kF32);
  const ir::Node* cast = producer(g, "h");
  ASSERT_TRUE(cast);
  EXPECT_EQ(cast->op_type, "Cast");
  EXPECT_EQ(producer(g, cast->inputs[0])->name, "relu");
  EXPECT_EQ(dtype_of(g, cast->inputs[0]), DType::kF16);
  EXPECT_EQ(dtype_of(g, "y"), DType::kF32);
}

TEST(ConvertPrecision, IntegerGraphsAreUntouched) {
  ModelBuilder b;
  b.input("a", DType::kI64, {"3"})
      .initializer("b", i64_tensor({3}, {1, 2, 3}))
      .node("Add", {"a", "b"}, {"y"}, "add")
      .output("y", DType::kI64, {"3"});
  passes::PrecisionReport r;
  ir::Graph g = convert(b, f16(), &r);
  EXPECT_EQ(r.converted_nodes, 0);
  EXPECT_EQ(count_op(g, "Cast"), 0);
  EXPECT_TRUE(r.kept_f32.empty());
}

TEST(ConvertPrecision, RejectsOtherTargets) {
  ir::Graph g = import(mlp());
  passes::PrecisionOptions o;
  o.target = DType::kF32;
  EXPECT_FALSE(passes::convert_precision(g, o).ok());
}

}  // namespace
}  // namespace kiln
