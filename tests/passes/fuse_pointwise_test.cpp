// fuse_pointwise alone, and the PointwiseChain op it creates: programs parse and type-check (errors name the
// statement); fused graphs give what the unfused graphs gave on random inputs (f32 bit for bit, since the
// reference interpreter uses the unfused kernels' formulas); chains stop at readers outside, shape changes,
// non-floats and the GEMM/conv epilogue nodes; graph outputs inside a chain become extra outputs; only
// initializers are baked in; the real skeletons still build and match their unfused graphs.
#include <gtest/gtest.h>

#include <cmath>

#include "backends/cpu/executor.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"
#include "ops/pointwise_chain.h"
#include "passes/pass.h"
#include "support/model_builder.h"
#include "support/skeleton.h"
#include "kiln/half.h"
#include "support/graph_test_util.h"

namespace kiln {
namespace {

using testing::import_inferred;
using testing::count_op;
using testing::find_op;
using testing::run_cpu;

using testing::f32_tensor;
using testing::ModelBuilder;
using testing::random_f32;

// Values in [-scale, scale).
Tensor spread(std::vector<int64_t> dims, uint64_t seed, float scale = 3.f) {
  Tensor t = random_f32(std::move(dims), seed);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] *= scale;
  return t;
}

Tensor to_dtype(const Tensor& f, DType dt) {
  if (dt == DType::kF32) return f;
  Tensor out(dt, f.dims());
  for (int64_t i = 0; i < f.numel(); ++i)
    out.data<uint16_t>()[i] =
        dt == DType::kF16 ? float_to_half(f.data<float>()[i]) : float_to_bf16(f.data<float>()[i]);
  return out;
}

void expect_match(const std::map<std::string, Tensor>& got, const std::map<std::string, Tensor>& want,
                  double rtol) {
  ASSERT_FALSE(want.empty());
  for (const auto& [name, w] : want) {
    ASSERT_TRUE(got.count(name)) << name;
    const Tensor& o = got.at(name);
    ASSERT_EQ(o.dtype(), w.dtype()) << name;
    ASSERT_EQ(o.dims(), w.dims()) << name;
    int bad = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
      const double a = o.get_as_double(i), e = w.get_as_double(i);
      if ((std::isnan(a) && std::isnan(e)) || a == e) continue;
      if (!(std::fabs(a - e) <= rtol * (1e-6 + std::fabs(e))) && bad++ < 5)
        ADD_FAILURE() << name << "[" << i << "]: fused " << a << " vs unfused " << e;
    }
    EXPECT_EQ(bad, 0) << name;
  }
}

// Runs fuse_pointwise (+ dead code, inference) and compares every output with the unfused graph's; rtol 0:
// equal.
ir::Graph fuse_and_compare(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs,
                           double rtol = 0) {
  ir::Graph g = import_inferred(b.bytes());
  auto want = run_cpu(g, inputs);
  Status s = passes::fuse_pointwise(g);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(passes::eliminate_dead_code(g).ok());
  s = passes::infer_shapes(g);
  EXPECT_TRUE(s.ok()) << s.to_string();
  expect_match(run_cpu(g, inputs), want, rtol);
  return g;
}

// --- the program language
// ---------------------------------------------------------------------------------------

TEST(PointwiseProgram, ParsesAndPrintsCanonically) {
  auto p = ops::parse_pointwise_program(" t0 = mul(x0, x1) ; t1=erf(t0);y0=add(t1,c0);y1=where(x2,y0,t0)");
  ASSERT_TRUE(p.ok()) << p.status().to_string();
  EXPECT_EQ(p->to_string(), "t0=mul(x0,x1);t1=erf(t0);y0=add(t1,c0);y1=where(x2,y0,t0)");
  EXPECT_EQ(p->num_inputs, 3);
  EXPECT_EQ(p->num_constants, 1);
  EXPECT_EQ(p->output_steps, (std::vector<int>{2, 3}));
  auto dts = ops::pointwise_step_dtypes(*p, {DType::kF16, DType::kF16, DType::kBool});
  ASSERT_TRUE(dts.ok()) << dts.status().to_string();
  EXPECT_EQ(*dts, (std::vector<DType>{DType::kF16, DType::kF16, DType::kF16, DType::kF16}));
  auto cast = ops::parse_pointwise_program("t0=cast_f32(x0);y0=mul(t0,x1)");
  ASSERT_TRUE(cast.ok());
  auto cast_dts = ops::pointwise_step_dtypes(*cast, {DType::kBF16, DType::kF32});
  ASSERT_TRUE(cast_dts.ok()) << cast_dts.status().to_string();
  EXPECT_EQ(cast_dts->back(), DType::kF32);
}

TEST(PointwiseProgram, ErrorsQuoteTheStatement) {
  struct Case {
    const char* text;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{{"y0=frob(x0)", "unknown function 'frob'"},
                                         {"y0=relu(t3)", "'t3' is read before it is assigned"},
                                         {"t0=relu(x0);t0=exp(x0);y0=exp(t0)", "assigned twice"},
                                         {"y0=add(x0)", "add takes 2 operands, got 1"},
                                         {"t0=relu(x0)", "writes no output"},
                                         {"y1=relu(x0)", "y0"},
                                         {"y0=relu(q0)", "bad operand 'q0'"},
                                         {"y0 relu(x0)", "NAME=FUNCTION(OPERANDS)"},
                                         {"", "empty"}}) {
    auto p = ops::parse_pointwise_program(c.text);
    ASSERT_FALSE(p.ok()) << c.text;
    EXPECT_NE(p.status().message().find(c.says), std::string::npos)
        << c.text << " -> " << p.status().to_string();
  }
  auto p = ops::parse_pointwise_program("y0=add(x0,x1)");
  ASSERT_TRUE(p.ok());
  auto mixed = ops::pointwise_step_dtypes(*p, {DType::kF32, DType::kF16});
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("f16"), std::string::npos) << mixed.status().to_string();
  EXPECT_FALSE(ops::pointwise_step_dtypes(*p, {DType::kI64, DType::kI64}).ok());
  auto w = ops::parse_pointwise_program("y0=where(x0,x1,x1)");
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(ops::pointwise_step_dtypes(*w, {DType::kF32, DType::kF32}).ok());  // condition must be bool
  auto consts = ops::parse_pointwise_program("y0=add(c0,c1)");
  ASSERT_TRUE(consts.ok());
  EXPECT_FALSE(ops::pointwise_step_dtypes(*consts, {DType::kF32}).ok());
}

TEST(PointwiseChainOp, InferenceChecksTheNodeAgainstTheProgram) {
  // Two outputs with broadcasting: [2,1,4] and [3,1] -> [2,3,4].
  ModelBuilder b(20);
  b.input("a", DType::kF32, {"2", "1", "4"})
      .input("s", DType::kF32, {"3", "1"})
      .node("PointwiseChain", {"a", "s"}, {"y", "z"}, "pc")
      .domain("kiln")
      .attr("program", std::string("t0=mul(x0,x1);y0=add(t0,c0);y1=relu(t0)"))
      .output("y")
      .output("z");
  ir::Graph g = [&] {
    auto imported = onnx::import_model_bytes(b.bytes(), ".", "test");
    EXPECT_TRUE(imported.ok()) << imported.status().to_string();
    return std::move(*imported);
  }();
  Status missing = passes::infer_shapes(g);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("constants"), std::string::npos) << missing.to_string();
  EXPECT_NE(missing.message().find("'pc'"), std::string::npos) << missing.to_string();
  g.nodes[0].attrs["constants"] = ir::Attribute::of_floats({0.25f});
  Status ok = passes::infer_shapes(g);
  ASSERT_TRUE(ok.ok()) << ok.to_string();
  EXPECT_EQ(g.value("y")->shape.to_string(), "[2,3,4]");
  EXPECT_EQ(g.value("z")->dtype, DType::kF32);
  Tensor a = f32_tensor({2, 1, 4}, {-1, 2, -3, 4, 5, -6, 7, -8});
  Tensor s = f32_tensor({3, 1}, {1, -1, 0.5f});
  auto out = run_cpu(g, {{"a", a}, {"s", s}});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FLOAT_EQ(out["y"].data<float>()[4 + 1], 2 * -1 + 0.25f);  // [0,1,1]: a=2, s=-1
  EXPECT_FLOAT_EQ(out["z"].data<float>()[4 + 0], 1.f);             // [0,1,0]: a=-1, s=-1
  EXPECT_FLOAT_EQ(out["z"].data<float>()[12 + 8 + 3], 0.f);        // [1,2,3]: a=-8, s=0.5

  g.nodes[0].attrs["program"] = ir::Attribute::of_string("t0=mul(x0,x1);y0=add(t0,c0)");
  Status outs = passes::infer_shapes(g);
  ASSERT_FALSE(outs.ok());
  EXPECT_NE(outs.message().find("writes 1 outputs but the node has 2"), std::string::npos)
      << outs.to_string();
}

// --- fusion
// -----------------------------------------------------------------------------------------------------

TEST(FusePointwise, ChainBecomesOneNodeWithBakedConstant) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "7"})
      .input("w", DType::kF32, {"batch", "7"})
      .initializer("half", f32_tensor({}, {0.5f}))
      .node("Mul", {"x", "w"}, {"m"})
      .node("Erf", {"m"}, {"e"})
      .node("Add", {"e", "half"}, {"y"}, "last")
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread({3, 7}, 1)}, {"w", spread({3, 7}, 2)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  const ir::Node& n = g.nodes[0];
  EXPECT_EQ(n.op_type, "PointwiseChain");
  EXPECT_EQ(n.domain, "kiln");
  EXPECT_EQ(n.name, "last");
  EXPECT_EQ(n.attr_string("program", ""), "t0=mul(x0,x1);t1=erf(t0);y0=add(t1,c0)");
  EXPECT_EQ(n.attr_floats("constants"), std::vector<float>{0.5f});
  EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "w"}));
  EXPECT_EQ(n.outputs, std::vector<std::string>{"y"});
  EXPECT_EQ(g.value("m"), nullptr);  // intermediates are gone
}

TEST(FusePointwise, RuntimeScalarInputStaysAnInput) {
  // The seed's pitfall: a 0-d runtime input must never be baked, however constant it looks.
  ModelBuilder b;
  b.input("x", DType::kF32, {"5"})
      .input("scale", DType::kF32, {})
      .node("Mul", {"x", "scale"}, {"m"})
      .node("Tanh", {"m"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread({5}, 3)}, {"scale", f32_tensor({}, {2.f})}});
  const ir::Node* n = find_op(g, "PointwiseChain");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->inputs, (std::vector<std::string>{"x", "scale"}));
  EXPECT_FALSE(n->has_attr("constants"));
  // A different runtime value gives a different result.
  auto a = run_cpu(g, {{"x", f32_tensor({5}, {1, 1, 1, 1, 1})}, {"scale", f32_tensor({}, {0.5f})}});
  EXPECT_FLOAT_EQ(a["y"].data<float>()[0], std::tanh(0.5f));
}

TEST(FusePointwise, BroadcastInputsAndEveryRuleAgreeWithUnfused) {
  // [2,3,5] chain reading a [5] bias, a [3,1] scale, a one-element [1] constant and a bool condition, through
  // every op family the rules cover.
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"2", "3", "5"})
      .input("bias", DType::kF32, {"5"})
      .input("cond", DType::kBool, {"3", "5"})
      .initializer("scale", spread({3, 1}, 9))
      .initializer("three", f32_tensor({1}, {3.f}))
      .initializer("lo", f32_tensor({}, {-0.5f}))
      .initializer("two", f32_tensor({}, {2.f}))
      .node("Add", {"x", "bias"}, {"a"})
      .node("Mul", {"a", "scale"}, {"b"})
      .node("Sub", {"b", "three"}, {"c"})
      .node("Div", {"c", "scale"}, {"d"})
      .node("Abs", {"d"}, {"e"})
      .node("Sqrt", {"e"}, {"f"})
      .node("Pow", {"f", "two"}, {"g"})
      .node("Log", {"g"}, {"h"})
      .node("Max", {"h", "x"}, {"i"})
      .node("Min", {"i", "a"}, {"j"})
      .node("Sigmoid", {"j"}, {"k"})
      .node("Neg", {"k"}, {"l"})
      .node("Exp", {"l"}, {"m"})
      .node("Reciprocal", {"m"}, {"n"})
      .node("LeakyRelu", {"n"}, {"o"})
      .attr("alpha", 0.2f)
      .node("HardSigmoid", {"o"}, {"p"})
      .attr("alpha", 0.3f)
      .node("Clip", {"p", "lo"}, {"q"})
      .node("Gelu", {"q"}, {"r"})
      .attr("approximate", std::string("tanh"))
      .node("Where", {"cond", "r", "x"}, {"s"})
      .node("Softplus", {"s"}, {"t"})
      .node("Elu", {"t"}, {"u"})
      .node("HardSwish", {"u"}, {"v"})
      .node("PRelu", {"v", "bias"}, {"w"})
      .node("Relu", {"w"}, {"y"})
      .output("y");
  Tensor cond(DType::kBool, {3, 5});
  for (int64_t i = 0; i < cond.numel(); ++i) cond.data<uint8_t>()[i] = (i * 7) % 3 == 0;
  ir::Graph g = fuse_and_compare(b, {{"x", spread({2, 3, 5}, 4)}, {"bias", spread({5}, 5)}, {"cond", cond}});
  ASSERT_EQ(g.nodes.size(), 1u) << g.nodes[0].op_type;
  const ir::Node& n = g.nodes[0];
  EXPECT_EQ(n.inputs, (std::vector<std::string>{"x", "bias", "scale", "cond"}));  // [3,1] is no scalar
  EXPECT_NE(n.attr_string("program", "").find("clip(t15,c5,c6)"), std::string::npos)
      << n.attr_string("program", "");
}

TEST(FusePointwise, ExternalReaderEndsTheChain) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"4", "6"})
      .node("Exp", {"x"}, {"e"})
      .node("Log", {"e"}, {"l"})
      .node("Neg", {"l"}, {"y"})
      .node("Transpose", {"e"}, {"t"})  // another reader of e
      .output("y")
      .output("t");
  ir::Graph g = fuse_and_compare(b, {{"x", spread({4, 6}, 6)}});
  EXPECT_EQ(count_op(g, "Exp"), 1);
  ASSERT_EQ(count_op(g, "PointwiseChain"), 1);
  const ir::Node* n = find_op(g, "PointwiseChain");
  EXPECT_EQ(n->inputs, std::vector<std::string>{"e"});
  EXPECT_EQ(n->attr_string("program", ""), "t0=log(x0);y0=neg(t0)");
}

TEST(FusePointwise, GraphOutputInsideBecomesAnotherOutput) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3", "3"})
      .node("Relu", {"x"}, {"r"})
      .node("Sqrt", {"r"}, {"s"})
      .node("Exp", {"s"}, {"y"})
      .output("y")
      .output("r");
  ir::Graph g = fuse_and_compare(b, {{"x", spread({3, 3}, 7)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].outputs, (std::vector<std::string>{"y", "r"}));
  EXPECT_EQ(g.nodes[0].attr_string("program", ""), "y1=relu(x0);t0=sqrt(y1);y0=exp(t0)");
  ASSERT_NE(g.value("r"), nullptr);
}

TEST(FusePointwise, ShapeChangeEndsTheChain) {
  // Exp's [3,1] output broadcasts into the [3,4] Add: the fused node would compute it per output element, so
  // Exp stays out; the Add (reading the broadcast) and the Relu fuse.
  ModelBuilder b;
  b.input("x", DType::kF32, {"3", "1"})
      .input("z", DType::kF32, {"3", "4"})
      .node("Exp", {"x"}, {"e"})
      .node("Add", {"e", "z"}, {"a"})
      .node("Relu", {"a"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread({3, 1}, 8)}, {"z", spread({3, 4}, 9)}});
  EXPECT_EQ(count_op(g, "Exp"), 1);
  ASSERT_EQ(count_op(g, "PointwiseChain"), 1);
  EXPECT_EQ(find_op(g, "PointwiseChain")->inputs, (std::vector<std::string>{"e", "z"}));
}

TEST(FusePointwise, NonFloatNodesStayOut) {
  // Integer arithmetic and a comparison producing the Where condition are not fused; the Where and what
  // follows is.
  ModelBuilder b;
  b.input("i", DType::kI64, {"6"})
      .input("x", DType::kF32, {"6"})
      .node("Add", {"i", "i"}, {"i2"})
      .node("Mul", {"i2", "i"}, {"i3"})
      .node("Greater", {"x", "x"}, {"gt"})
      .node("Where", {"gt", "x", "x"}, {"w"})
      .node("Exp", {"w"}, {"y"})
      .output("y")
      .output("i3");
  Tensor ints = testing::i64_tensor({6}, {1, 2, 3, 4, 5, 6});
  ir::Graph g = fuse_and_compare(b, {{"i", ints}, {"x", spread({6}, 10)}});
  EXPECT_EQ(count_op(g, "Add"), 1);
  EXPECT_EQ(count_op(g, "Mul"), 1);
  EXPECT_EQ(count_op(g, "Greater"), 1);
  ASSERT_EQ(count_op(g, "PointwiseChain"), 1);
  EXPECT_EQ(find_op(g, "PointwiseChain")->attr_string("program", ""), "t0=where(x0,x1,x1);y0=exp(t0)");
}

TEST(FusePointwise, EpilogueOfAConstantWeightMatMulIsLeftForTheGemmFusion) {
  // MatMul(W const) -> Add -> Relu: the Add belongs to the GEMM epilogue. The Relu after it and the Exp fuse.
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "4"})
      .initializer("w", spread({4, 3}, 11))
      .initializer("bias", spread({3}, 12))
      .node("MatMul", {"x", "w"}, {"mm"})
      .node("Add", {"mm", "bias"}, {"a"})
      .node("Relu", {"a"}, {"r"})
      .node("Exp", {"r"}, {"y"})
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread({2, 4}, 13)}});
  EXPECT_EQ(count_op(g, "Add"), 1);
  ASSERT_EQ(count_op(g, "PointwiseChain"), 1);
  EXPECT_EQ(find_op(g, "PointwiseChain")->inputs, std::vector<std::string>{"a"});
  // With a runtime weight nothing is reserved: Add, Relu and Exp fuse.
  ModelBuilder r;
  r.input("x", DType::kF32, {"2", "4"})
      .input("w", DType::kF32, {"4", "3"})
      .initializer("bias", spread({3}, 12))
      .node("MatMul", {"x", "w"}, {"mm"})
      .node("Add", {"mm", "bias"}, {"a"})
      .node("Relu", {"a"}, {"r"})
      .node("Exp", {"r"}, {"y"})
      .output("y");
  ir::Graph g2 = fuse_and_compare(r, {{"x", spread({2, 4}, 13)}, {"w", spread({4, 3}, 14)}});
  EXPECT_EQ(count_op(g2, "Add"), 0);
  EXPECT_EQ(count_op(g2, "PointwiseChain"), 1);
}

TEST(FusePointwise, SingleNodesAreNotWrapped) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"})
      .node("Relu", {"x"}, {"r"})
      .node("Transpose", {"r"}, {"t"})
      .node("Exp", {"t"}, {"y"});
  b.output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread({3}, 15)}});
  EXPECT_EQ(count_op(g, "PointwiseChain"), 0);
  EXPECT_EQ(g.nodes.size(), 3u);
}

TEST(FusePointwise, HalfChainsWithCastsComputeInF32) {
  for (DType dt : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dt));
    ModelBuilder b;
    b.input("x", dt, {"4", "9"})
        .input("y", dt, {"9"})
        .node("Mul", {"x", "y"}, {"m"})
        .node("Sigmoid", {"m"}, {"s"})
        .node("Mul", {"s", "x"}, {"silu"})
        .node("Cast", {"silu"}, {"f"})
        .attr("to", int64_t{1})
        .node("Tanh", {"f"}, {"t"})
        .node("Cast", {"t"}, {"z"})
        .attr("to", int64_t{dt == DType::kF16 ? 10 : 16})
        .output("z")
        .output("f");
    // The unfused graph rounds to half after every node, the fused one only at casts and outputs.
    ir::Graph g =
        fuse_and_compare(b, {{"x", to_dtype(spread({4, 9}, 16), dt)}, {"y", to_dtype(spread({9}, 17), dt)}},
                         dt == DType::kF16 ? 4e-3 : 3e-2);
    ASSERT_EQ(g.nodes.size(), 1u);
    EXPECT_EQ(g.nodes[0].outputs, (std::vector<std::string>{"z", "f"}));
    EXPECT_EQ(g.value("f")->dtype, DType::kF32);
    EXPECT_EQ(g.value("z")->dtype, dt);
  }
}

TEST(FusePointwise, ClipAsAttributesBeforeOpset11) {
  ModelBuilder b(9);
  b.input("x", DType::kF32, {"8"})
      .node("Exp", {"x"}, {"e"})
      .node("Clip", {"e"}, {"y"})
      .attr("min", 0.5f)
      .attr("max", 2.f)
      .output("y");
  ir::Graph g = fuse_and_compare(b, {{"x", spread({8}, 18)}});
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].attr_floats("constants"), (std::vector<float>{0.5f, 2.f}));
}

TEST(FusePointwise, BuilderFusesAndTheEngineMatchesTheUnfusedGraph) {
  // Through Builder (the whole pipeline, the engine file's node and attribute encoding) with baked constants.
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", "6"})
      .initializer("k", f32_tensor({}, {1.25f}))
      .initializer("lo", f32_tensor({}, {-0.75f}))
      .node("Mul", {"x", "k"}, {"m"})
      .node("Tanh", {"m"}, {"t"})
      .node("Clip", {"t", "lo"}, {"c"})
      .node("HardSigmoid", {"c"}, {"y"})
      .attr("alpha", 0.4f)
      .output("y");
  std::map<std::string, Tensor> in = {{"x", spread({3, 6}, 31)}};
  auto want = run_cpu(import_inferred(b.bytes()), in);
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto engine = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  auto ctx = engine->create_context();
  auto got = ctx->infer(in);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  expect_match(*got, want, 0);
}

// --- the real models
// --------------------------------------------------------------------------------------------

std::map<std::string, Tensor> text_inputs(bool with_mask) {
  Tensor ids(DType::kI64, {2, 5}), mask(DType::kI64, {2, 5});
  for (int64_t i = 0; i < 10; ++i) {
    ids.data<int64_t>()[i] = (i * 53) % 30000;
    mask.data<int64_t>()[i] = i % 5 < 4 ? 1 : 0;
  }
  std::map<std::string, Tensor> in = {{"input_ids", ids}};
  if (with_mask) in["attention_mask"] = mask;
  return in;
}

TEST(FusePointwiseSkeleton, AllFourMatchTheirUnfusedGraphs) {
  struct Case {
    const char* name;
    std::map<std::string, Tensor> inputs;
  };
  std::vector<Case> cases = {{"bert_base", text_inputs(true)},
                             {"gpt2", text_inputs(false)},
                             {"resnet50", {{"image", random_f32({1, 3, 224, 224}, 21)}}},
                             {"vit_b_16", {{"image", random_f32({1, 3, 224, 224}, 22)}}}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto imported = onnx::import_model_bytes(testing::load_skeleton(c.name), ".", c.name);
    ASSERT_TRUE(imported.ok()) << imported.status().to_string();
    std::vector<passes::Pass> plain_passes;
    for (const auto& p : passes::default_pipeline())
      if (p.name != "fuse_pointwise") plain_passes.push_back(p);
    ir::Graph plain = std::move(*imported);
    ASSERT_TRUE(passes::run_pipeline(plain, plain_passes).ok());
    ir::Graph fused = plain;
    ASSERT_TRUE(passes::fuse_pointwise(fused).ok());
    ASSERT_TRUE(passes::eliminate_dead_code(fused).ok());
    Status s = passes::infer_shapes(fused);
    ASSERT_TRUE(s.ok()) << s.to_string();
    int chains = count_op(fused, "PointwiseChain");
    std::cout << c.name << ": " << chains << " PointwiseChain nodes, " << plain.nodes.size() << " -> "
              << fused.nodes.size() << " nodes\n";
    for (const auto& n : fused.nodes)
      if (n.op_type == "PointwiseChain")
        std::cout << "  " << n.name << ": " << n.attr_string("program", "") << "\n";
    EXPECT_LE(fused.nodes.size(), plain.nodes.size());
    // BERT's three embeddings (word + position + token type) sum in one chain.
    if (std::string(c.name) == "bert_base") EXPECT_GE(chains, 1);
    // (ResNet's and ViT's chains all went to the conv/GEMM epilogues and GELU before: nothing to run twice.)
    if (chains > 0) expect_match(run_cpu(fused, c.inputs), run_cpu(plain, c.inputs), 1e-5);
    // The builder runs the whole pipeline and round-trips the fused nodes through the engine file.
    BuildConfig cfg;
    cfg.backend = BackendKind::kCpu;
    auto engine = Builder::build_from_bytes(testing::load_skeleton(c.name), cfg);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  }
}

}  // namespace
}  // namespace kiln
