// Checks CUDA kernels against the CPU reference, ggml test-backend-ops style: one small model per case, run on
// both executors, outputs compared elementwise; the case also asserts the node really ran on the GPU.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "backends/cpu/executor.h"
#include "backends/cuda/executor.h"
#include "backends/device_probe.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#include "support/model_builder.h"
#include "kiln/half.h"

namespace kiln::gputest {

inline bool have_gpu() { return probe_gpu().count > 0; }

#define KILN_REQUIRE_GPU() \
  if (!::kiln::gputest::have_gpu()) GTEST_SKIP() << "no usable GPU here (" << ::kiln::probe_gpu().error << ")"

struct Tolerance {
  double rtol = 1e-5, atol = 1e-6;
};
// Per dtype defaults: f32 kernels should match closely; f16/bf16 outputs are rounded once more.
inline Tolerance default_tolerance(DType dt) {
  if (dt == DType::kF16) return {2e-3, 2e-3};
  if (dt == DType::kBF16) return {1.6e-2, 1.6e-2};
  return {};
}

// Runs the model on both backends and compares every output. min_gpu_nodes: nodes that must run on the GPU.
inline void expect_gpu_matches_cpu(const testing::ModelBuilder& b, const std::map<std::string, Tensor>& inputs,
                                   int min_gpu_nodes = 1, std::optional<Tolerance> tol = std::nullopt) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "gpu test");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  const Status inferred = passes::infer_shapes(*g);
  ASSERT_TRUE(inferred.ok()) << inferred.to_string();
  auto graph = std::make_shared<const ir::Graph>(std::move(*g));
  cpu::GraphExecutor cpu_exec(graph);
  auto want = cpu_exec.run(inputs);
  ASSERT_TRUE(want.ok()) << "CPU: " << want.status().to_string();
  auto gpu_exec = cuda::GraphExecutor::create(graph, false);
  ASSERT_TRUE(gpu_exec.ok()) << gpu_exec.status().to_string();
  auto got = (*gpu_exec)->run(inputs);
  ASSERT_TRUE(got.ok()) << "GPU: " << got.status().to_string();
  EXPECT_GE((*gpu_exec)->last_stats().gpu_nodes, min_gpu_nodes) << "the node fell back to the CPU";
  for (const auto& [name, w] : *want) {
    const Tensor& o = got->at(name);
    ASSERT_EQ(o.dtype(), w.dtype()) << name;
    ASSERT_EQ(o.dims(), w.dims()) << name;
    Tolerance t = tol ? *tol : default_tolerance(w.dtype());
    int64_t bad = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
      double a = o.get_as_double(i), e = w.get_as_double(i);
      if ((std::isnan(e) && std::isnan(a)) || a == e) continue;  // a == e also covers equal infinities
      if (!(std::fabs(a - e) <= t.atol + t.rtol * std::fabs(e))) {
        if (bad++ < 5) ADD_FAILURE() << name << "[" << i << "]: gpu " << a << " vs cpu " << e;
      }
    }
    EXPECT_EQ(bad, 0) << name << ": " << bad << " of " << w.numel() << " elements differ";
  }
}

// Random tensor of any float dtype (values in [-1,1)), or integers in [lo, hi).
inline Tensor random_tensor(DType dt, std::vector<int64_t> dims, uint64_t seed, int64_t lo = 0, int64_t hi = 10) {
  Tensor f = testing::random_f32(dims, seed);
  if (dt == DType::kF32) return f;
  Tensor out(dt, dims);
  for (int64_t i = 0; i < f.numel(); ++i) {
    double v = f.data<float>()[i];
    switch (dt) {
      case DType::kF16: out.data<uint16_t>()[i] = float_to_half(static_cast<float>(v)); break;
      case DType::kBF16: out.data<uint16_t>()[i] = float_to_bf16(static_cast<float>(v)); break;
      case DType::kI64: out.data<int64_t>()[i] = lo + static_cast<int64_t>((v + 1) / 2 * static_cast<double>(hi - lo)); break;
      case DType::kI32: out.data<int32_t>()[i] = static_cast<int32_t>(lo + (v + 1) / 2 * static_cast<double>(hi - lo)); break;
      case DType::kBool: out.data<uint8_t>()[i] = v > 0; break;
      default: break;
    }
  }
  return out;
}

}  // namespace kiln::gputest
