// kiln inspect maps an engine's tactic choices to layers by decoding the keys the CUDA kernels write
// (runtime/tactic_map.cpp). Built here on the GPU, so a kernel whose key format changes breaks this test, not
// the inspect output silently.
#include <gtest/gtest.h>

#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"
#include "engine/engine_state.h"
#include "runtime/tactic_map.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;
using testing::random_f32;

// Two convs (the second with a residual) and a GEMM head: cuDNN and cuBLASLt choices per profile shape.
ModelBuilder two_convs_and_gemm() {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "16", "12", "12"})
      .initializer("w1", random_f32({16, 16, 3, 3}, 1))
      .initializer("w2", random_f32({16, 16, 3, 3}, 2))
      .initializer("b2", random_f32({16}, 3))
      .initializer("fc", random_f32({16 * 12 * 12, 24}, 4))
      .node("Conv", {"x", "w1"}, {"c1"}, "conv1")
      .attr("kernel_shape", std::vector<int64_t>{3, 3})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Relu", {"c1"}, {"r1"}, "relu1")
      .node("Conv", {"r1", "w2", "b2"}, {"c2"}, "conv2")
      .attr("kernel_shape", std::vector<int64_t>{3, 3})
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .node("Add", {"c2", "x"}, {"s"}, "residual")
      .node("Relu", {"s"}, {"r2"}, "relu2")
      .node("Flatten", {"r2"}, {"f"}, "flat")
      .node("MatMul", {"f", "fc"}, {"y"}, "head")
      .output("y", DType::kF32, {"batch", "24"});
  return b;
}

void expect_every_conv_and_gemm_mapped(Precision precision) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCuda;
  cfg.precision = precision;
  OptimizationProfile p;
  p.inputs["x"] = {{1, 16, 12, 12}, {4, 16, 12, 12}, {8, 16, 12, 12}};
  cfg.profiles = {p};
  cfg.tactic_timing = true;
  auto e = Builder::build_from_bytes(two_convs_and_gemm().bytes(), cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  const auto entries = e->state()->tactics->entries();
  ASSERT_FALSE(entries.empty());
  const ir::Graph& g = *e->state()->graph;
  const TacticMap m = map_tactics(g, entries);
  int layers = 0;
  for (const auto& n : g.nodes) {
    if (n.op_type != "FusedConv" && n.op_type != "FusedMatMul" && n.op_type != "MatMul") continue;
    ++layers;
    EXPECT_TRUE(m.by_layer.count(n.name)) << n.name << " (" << n.op_type << ") got no stored tactic";
  }
  EXPECT_GE(layers, 3);
  for (const auto& t : m.tactics) {
    EXPECT_FALSE(t.kind.empty()) << "unreadable tactic key " << t.key;
    if (t.kind == "conv" || t.kind == "gemm") EXPECT_FALSE(t.layers.empty()) << t.key << " maps to no layer";
  }
}

TEST(GpuTacticMap, F32ChoicesMapToLayers) {
  KILN_REQUIRE_GPU();
  expect_every_conv_and_gemm_mapped(Precision::kF32);
}

TEST(GpuTacticMap, F16ChannelsLastChoicesMapToLayers) {
  KILN_REQUIRE_GPU();
  expect_every_conv_and_gemm_mapped(Precision::kF16);
}

}  // namespace
}  // namespace kiln
