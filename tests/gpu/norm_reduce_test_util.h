// Helpers for the softmax / layer_norm / reduce / batch_norm GPU tests.
//
// expect_on_device() is expect_gpu_matches_cpu() with the graph inputs handed to the GPU executor as device
// buffers (run_device): the executor keeps small all-host computations (<= 1024 elements) on the host, so
// without this, rows of length 1 or 3, scalars and empty tensors would never reach the kernels. Its comparison
// also counts equal infinities as a match (reductions of -inf, GlobalMaxPool of an empty plane...).
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gpu/gpu_harness.h"

namespace kiln::gputest {

inline std::string dname(DType d) { return std::string(dtype_name(d)); }

inline std::vector<std::string> sdims(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (auto x : d) s.push_back(std::to_string(x));
  return s;
}

// A tensor of dtype dt (float or integer) with element i = f(i), rounded to dt.
inline Tensor make_tensor(DType dt, const std::vector<int64_t>& dims, const std::function<double(int64_t)>& f) {
  Tensor t(dt, dims);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = f(i);
    switch (dt) {
      case DType::kF32: t.data<float>()[i] = static_cast<float>(v); break;
      case DType::kF16: t.data<uint16_t>()[i] = float_to_half(static_cast<float>(v)); break;
      case DType::kBF16: t.data<uint16_t>()[i] = float_to_bf16(static_cast<float>(v)); break;
      case DType::kI64: t.data<int64_t>()[i] = static_cast<int64_t>(v); break;
      case DType::kI32: t.data<int32_t>()[i] = static_cast<int32_t>(v); break;
      default: ADD_FAILURE() << "make_tensor: unsupported dtype"; return t;
    }
  }
  return t;
}

// Deterministic values in [lo, hi).
inline Tensor uniform_tensor(DType dt, const std::vector<int64_t>& dims, uint64_t seed, double lo, double hi) {
  Tensor r = testing::random_f32(dims, seed);  // [-1, 1)
  return make_tensor(dt, dims, [&](int64_t i) { return lo + (r.data<float>()[i] + 1.0) / 2.0 * (hi - lo); });
}

inline void compare_outputs(const std::map<std::string, Tensor>& want, const std::map<std::string, Tensor>& got,
                            std::optional<Tolerance> tol) {
  for (const auto& [name, w] : want) {
    auto it = got.find(name);
    ASSERT_TRUE(it != got.end()) << "GPU did not produce " << name;
    const Tensor& o = it->second;
    ASSERT_EQ(o.dtype(), w.dtype()) << name;
    ASSERT_EQ(o.dims(), w.dims()) << name;
    Tolerance t = tol ? *tol : default_tolerance(w.dtype());
    int64_t bad = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
      const double a = o.get_as_double(i), e = w.get_as_double(i);
      if (a == e) continue;  // also equal infinities
      if (std::isnan(e) && std::isnan(a)) continue;
      if (!(std::fabs(a - e) <= t.atol + t.rtol * std::fabs(e))) {
        if (bad++ < 5) ADD_FAILURE() << name << "[" << i << "]: gpu " << a << " vs cpu " << e;
      }
    }
    EXPECT_EQ(bad, 0) << name << ": " << bad << " of " << w.numel() << " elements differ";
  }
}

// Runs the model on the CPU reference and on the GPU executor with every graph input already on the device.
inline void expect_on_device(const testing::ModelBuilder& b, const std::map<std::string, Tensor>& inputs,
                             int min_gpu_nodes = 1, std::optional<Tolerance> tol = std::nullopt) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "gpu test");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_TRUE(passes::infer_shapes(*g).ok());
  auto graph = std::make_shared<const ir::Graph>(std::move(*g));
  cpu::GraphExecutor cpu_exec(graph);
  auto want = cpu_exec.run(inputs);
  ASSERT_TRUE(want.ok()) << "CPU: " << want.status().to_string();
  auto gpu_exec = cuda::GraphExecutor::create(graph, false);
  ASSERT_TRUE(gpu_exec.ok()) << gpu_exec.status().to_string();

  std::vector<void*> buffers;
  auto alloc = [&](size_t bytes) -> void* {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(bytes, 1)), cudaSuccess);
    buffers.push_back(p);
    return p;
  };
  std::map<std::string, cuda::DeviceTensor> din, dout;
  for (const auto& [name, t] : inputs) {
    cuda::DeviceTensor d;
    d.dtype = t.dtype();
    d.dims = t.dims();
    d.data = alloc(t.nbytes());
    if (t.nbytes()) EXPECT_EQ(cudaMemcpy(d.data, t.raw(), t.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    din[name] = d;
  }
  for (const auto& [name, w] : *want) {
    cuda::DeviceTensor d;
    d.dtype = w.dtype();
    d.dims = w.dims();
    d.data = alloc(w.nbytes());
    dout[name] = d;
  }
  Status st = (*gpu_exec)->run_device(din, dout, nullptr);
  EXPECT_TRUE(st.ok()) << "GPU: " << st.to_string();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::map<std::string, Tensor> got;
  if (st.ok()) {
    EXPECT_GE((*gpu_exec)->last_stats().gpu_nodes, min_gpu_nodes) << "the node fell back to the CPU";
    for (const auto& [name, d] : dout) {
      Tensor h(d.dtype, d.dims);
      if (h.nbytes()) EXPECT_EQ(cudaMemcpy(h.raw(), d.data, h.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
      got[name] = h;
    }
  }
  for (void* p : buffers) cudaFree(p);
  if (st.ok()) compare_outputs(*want, got, tol);
}

// Both paths: host inputs through the standard harness when they are big enough to leave the host, and device
// inputs always.
inline void expect_both(const testing::ModelBuilder& b, const std::map<std::string, Tensor>& inputs,
                        int min_gpu_nodes = 1, std::optional<Tolerance> tol = std::nullopt) {
  int64_t elems = 0;
  for (const auto& [name, t] : inputs) elems += t.numel();
  if (elems > 1024) {
    SCOPED_TRACE("host inputs");
    expect_gpu_matches_cpu(b, inputs, min_gpu_nodes, tol);
  }
  SCOPED_TRACE("device inputs");
  expect_on_device(b, inputs, min_gpu_nodes, tol);
}

}  // namespace kiln::gputest
