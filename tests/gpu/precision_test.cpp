// --fp16 / --bf16 CUDA engines against the CPU f32 reference: a transformer block, the real ResNet-50 and
// BERT graphs, fp32_layers kept in f32; f16 LayerNormalization/Softmax on magnitudes whose squares overflow
// f16; cuBLASLt on batch slices at 2-byte offsets.
#include <cmath>
#include <functional>
#include <optional>

#include "gpu/norm_reduce_test_util.h"
#include "kiln/kiln.h"
#include "engine/engine_state.h"
#include "support/skeleton.h"

namespace kiln {
namespace {

using testing::ModelBuilder;
using testing::random_f32;

double cosine(const Tensor& a, const Tensor& b) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.get_as_double(i), y = b.get_as_double(i);
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / std::sqrt(aa * bb + 1e-300);
}

Result<Engine> build(const std::string& bytes, BackendKind backend, Precision p,
                     std::vector<std::string> fp32_layers = {},
                     std::vector<std::string>* progress = nullptr) {
  BuildConfig cfg;
  cfg.backend = backend;
  cfg.precision = p;
  cfg.fp32_layers = std::move(fp32_layers);
  if (progress) cfg.progress = [progress](std::string_view s) { progress->emplace_back(s); };
  return Builder::build_from_bytes(bytes, cfg);
}

std::map<std::string, Tensor> infer(const Engine& e, const std::map<std::string, Tensor>& inputs) {
  auto ctx = e.create_context();
  EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
  if (!ctx.ok()) return {};
  auto out = ctx->infer(inputs);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::map<std::string, Tensor>{};
}

// Runs the model as an f16/bf16 CUDA engine and as an f32 CPU engine; outputs keep their dtype and agree.
void expect_reduced_engine_matches(const std::string& bytes, Precision p,
                                   const std::map<std::string, Tensor>& inputs, double min_cosine,
                                   std::vector<std::string> fp32_layers = {},
                                   std::optional<gputest::Tolerance> tol = std::nullopt) {
  auto ref = build(bytes, BackendKind::kCpu, Precision::kF32);
  ASSERT_TRUE(ref.ok()) << ref.status().to_string();
  auto gpu = build(bytes, BackendKind::kCuda, p, fp32_layers);
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  EXPECT_EQ(gpu->info().precision, precision_name(p));
  EXPECT_EQ(gpu->info().fp32_layers, fp32_layers);
  ASSERT_EQ(gpu->inputs().size(), ref->inputs().size());
  for (size_t i = 0; i < ref->inputs().size(); ++i) EXPECT_EQ(gpu->inputs()[i].dtype, ref->inputs()[i].dtype);
  for (size_t i = 0; i < ref->outputs().size(); ++i)
    EXPECT_EQ(gpu->outputs()[i].dtype, ref->outputs()[i].dtype);
  // The engine really computes in the reduced dtype.
  const DType target = p == Precision::kF16 ? DType::kF16 : DType::kBF16;
  int reduced = 0;
  for (const auto& [name, v] : gpu->state()->graph->values) reduced += v.dtype == target;
  EXPECT_GT(reduced, 0) << "no value in " << dtype_name(target);
  auto want = infer(*ref, inputs);
  auto got = infer(*gpu, inputs);
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    const Tensor& o = got.at(name);
    ASSERT_EQ(o.dtype(), w.dtype()) << name;
    ASSERT_EQ(o.dims(), w.dims()) << name;
    for (int64_t i = 0; i < o.numel(); ++i)
      ASSERT_TRUE(std::isfinite(o.get_as_double(i))) << name << "[" << i << "]";
    EXPECT_GE(cosine(o, w), min_cosine) << name;
  }
  if (tol) gputest::compare_outputs(want, got, tol);
}

// LayerNorm -> MatMul+bias -> Tanh -> MatMul+bias -> residual -> Softmax.
ModelBuilder block() {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", "7", "64"})
      .initializer("gamma", random_f32({64}, 11))
      .initializer("beta", random_f32({64}, 12))
      .node("LayerNormalization", {"x", "gamma", "beta"}, {"ln"}, "ln")
      .initializer("w1", random_f32({64, 96}, 13))
      .initializer("b1", random_f32({96}, 14))
      .node("MatMul", {"ln", "w1"}, {"h1"}, "fc1")
      .node("Add", {"h1", "b1"}, {"h1b"}, "fc1_bias")
      .node("Tanh", {"h1b"}, {"act"}, "act")
      .initializer("w2", random_f32({96, 64}, 15))
      .initializer("b2", random_f32({64}, 16))
      .node("MatMul", {"act", "w2"}, {"h2"}, "fc2")
      .node("Add", {"h2", "b2"}, {"h2b"}, "fc2_bias")
      .node("Add", {"h2b", "x"}, {"res"}, "residual")
      .node("Softmax", {"res"}, {"y"}, "softmax")
      .attr("axis", int64_t{-1})
      .output("y", DType::kF32, {"batch", "7", "64"});
  return b;
}

TEST(GpuPrecision, BlockEnginesMatchCpuF32) {
  KILN_REQUIRE_GPU();
  Tensor x = random_f32({3, 7, 64}, 21);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] *= 3.f;
  {
    SCOPED_TRACE("f16");
    expect_reduced_engine_matches(block().bytes(), Precision::kF16, {{"x", x}}, 0.999, {},
                                  gputest::Tolerance{1e-2, 2e-3});
  }
  {
    SCOPED_TRACE("bf16");
    expect_reduced_engine_matches(block().bytes(), Precision::kBF16, {{"x", x}}, 0.999);
  }
}

TEST(GpuPrecision, Fp32LayersStayF32InTheCudaEngine) {
  KILN_REQUIRE_GPU();
  std::vector<std::string> lines;
  auto e = build(block().bytes(), BackendKind::kCuda, Precision::kF16, {"softmax", "ln"}, &lines);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  // The build reports what stays f32 and why.
  bool reported = false;
  for (const auto& l : lines)
    reported |= l.find("pass convert_precision:") != std::string::npos &&
                l.find("Softmax (named in fp32_layers) x1") != std::string::npos;
  EXPECT_TRUE(reported) << "no convert_precision summary naming the fp32 layers";
  const ir::Graph& g = *e->state()->graph;
  int checked = 0;
  for (const auto& n : g.nodes) {
    if (n.name != "softmax" && n.name != "ln") continue;
    ++checked;
    EXPECT_EQ(g.values.at(n.inputs[0]).dtype, DType::kF32) << n.name;
    EXPECT_EQ(g.values.at(n.outputs[0]).dtype, DType::kF32) << n.name;
  }
  EXPECT_EQ(checked, 2);
  EXPECT_NE(e->info().manifest_json.find("\"softmax\""), std::string::npos);
  Tensor x = random_f32({2, 7, 64}, 22);
  expect_reduced_engine_matches(block().bytes(), Precision::kF16, {{"x", x}}, 0.999, {"softmax", "ln"});
}

TEST(GpuPrecision, UnknownFp32LayerIsAnError) {
  KILN_REQUIRE_GPU();
  auto e = build(block().bytes(), BackendKind::kCuda, Precision::kF16, {"softmx"});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("'softmax'"), std::string::npos) << e.status().message();
}

TEST(GpuPrecision, ResNet50F16MatchesCpuF32) {
  KILN_REQUIRE_GPU();
  Tensor image = random_f32({2, 3, 224, 224}, 31);
  for (Precision p : {Precision::kF16, Precision::kBF16}) {
    SCOPED_TRACE(std::string(precision_name(p)));
    expect_reduced_engine_matches(testing::load_skeleton("resnet50"), p, {{"image", image}},
                                  p == Precision::kF16 ? 0.999 : 0.99);
  }
}

TEST(GpuPrecision, BertF16MatchesCpuF32) {
  KILN_REQUIRE_GPU();
  Tensor ids(DType::kI64, {2, 9}), mask(DType::kI64, {2, 9});
  for (int64_t i = 0; i < 18; ++i) {
    ids.data<int64_t>()[i] = (i * 37) % 30522;
    mask.data<int64_t>()[i] = i % 9 < 7 ? 1 : 0;  // padded tails: the mask constant must stay finite in f16
  }
  for (Precision p : {Precision::kF16, Precision::kBF16}) {
    SCOPED_TRACE(std::string(precision_name(p)));
    expect_reduced_engine_matches(testing::load_skeleton("bert_base"), p,
                                  {{"input_ids", ids}, {"attention_mask", mask}},
                                  p == Precision::kF16 ? 0.999 : 0.99);
  }
}

// ---- Kernels in f16 on magnitudes ~1e4: x^2 ~ 1e8 overflows f16, so statistics must accumulate in f32 -----

// Runs the model in the inputs' reduced dtype on the GPU executor, and in f32 with the same (rounded) values
// on the CPU reference; every GPU output must be finite and within tol of the f32 result.
void expect_reduced_matches_f32_reference(const std::function<ModelBuilder(DType)>& model, DType dt,
                                          const std::map<std::string, Tensor>& inputs,
                                          gputest::Tolerance tol) {
  std::map<std::string, Tensor> inputs32;
  for (const auto& [name, t] : inputs) {
    Tensor w(DType::kF32, t.dims());
    for (int64_t i = 0; i < t.numel(); ++i) w.data<float>()[i] = static_cast<float>(t.get_as_double(i));
    inputs32[name] = w;
  }
  auto import = [](const ModelBuilder& b) {
    auto g = onnx::import_model_bytes(b.bytes(), ".", "gpu test");
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    EXPECT_TRUE(passes::infer_shapes(*g).ok());
    return std::make_shared<const ir::Graph>(std::move(*g));
  };
  cpu::GraphExecutor cpu_exec(import(model(DType::kF32)));
  auto want = cpu_exec.run(inputs32);
  ASSERT_TRUE(want.ok()) << want.status().to_string();
  auto gpu_exec = cuda::GraphExecutor::create(import(model(dt)), false);
  ASSERT_TRUE(gpu_exec.ok()) << gpu_exec.status().to_string();
  auto got = (*gpu_exec)->run(inputs);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_GE((*gpu_exec)->last_stats().gpu_nodes, 1) << "the node fell back to the CPU";
  for (const auto& [name, w] : *want) {
    const Tensor& o = got->at(name);
    ASSERT_EQ(o.dtype(), dt) << name;
    ASSERT_EQ(o.dims(), w.dims()) << name;
    int64_t bad = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
      const double a = o.get_as_double(i), e = w.get_as_double(i);
      ASSERT_TRUE(std::isfinite(a)) << name << "[" << i << "] = " << a;
      if (!(std::fabs(a - e) <= tol.atol + tol.rtol * std::fabs(e)) && bad++ < 5)
        ADD_FAILURE() << name << "[" << i << "]: gpu " << a << " vs cpu f32 " << e;
    }
    EXPECT_EQ(bad, 0) << name << ": " << bad << " of " << w.numel() << " elements differ";
  }
}

TEST(GpuPrecision, LayerNormF16AtMagnitude1e4) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kF16, DType::kBF16})
    for (int64_t d : {1, 3, 7, 127, 768, 4097}) {
      SCOPED_TRACE(gputest::dname(dt) + " d=" + std::to_string(d));
      auto model = [&](DType t) {
        ModelBuilder b(17);
        b.input("x", t, {"5", std::to_string(d)})
            .input("g", t, {std::to_string(d)})
            .input("b", t, {std::to_string(d)})
            .node("LayerNormalization", {"x", "g", "b"}, {"y"}, "ln")
            .attr("epsilon", 1e-5f)
            .output("y");
        return b;
      };
      // d == 1: the row is its own mean and the output is exactly the bias.
      const gputest::Tolerance tol =
          dt == DType::kF16 ? gputest::Tolerance{4e-3, 4e-3} : gputest::Tolerance{2e-2, 2e-2};
      expect_reduced_matches_f32_reference(model, dt,
                                           {{"x", gputest::uniform_tensor(dt, {5, d}, 40 + d, 9.9e3, 1.01e4)},
                                            {"g", gputest::uniform_tensor(dt, {d}, 41, 0.5, 1.5)},
                                            {"b", gputest::uniform_tensor(dt, {d}, 42, -1, 1)}},
                                           tol);
    }
}

TEST(GpuPrecision, SoftmaxF16AtMagnitude1e4) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"Softmax", "LogSoftmax"})
    for (DType dt : {DType::kF16, DType::kBF16})
      for (int64_t n : {1, 3, 7, 127, 1000, 4097}) {
        SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt) + " n=" + std::to_string(n));
        auto model = [&](DType t) {
          ModelBuilder b(17);
          b.input("x", t, {"6", std::to_string(n)})
              .node(op, {"x"}, {"y"}, "sm")
              .attr("axis", int64_t{-1})
              .output("y");
          return b;
        };
        // exp(1e4) overflows everything: only max subtraction in f32 gives finite results.
        Tensor x = gputest::uniform_tensor(dt, {6, n}, 50 + n, 9.98e3, 1.002e4);
        const gputest::Tolerance tol =
            dt == DType::kF16 ? gputest::Tolerance{4e-3, 1e-3} : gputest::Tolerance{2e-2, 8e-3};
        expect_reduced_matches_f32_reference(model, dt, {{"x", x}}, tol);
      }
}

TEST(GpuPrecision, LayerNormAndSoftmaxEngineAtMagnitude1e4) {
  KILN_REQUIRE_GPU();
  // f32 I/O, --fp16 engine: the input Cast, LayerNorm and Softmax all run in f16. The inputs are 1e4 + 8k,
  // exact in f16 (its spacing there is 8), so any difference from the f32 reference comes from the kernels.
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"4", "768"})
      .initializer("gamma", random_f32({768}, 61))
      .initializer("beta", random_f32({768}, 62))
      .node("LayerNormalization", {"x", "gamma", "beta"}, {"ln"}, "ln")
      .node("Softmax", {"x"}, {"sm"}, "softmax")
      .attr("axis", int64_t{-1})
      .output("ln", DType::kF32, {"4", "768"})
      .output("sm", DType::kF32, {"4", "768"});
  Tensor x = random_f32({4, 768}, 63);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float r = x.data<float>()[i];
    // Rows 0-1: k in [-6, 6] (spread 96: squares ~1e8); rows 2-3: k in [-1, 1] (a softmax over many
    // near-ties).
    x.data<float>()[i] = 1e4f + 8.f * std::round(r * (i < 2 * 768 ? 6.f : 1.f));
  }
  expect_reduced_engine_matches(b.bytes(), Precision::kF16, {{"x", x}}, 0.999, {},
                                gputest::Tolerance{4e-3, 2e-3});
}

// ---- cuBLASLt with operands at 2-byte offsets (general batch broadcast with odd matrix sizes) -------------

TEST(GpuPrecision, MatMulBatchSlicesAtOddOffsets) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kF16, DType::kBF16, DType::kF32})
    for (auto [a, b] : {std::pair<std::vector<int64_t>, std::vector<int64_t>>{{2, 1, 5, 7}, {1, 3, 7, 3}},
                        {{3, 1, 1, 9}, {1, 2, 9, 5}},
                        {{2, 1, 33, 65}, {1, 3, 65, 17}}}) {
      SCOPED_TRACE(gputest::dname(dt) + " " + dims_to_string(a) + " x " + dims_to_string(b));
      ModelBuilder m;
      m.input("a", dt, gputest::sdims(a))
          .input("b", dt, gputest::sdims(b))
          .node("MatMul", {"a", "b"}, {"y"})
          .output("y");
      std::optional<gputest::Tolerance> tol;
      if (dt == DType::kF32) tol = gputest::Tolerance{1e-4, 1e-4};
      if (dt == DType::kF16) tol = gputest::Tolerance{5e-3, 5e-3};
      if (dt == DType::kBF16) tol = gputest::Tolerance{2e-2, 2e-2};
      gputest::expect_on_device(
          m, {{"a", gputest::random_tensor(dt, a, 70)}, {"b", gputest::random_tensor(dt, b, 71)}}, 1, tol);
    }
}

}  // namespace
}  // namespace kiln
