// --fp16/--bf16 as a whole, on the CPU: graphs converted by convert_precision (after the default pipeline, as
// the builder does for CUDA engines) run on the CPU reference (f16 widened to f32 per kernel) and agree with
// the f32 graph; I/O dtypes stay; fp32_layers stay f32; the real models' graphs convert and re-infer.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <set>

#include "backends/cpu/executor.h"
#include "kiln/kiln.h"
#include "onnx/exporter.h"
#include "onnx/importer.h"
#include "passes/convert_precision.h"
#include "passes/pass.h"
#include "support/model_builder.h"
#include "support/skeleton.h"
#ifdef KILN_WITH_CUDA
#include "backends/cuda/kernel.h"
#endif

namespace kiln {
namespace {

using testing::ModelBuilder;
using testing::random_f32;

ir::Graph optimized(const std::string& bytes) {
  auto g = onnx::import_model_bytes(bytes, ".", "test");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  if (!g.ok()) return {};
  Status s = passes::run_pipeline(*g, passes::default_pipeline());
  EXPECT_TRUE(s.ok()) << s.to_string();
  return std::move(*g);
}

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

std::map<std::string, Tensor> run_cpu(const ir::Graph& g, const std::map<std::string, Tensor>& inputs) {
  cpu::GraphExecutor ex(std::make_shared<const ir::Graph>(g));
  auto out = ex.run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::map<std::string, Tensor>{};
}

const ir::Node* node_named(const ir::Graph& g, const std::string& name) {
  for (const auto& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

// A transformer-style block: LayerNorm -> MatMul+bias -> Tanh-GELU-ish -> MatMul+bias -> residual -> Softmax.
ModelBuilder block() {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", "5", "16"})
      .initializer("gamma", random_f32({16}, 11))
      .initializer("beta", random_f32({16}, 12))
      .node("LayerNormalization", {"x", "gamma", "beta"}, {"ln"}, "ln")
      .attr("axis", int64_t{-1})
      .initializer("w1", random_f32({16, 32}, 13))
      .initializer("b1", random_f32({32}, 14))
      .node("MatMul", {"ln", "w1"}, {"h1"}, "fc1")
      .node("Add", {"h1", "b1"}, {"h1b"}, "fc1_bias")
      .node("Tanh", {"h1b"}, {"act"}, "act")
      .initializer("w2", random_f32({32, 16}, 15))
      .initializer("b2", random_f32({16}, 16))
      .node("MatMul", {"act", "w2"}, {"h2"}, "fc2")
      .node("Add", {"h2", "b2"}, {"h2b"}, "fc2_bias")
      .node("Add", {"h2b", "x"}, {"res"}, "residual")
      .node("Softmax", {"res"}, {"y"}, "softmax")
      .attr("axis", int64_t{-1})
      .output("y", DType::kF32, {"batch", "5", "16"});
  return b;
}

TEST(ReducedPrecision, F16GraphOnCpuMatchesF32) {
  for (DType target : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(std::string(dtype_name(target)));
    const ir::Graph f32 = optimized(block().bytes());
    ir::Graph half = f32;
    passes::PrecisionOptions opt;
    opt.target = target;
    opt.fp32_layers = {"softmax"};
    ASSERT_TRUE(passes::convert_precision(half, opt).ok());
    // I/O as the model declares it.
    EXPECT_EQ(half.inputs, f32.inputs);
    EXPECT_EQ(half.outputs, f32.outputs);
    EXPECT_EQ(half.values.at("x").dtype, DType::kF32);
    EXPECT_EQ(half.values.at("y").dtype, DType::kF32);
    // The fp32 layer reads and writes f32; the nodes before it compute in the target.
    const ir::Node* sm = node_named(half, "softmax");
    ASSERT_NE(sm, nullptr);
    EXPECT_EQ(half.values.at(sm->inputs[0]).dtype, DType::kF32);
    EXPECT_EQ(half.values.at(sm->outputs[0]).dtype, DType::kF32);
    int in_target = 0;
    for (const auto& n : half.nodes)
      if (n.op_type != "Cast" && !n.outputs.empty() && half.values.at(n.outputs[0]).dtype == target)
        ++in_target;
    EXPECT_GE(in_target, 4) << "LayerNorm, the matmuls and the activation compute in the target";
    for (const auto& [name, t] : half.initializers)
      if (is_float(t.dtype())) EXPECT_EQ(t.dtype(), target) << name;

    Tensor x = random_f32({3, 5, 16}, 99);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] *= 4.f;
    auto want = run_cpu(f32, {{"x", x}});
    auto got = run_cpu(half, {{"x", x}});
    ASSERT_TRUE(got.count("y") && want.count("y"));
    EXPECT_EQ(got.at("y").dtype(), DType::kF32);
    EXPECT_EQ(got.at("y").dims(), want.at("y").dims());
    EXPECT_GE(cosine(got.at("y"), want.at("y")), 0.999);
  }
}

TEST(ReducedPrecision, ConvertedGraphRoundTripsThroughTheEngineFormat) {
  // A CUDA f16 engine stores its converted graph: f16 weights, Casts and value dtypes must survive
  // export/import.
  ir::Graph half = optimized(block().bytes());
  passes::PrecisionOptions opt;
  opt.fp32_layers = {"softmax"};
  ASSERT_TRUE(passes::convert_precision(half, opt).ok());
  std::string weights;
  const std::string bytes = onnx::export_model(half, &weights);
  auto back = onnx::import_model_bytes(bytes, ".", "engine graph", weights);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_TRUE(passes::infer_shapes(*back).ok());
  ASSERT_EQ(back->nodes.size(), half.nodes.size());
  for (const auto& [name, t] : half.initializers) {
    ASSERT_TRUE(back->is_constant(name)) << name;
    EXPECT_EQ(back->initializers.at(name).dtype(), t.dtype()) << name;
  }
  for (const auto& [name, v] : half.values)
    if (back->values.count(name)) EXPECT_EQ(back->values.at(name).dtype, v.dtype) << name;
  Tensor x = random_f32({2, 5, 16}, 7);
  auto a = run_cpu(half, {{"x", x}});
  auto c = run_cpu(*back, {{"x", x}});
  ASSERT_TRUE(a.count("y") && c.count("y"));
  for (int64_t i = 0; i < a.at("y").numel(); ++i)
    ASSERT_EQ(a.at("y").get_as_double(i), c.at("y").get_as_double(i));
}

TEST(ReducedPrecision, CpuBuilderRecordsPrecisionAndFp32Layers) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.precision = Precision::kF16;
  cfg.fp32_layers = {"softmax", "fc1_bias"};
  std::vector<std::string> lines;
  cfg.progress = [&](std::string_view s) { lines.emplace_back(s); };
  auto e = Builder::build_from_bytes(block().bytes(), cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_EQ(e->info().precision, "f16");
  EXPECT_EQ(e->info().fp32_layers, cfg.fp32_layers);
  EXPECT_NE(e->info().manifest_json.find("\"fp32_layers\""), std::string::npos);
  bool said_f32 = false;
  for (const auto& l : lines) said_f32 |= l.find("CPU backend computes in f32") != std::string::npos;
  EXPECT_TRUE(said_f32) << "the build says the CPU backend stays f32";
  // The CPU engine computes in f32: its I/O is the model's.
  ASSERT_EQ(e->inputs().size(), 1u);
  EXPECT_EQ(e->inputs()[0].dtype, DType::kF32);
  EXPECT_EQ(e->outputs()[0].dtype, DType::kF32);
  // Saved and loaded, the manifest still says so.
  auto bytes = e->serialize();
  ASSERT_TRUE(bytes.ok());
  auto loaded = Engine::deserialize(*bytes);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->info().fp32_layers, cfg.fp32_layers);
  EXPECT_EQ(loaded->info().precision, "f16");
}

TEST(ReducedPrecision, BuilderRejectsUnknownFp32LayersAndFp32LayersWithoutF16) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.precision = Precision::kF16;
  cfg.fp32_layers = {"sofmax"};
  auto e = Builder::build_from_bytes(block().bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("--fp32-layers names node 'sofmax'"), std::string::npos)
      << e.status().message();
  EXPECT_NE(e.status().message().find("'softmax'"), std::string::npos) << e.status().message();

  cfg.precision = Precision::kF32;
  cfg.fp32_layers = {"softmax"};
  auto f = Builder::build_from_bytes(block().bytes(), cfg);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("--fp16 or --bf16"), std::string::npos) << f.status().message();
}

// Every float value is in the target dtype except the graph's declared inputs and outputs.
void expect_target_everywhere_but_io(const ir::Graph& g, DType target, const std::string& model) {
  std::set<std::string> io(g.inputs.begin(), g.inputs.end());
  io.insert(g.outputs.begin(), g.outputs.end());
  std::vector<std::string> stray;
  for (const auto& [name, v] : g.values)
    if (is_float(v.dtype) && v.dtype != target && !io.count(name)) stray.push_back(name);
  EXPECT_TRUE(stray.empty()) << model << ": " << stray.size() << " float values not in " << dtype_name(target)
                             << ", first: " << (stray.empty() ? "" : stray[0]);
}

TEST(ReducedPrecision, SkeletonsConvertAndReinfer) {
  for (const char* name : {"bert_base", "resnet50"}) {
    SCOPED_TRACE(name);
    ir::Graph g = optimized(testing::load_skeleton(name));
    std::map<std::string, DType> io;
    for (const auto& v : g.inputs) io[v] = g.values.at(v).dtype;
    for (const auto& v : g.outputs) io[v] = g.values.at(v).dtype;
    passes::PrecisionReport r;
    Status s = passes::convert_precision(g, passes::PrecisionOptions{}, &r);
    ASSERT_TRUE(s.ok()) << s.to_string();
    ASSERT_TRUE(passes::infer_shapes(g).ok());
    for (const auto& [v, dt] : io) EXPECT_EQ(g.values.at(v).dtype, dt) << v;
    expect_target_everywhere_but_io(g, DType::kF16, name);
    EXPECT_GT(r.converted_nodes, 40);
    for (const auto& [node, why] : r.kept_f32) ADD_FAILURE() << node << " kept in f32: " << why;
  }
}

TEST(ReducedPrecision, BertF16OnCpuMatchesF32) {
  const ir::Graph f32 = optimized(testing::load_skeleton("bert_base"));
  ir::Graph half = f32;
  ASSERT_TRUE(passes::convert_precision(half, passes::PrecisionOptions{}).ok());
  Tensor ids(DType::kI64, {2, 9}), mask(DType::kI64, {2, 9});
  for (int64_t i = 0; i < 18; ++i) {
    ids.data<int64_t>()[i] = (i * 37) % 30522;
    mask.data<int64_t>()[i] = i % 9 < 7 ? 1 : 0;  // padded tails: the f16 mask constant must stay finite
  }
  auto want = run_cpu(f32, {{"input_ids", ids}, {"attention_mask", mask}});
  auto got = run_cpu(half, {{"input_ids", ids}, {"attention_mask", mask}});
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    const Tensor& o = got.at(name);
    EXPECT_EQ(o.dtype(), w.dtype()) << name;
    for (int64_t i = 0; i < o.numel(); ++i)
      ASSERT_TRUE(std::isfinite(o.get_as_double(i))) << name << "[" << i << "]";
    EXPECT_GE(cosine(o, w), 0.999) << name;
  }
}

TEST(ReducedPrecision, ResNet50F16OnCpuMatchesF32) {
  const ir::Graph f32 = optimized(testing::load_skeleton("resnet50"));
  ir::Graph half = f32;
  ASSERT_TRUE(passes::convert_precision(half, passes::PrecisionOptions{}).ok());
  Tensor image = random_f32({1, 3, 224, 224}, 5);
  auto want = run_cpu(f32, {{"image", image}});
  auto got = run_cpu(half, {{"image", image}});
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, w] : want) {
    double mx = 0;
    for (int64_t i = 0; i < w.numel(); ++i) mx = std::max(mx, std::fabs(w.get_as_double(i)));
    std::cout << name << " max |y| " << mx << " cosine " << cosine(got.at(name), w) << "\n";
    EXPECT_GE(cosine(got.at(name), w), 0.999) << name;
  }
}

#ifdef KILN_WITH_CUDA
// With the CUDA kernel table as the predicate (what the builder passes): nodes whose kernel lacks the dtype
// stay f32, and the graph still converts and infers.
TEST(ReducedPrecision, SkeletonsConvertWithTheCudaKernelTable) {
  passes::PrecisionOptions opt;
  opt.supports = [](const ir::Node& n, const std::vector<DType>& dts) {
    const cuda::KernelDef* k = cuda::kernel_table().find(n.op_type);
    return k != nullptr && (k->supports == nullptr || k->supports(n, dts));
  };
  for (DType target : {DType::kF16, DType::kBF16})
    for (const char* name : {"bert_base", "resnet50", "gpt2", "vit_b_16"}) {
      SCOPED_TRACE(std::string(name) + " " + std::string(dtype_name(target)));
      ir::Graph g = optimized(testing::load_skeleton(name));
      std::map<std::string, DType> io;
      for (const auto& v : g.inputs) io[v] = g.values.at(v).dtype;
      for (const auto& v : g.outputs) io[v] = g.values.at(v).dtype;
      opt.target = target;
      passes::PrecisionReport r;
      Status s = passes::convert_precision(g, opt, &r);
      ASSERT_TRUE(s.ok()) << s.to_string();
      for (const auto& [v, dt] : io) EXPECT_EQ(g.values.at(v).dtype, dt) << v;
      EXPECT_GT(r.converted_nodes, 0);
      // What stays f32 for want of a CUDA kernel, by op: the list the kernels still have to cover.
      std::map<std::string, int> kept_ops;
      std::map<std::string, std::string> op_of;
      for (const auto& n : g.nodes) op_of[n.name] = n.op_type;
      for (const auto& [node, why] : r.kept_f32) ++kept_ops[op_of[node]];
      std::string kept;
      for (const auto& [op, count] : kept_ops) kept += fmt::format(" {}x{}", op, count);
      std::cout << name << " " << dtype_name(target) << ": " << r.converted_nodes << " nodes converted, "
                << r.casts_added << " casts, kept f32:" << (kept.empty() ? " none" : kept) << "\n";
      // Nothing the CUDA kernels claim to run in the target dtype was left in f32 for want of a kernel.
      for (const auto& [node, why] : r.kept_f32)
        if (why.find("kernel") == std::string::npos) ADD_FAILURE() << node << ": " << why;
    }
}
#endif

}  // namespace
}  // namespace kiln
