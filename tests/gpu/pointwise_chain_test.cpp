// kiln::PointwiseChain on the GPU (NVRTC-generated kernels) against the CPU reference interpreter: odd and
// large shapes, broadcasting (inputs smaller than the output in different dims, 0-d scalars), f32/f16/bf16,
// every function of the program language in long chains, bool Where conditions, several outputs of different
// dtypes, empty tensors; the process-wide compile cache; compile errors naming the node and the generated
// line; and an unfused ONNX chain built by the real pipeline into an engine on both backends.
#include <kiln_onnx/onnx.pb.h>

#include <cmath>

#include "backends/cuda/kernels/pointwise_chain.h"
#include "backends/cuda/nvrtc_compile.h"
#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"
#include "onnx/importer.h"
#include "passes/pass.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

std::vector<std::string> str_dims(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (auto x : d) s.push_back(std::to_string(x));
  return s;
}

struct In {
  DType dtype;
  std::vector<int64_t> dims;
};

// A model of one PointwiseChain node reading inputs a0, a1, … and writing y0, y1, …
ModelBuilder chain_model(const std::string& program, const std::vector<float>& constants,
                         const std::vector<In>& ins, int outputs) {
  ModelBuilder b(20);
  std::vector<std::string> in_names, out_names;
  for (size_t i = 0; i < ins.size(); ++i) {
    in_names.push_back("a" + std::to_string(i));
    b.input(in_names.back(), ins[i].dtype, str_dims(ins[i].dims));
  }
  for (int k = 0; k < outputs; ++k) out_names.push_back("y" + std::to_string(k));
  b.node("PointwiseChain", in_names, out_names, "chain").domain("kiln").attr("program", program);
  if (!constants.empty()) {
    auto* g = b.proto().mutable_graph();
    auto* a = g->mutable_node(g->node_size() - 1)->add_attribute();
    a->set_name("constants");
    a->set_type(kiln_onnx::AttributeProto::FLOATS);
    for (float f : constants) a->add_floats(f);
  }
  for (const auto& o : out_names) b.output(o);
  return b;
}

// Inputs in [-scale, scale) (bool: about half true).
std::map<std::string, Tensor> chain_inputs(const std::vector<In>& ins, uint64_t seed, double scale = 2.0) {
  std::map<std::string, Tensor> m;
  for (size_t i = 0; i < ins.size(); ++i) {
    Tensor t = gputest::random_tensor(DType::kF32, ins[i].dims, seed + i);
    for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] *= static_cast<float>(scale);
    Tensor out(ins[i].dtype, ins[i].dims);
    for (int64_t k = 0; k < t.numel(); ++k) {
      const float v = t.data<float>()[k];
      switch (ins[i].dtype) {
        case DType::kF16:
          out.data<uint16_t>()[k] = float_to_half(v);
          break;
        case DType::kBF16:
          out.data<uint16_t>()[k] = float_to_bf16(v);
          break;
        case DType::kBool:
          out.data<uint8_t>()[k] = v > 0;
          break;
        default:
          out.data<float>()[k] = v;
          break;
      }
    }
    m["a" + std::to_string(i)] = out;
  }
  return m;
}

// f32 chains: f32 math (erff, expf, powf…) vs the reference's double, a few ulps per step.
std::optional<gputest::Tolerance> tol(DType dt) {
  if (dt == DType::kF32) return gputest::Tolerance{2e-5, 2e-5};
  return std::nullopt;  // the harness's f16/bf16 defaults: one rounding of the output
}

void check(const std::string& program, const std::vector<float>& constants, const std::vector<In>& ins,
           int outputs = 1, uint64_t seed = 1, double scale = 2.0,
           std::optional<gputest::Tolerance> t = std::nullopt) {
  SCOPED_TRACE(program);
  DType main = DType::kF32;
  for (const In& i : ins)
    if (i.dtype != DType::kBool) main = i.dtype;
  gputest::expect_gpu_matches_cpu(chain_model(program, constants, ins, outputs),
                                  chain_inputs(ins, seed, scale), 1, t ? t : tol(main));
}

const DType kFloats[] = {DType::kF32, DType::kF16, DType::kBF16};

TEST(GpuPointwiseChain, OddShapesEveryDtype) {
  KILN_REQUIRE_GPU();
  const std::vector<std::vector<int64_t>> shapes = {{1},       {3},    {7},        {127},
                                                    {1000003}, {3, 7}, {127, 129}, {2, 3, 5, 7}};
  uint64_t seed = 1;
  for (DType dt : kFloats)
    for (const auto& s : shapes) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + dims_to_string(s));
      check("t0=mul(x0,x1);t1=erf(t0);y0=add(t1,c0)", {0.5f}, {{dt, s}, {dt, s}}, 1, seed += 3);
    }
}

TEST(GpuPointwiseChain, Broadcasting) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    SCOPED_TRACE(dtype_name(dt));
    // Bias on the last dim, per-row scale, a 0-d runtime scalar.
    check("t0=add(x0,x1);t1=mul(t0,x2);t2=sub(t1,x3);y0=tanh(t2)", {},
          {{dt, {2, 3, 127}}, {dt, {127}}, {dt, {3, 1}}, {dt, {}}}, 1, 10);
    // The output is larger than every input: [7,1,5] x [3,1] -> [7,3,5].
    check("t0=mul(x0,x1);y0=sigmoid(t0)", {}, {{dt, {7, 1, 5}}, {dt, {3, 1}}}, 1, 20);
    // Large with a broadcast channel dim (ResNet-like NCHW with a per-channel [C,1,1] operand).
    check("t0=mul(x0,x1);t1=add(t0,x2);y0=relu(t1)", {},
          {{dt, {2, 64, 57, 57}}, {dt, {64, 1, 1}}, {dt, {64, 1, 1}}}, 1, 30);
    // A one-element input of the output's rank next to a full one: the flat kernel's scalar path.
    check("t0=div(x0,x1);y0=exp(t0)", {}, {{dt, {5, 1001}}, {dt, {1, 1}}}, 1, 40);
  }
}

TEST(GpuPointwiseChain, EveryFunctionInChainsOfEight) {
  KILN_REQUIRE_GPU();
  const std::vector<std::pair<std::string, std::vector<float>>> chains = {
      {"t0=mul(x0,x1);t1=gelu(t0);t2=add(t1,x2);t3=sigmoid(t2);t4=sub(t3,c0);t5=pow(t4,c1);t6=sqrt(t5);"
       "y0=max(t6,x0)",
       {0.25f, 2.f}},
      // Every chain reads all three inputs (a node's program must read each of its inputs).
      {"t0=gelu_tanh(x0);t1=leaky_relu(t0,c0);t2=hard_sigmoid(t1,c1,c2);t3=clip(t2,x2,c3);t4=softplus(x1);"
       "t5=elu(t4,c4);t6=hard_swish(t5);y0=min(t6,t3)",
       {0.1f, 0.2f, 0.5f, 0.9f, 1.5f}},
      {"t0=abs(x0);t1=log(t0);t2=neg(t1);t3=exp(t2);t4=reciprocal(t3);t5=tanh(t4);t6=prelu(x1,x2);"
       "y0=div(t5,t6)",
       {}},
      {"t0=relu(x0);t1=erf(x1);t2=mul(t0,t1);t3=add(t2,c0);t4=log(t3);t5=clip(t4,x2,c1);t6=mul(t5,t5);"
       "y0=sub(t6,c2)",
       {3.5f, 0.75f, 0.125f}},
  };
  uint64_t seed = 100;
  for (DType dt : kFloats)
    for (const auto& [prog, consts] : chains) {
      SCOPED_TRACE(dtype_name(dt));
      check(prog, consts, {{dt, {127, 33}}, {dt, {127, 33}}, {dt, {33}}}, 1, seed += 5, 3.0);
    }
}

TEST(GpuPointwiseChain, WhereWithBoolCondition) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    SCOPED_TRACE(dtype_name(dt));
    check("t0=where(x0,x1,x2);y0=relu(t0)", {}, {{DType::kBool, {3, 1000}}, {dt, {3, 1000}}, {dt, {3, 1000}}},
          1, 50);
    // Broadcast condition (an attention-style mask) and a constant other branch.
    check("t0=mul(x1,c0);y0=where(x0,t0,c1)", {0.125f, -3.5f},
          {{DType::kBool, {1, 1, 7, 7}}, {dt, {2, 3, 7, 7}}}, 1, 60);
  }
}

TEST(GpuPointwiseChain, SeveralOutputsAndCasts) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dt));
    // y1 is f32, y0 back in dt; the intermediate cast to f16 rounds where the program says so.
    check("y1=cast_f32(x0);t0=mul(y1,x1);t1=cast_f16(t0);t2=cast_f32(t1);y0=" +
              std::string(dt == DType::kF16 ? "cast_f16" : "cast_bf16") + "(t2)",
          {}, {{dt, {3, 131}}, {DType::kF32, {131}}}, 2, 70);
  }
  check("y0=exp(x0);y1=neg(y0);y2=add(y1,x0)", {}, {{DType::kF32, {999}}}, 3, 80);
}

TEST(GpuPointwiseChain, EmptyTensors) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    check("t0=add(x0,x1);y0=relu(t0)", {}, {{dt, {0, 5}}, {dt, {5}}}, 1, 90);
    check("t0=add(x0,x1);y0=relu(t0)", {}, {{dt, {3, 0}}, {dt, {3, 1}}}, 1, 91);
  }
}

TEST(GpuPointwiseChain, EachDistinctKernelCompilesOnce) {
  KILN_REQUIRE_GPU();
  const std::vector<In> ins = {{DType::kF32, {4, 77}}, {DType::kF32, {77}}};
  // A program no other test uses.
  const std::string prog = "t0=sub(x0,x1);t1=abs(t0);y0=mul(t1,c0)";
  const int before = cuda::nvrtc_compile_count();
  check(prog, {0.375f}, ins, 1, 5);
  const int after_first = cuda::nvrtc_compile_count();
  EXPECT_EQ(after_first - before, 1);
  check(prog, {0.375f}, ins, 1, 6);  // same program, dtypes, constants: cached
  check(prog, {0.375f}, {{DType::kF32, {9, 3, 77}}, {DType::kF32, {3, 77}}}, 1,
        7);  // other shapes: same kernel
  EXPECT_EQ(cuda::nvrtc_compile_count(), after_first);
  check(prog, {0.5f}, ins, 1, 8);  // another constant is another kernel
  EXPECT_EQ(cuda::nvrtc_compile_count(), after_first + 1);
}

// NVRTC needs no device: these run (and catch generator mistakes) on the CPU-only build machines too.
TEST(PointwiseChainCodegen, GeneratedSourceCompilesForSm90WithoutADevice) {
  struct Case {
    std::string program;
    std::vector<float> constants;
    std::vector<DType> in, out;
  };
  std::vector<Case> cases;
  for (DType dt : kFloats) {
    cases.push_back({"t0=mul(x0,x1);t1=erf(t0);y0=add(t1,c0)", {0.5f}, {dt, dt}, {dt}});
    cases.push_back(
        {"t0=gelu_tanh(x0);t1=leaky_relu(t0,c0);t2=hard_sigmoid(t1,c1,c2);t3=clip(t2,c3,c4);"
         "t4=softplus(x1);t5=elu(t4,c5);t6=hard_swish(t5);y0=min(t6,t3)",
         {0.1f, 0.2f, 0.5f, -INFINITY, INFINITY, 1.f},
         {dt, dt},
         {dt}});
    cases.push_back(
        {"t0=abs(x0);t1=log(t0);t2=neg(t1);t3=exp(t2);t4=reciprocal(t3);t5=tanh(t4);t6=prelu(x1,x2);"
         "t7=div(t5,t6);t8=pow(t7,x1);t9=sqrt(t8);t10=sigmoid(t9);t11=gelu(t10);t12=max(t11,x0);"
         "t13=sub(t12,x1);y0=relu(t13)",
         {},
         {dt, dt, dt},
         {dt}});
    cases.push_back(
        {"t0=where(x0,x1,c0);y0=relu(t0);y1=cast_f32(y0)", {-1e30f}, {DType::kBool, dt}, {dt, DType::kF32}});
  }
  cases.push_back({"y1=cast_f32(x0);t0=mul(y1,x1);t1=cast_f16(t0);t2=cast_bf16(t1);y0=cast_f32(t2)",
                   {},
                   {DType::kBF16, DType::kF32},
                   {DType::kF32, DType::kF32}});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.program + " " + std::string(dtype_name(c.in[0])));
    ir::Node node;
    node.name = "chain";
    node.op_type = "PointwiseChain";
    node.domain = "kiln";
    node.attrs["program"] = ir::Attribute::of_string(c.program);
    if (!c.constants.empty()) node.attrs["constants"] = ir::Attribute::of_floats(c.constants);
    for (size_t i = 0; i < c.in.size(); ++i) node.inputs.push_back("a" + std::to_string(i));
    for (size_t i = 0; i < c.out.size(); ++i) node.outputs.push_back("y" + std::to_string(i));
    auto src = cuda::pointwise_chain_source(node, c.in, c.out);
    ASSERT_TRUE(src.ok()) << src.status().to_string();
    EXPECT_NE(src->source.find("// kiln PointwiseChain: " + c.program), std::string::npos);
    if (!c.constants.empty()) {
      EXPECT_NE(src->source.find("#define c0 __int_as_float(0x"), std::string::npos);
    }
    auto image = cuda::nvrtc_compile(src->source, 90, "node 'chain' (PointwiseChain)");
    ASSERT_TRUE(image.ok()) << image.status().to_string() << "\n" << src->source;
    EXPECT_GT(image->size(), 1000u);
  }
  // The key changes with what changes the source: constants and dtypes.
  ir::Node node;
  node.name = "k";
  node.op_type = "PointwiseChain";
  node.attrs["program"] = ir::Attribute::of_string("y0=add(x0,c0)");
  node.attrs["constants"] = ir::Attribute::of_floats({1.f});
  node.inputs = {"a"};
  node.outputs = {"y"};
  auto k1 = cuda::pointwise_chain_source(node, {DType::kF32}, {DType::kF32});
  auto k2 = cuda::pointwise_chain_source(node, {DType::kF16}, {DType::kF16});
  node.attrs["constants"] = ir::Attribute::of_floats({2.f});
  auto k3 = cuda::pointwise_chain_source(node, {DType::kF32}, {DType::kF32});
  ASSERT_TRUE(k1.ok() && k2.ok() && k3.ok());
  EXPECT_NE(k1->key, k2->key);
  EXPECT_NE(k1->key, k3->key);
  // Bad nodes are errors that name them.
  node.attrs["program"] = ir::Attribute::of_string("y0=add(x0,c1)");
  auto bad = cuda::pointwise_chain_source(node, {DType::kF32}, {DType::kF32});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("node 'k'"), std::string::npos) << bad.status().to_string();
}

TEST(PointwiseChainCodegen, CompileErrorNamesNodeAndGeneratedLine) {
  const std::string source =
      "// test\nextern \"C\" __global__ void k(float* p) {\n  p[0] = undefined_thing;\n}\n";
  auto r = cuda::nvrtc_compile(source, 90, "node 'bad' (PointwiseChain)");
  ASSERT_FALSE(r.ok());
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("node 'bad' (PointwiseChain)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("undefined_thing"), std::string::npos) << msg;
  EXPECT_NE(msg.find("generated line 3:   p[0] = undefined_thing;"), std::string::npos) << msg;
}

TEST(GpuPointwiseChain, CacheKeepsFailuresAndLoadsGoodKernels) {
  KILN_REQUIRE_GPU();
  const std::string source = "extern \"C\" __global__ void k(float* p) {\n  p[0] = undefined_thing;\n}\n";
  int calls = 0;
  for (int i = 0; i < 2; ++i) {
    auto r = cuda::nvrtc_kernels(
        "test:compile-error",
        [&] {
          ++calls;
          return source;
        },
        {"k"}, "node 'bad'");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("generated line 2:   p[0] = undefined_thing;"), std::string::npos)
        << r.status().message();
  }
  EXPECT_EQ(calls, 1);  // the failure is cached, not recompiled
  auto ok = cuda::nvrtc_kernels(
      "test:compile-ok",
      [] { return std::string("extern \"C\" __global__ void k(float* p) { p[0] = 1.f; }\n"); }, {"k"},
      "node 'good'");
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  ASSERT_EQ((*ok)->kernels.size(), 1u);
  EXPECT_NE((*ok)->kernels[0], nullptr);
  EXPECT_EQ((*ok)->arch, cuda::current_device_arch());
}

TEST(GpuPointwiseChain, UnfusedOnnxChainThroughThePipeline) {
  KILN_REQUIRE_GPU();
  // SiLU, a bias, a tanh GELU's pieces, Clip from inputs and a Where: fused by the default pipeline.
  for (DType dt : kFloats) {
    SCOPED_TRACE(dtype_name(dt));
    ModelBuilder b(17);
    b.input("x", dt, {"batch", "257"})
        .input("bias", dt, {"257"})
        .input("mask", DType::kBool, {"batch", "1"})
        .node("Add", {"x", "bias"}, {"a"})
        .node("Sigmoid", {"a"}, {"s"})
        .node("Mul", {"a", "s"}, {"silu"})
        .node("Tanh", {"silu"}, {"t"})
        .node("LeakyRelu", {"t"}, {"l"})
        .attr("alpha", 0.05f)
        .node("Where", {"mask", "l", "x"}, {"y"})
        .output("y");
    auto g = onnx::import_model_bytes(b.bytes(), ".", "chain");
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    ASSERT_TRUE(passes::run_pipeline(*g, passes::default_pipeline()).ok());
    ASSERT_EQ(g->nodes.size(), 1u);
    EXPECT_EQ(g->nodes[0].op_type, "PointwiseChain");
    std::map<std::string, Tensor> inputs =
        chain_inputs({{dt, {5, 257}}, {dt, {257}}, {DType::kBool, {5, 1}}}, 300);
    std::map<std::string, Tensor> named = {
        {"x", inputs["a0"]}, {"bias", inputs["a1"]}, {"mask", inputs["a2"]}};
    std::map<std::string, Tensor> out[2];
    for (BackendKind kind : {BackendKind::kCpu, BackendKind::kCuda}) {
      BuildConfig cfg;
      cfg.backend = kind;
      auto e = Builder::build_from_bytes(b.bytes(), cfg);
      ASSERT_TRUE(e.ok()) << e.status().to_string();
      auto ctx = e->create_context();
      ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
      auto r = ctx->infer(named);
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      out[kind == BackendKind::kCuda] = *r;
    }
    const Tensor& want = out[0].at("y");
    const Tensor& got = out[1].at("y");
    ASSERT_EQ(got.dims(), want.dims());
    ASSERT_EQ(got.dtype(), want.dtype());
    const gputest::Tolerance t = tol(dt) ? *tol(dt) : gputest::default_tolerance(dt);
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double a = got.get_as_double(i), e = want.get_as_double(i);
      ASSERT_LE(std::fabs(a - e), t.atol + t.rtol * std::fabs(e)) << "y[" << i << "]";
    }
  }
}

}  // namespace
}  // namespace kiln
