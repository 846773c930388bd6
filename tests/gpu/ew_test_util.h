// Helpers of the elementwise GPU tests (unary, binary, where, cast): input builders and a check that also
// runs with the graph inputs already on the device. The plain harness passes host inputs, and the executor
// runs a node whose inputs are all small host tensors (<= 1024 elements) on the host, so tiny shapes would
// never reach the kernels; with device inputs every node with a kernel runs on the GPU.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "gpu/gpu_harness.h"

namespace kiln::ewtest {

using testing::ModelBuilder;

inline std::vector<std::string> sdims(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (int64_t v : d) s.push_back(std::to_string(v));
  return s;
}

// Tensor of dtype dt from double values (float dtypes round to nearest even; integer dtypes truncate).
inline Tensor make_tensor(DType dt, const std::vector<int64_t>& dims, const std::vector<double>& v) {
  Tensor t(dt, dims);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double x = v[static_cast<size_t>(i) % v.size()];
    switch (dt) {
      case DType::kF32: t.data<float>()[i] = static_cast<float>(x); break;
      case DType::kF16: t.data<uint16_t>()[i] = float_to_half(static_cast<float>(x)); break;
      case DType::kBF16: t.data<uint16_t>()[i] = float_to_bf16(static_cast<float>(x)); break;
      case DType::kI32: t.data<int32_t>()[i] = static_cast<int32_t>(x); break;
      case DType::kI64: t.data<int64_t>()[i] = static_cast<int64_t>(x); break;
      case DType::kI8: t.data<int8_t>()[i] = static_cast<int8_t>(x); break;
      case DType::kU8: t.data<uint8_t>()[i] = static_cast<uint8_t>(x); break;
      case DType::kBool: t.data<uint8_t>()[i] = x != 0.0; break;
      default: break;
    }
  }
  return t;
}

// Uniform values in [lo, hi) (pseudo-random, deterministic), converted to dt.
inline Tensor uniform(DType dt, const std::vector<int64_t>& dims, uint64_t seed, double lo, double hi) {
  Tensor r = testing::random_f32(dims, seed);
  std::vector<double> v(static_cast<size_t>(std::max<int64_t>(r.numel(), 1)), 0.0);
  for (int64_t i = 0; i < r.numel(); ++i) v[i] = lo + (r.data<float>()[i] + 1.0) / 2.0 * (hi - lo);
  return make_tensor(dt, dims, v);
}

// Random integers in [lo, hi).
inline Tensor ints(DType dt, const std::vector<int64_t>& dims, uint64_t seed, int64_t lo, int64_t hi) {
  Tensor r = testing::random_f32(dims, seed);
  std::vector<double> v(static_cast<size_t>(std::max<int64_t>(r.numel(), 1)), 0.0);
  for (int64_t i = 0; i < r.numel(); ++i) {
    int64_t k = lo + static_cast<int64_t>((r.data<float>()[i] + 1.0) / 2.0 * static_cast<double>(hi - lo));
    v[i] = static_cast<double>(std::min(k, hi - 1));
  }
  return make_tensor(dt, dims, v);
}

inline void compare_outputs(const std::map<std::string, Tensor>& want, const std::map<std::string, Tensor>& got,
                            std::optional<gputest::Tolerance> tol, const char* path) {
  for (const auto& [name, w] : want) {
    auto it = got.find(name);
    ASSERT_TRUE(it != got.end()) << path << ": no output " << name;
    const Tensor& o = it->second;
    ASSERT_EQ(o.dtype(), w.dtype()) << path << ": " << name;
    ASSERT_EQ(o.dims(), w.dims()) << path << ": " << name;
    gputest::Tolerance t = tol ? *tol : gputest::default_tolerance(w.dtype());
    int64_t bad = 0;
    for (int64_t i = 0; i < w.numel(); ++i) {
      const double a = o.get_as_double(i), e = w.get_as_double(i);
      if (std::isnan(e) && std::isnan(a)) continue;
      if (a == e) continue;  // equal infinities
      if (!(std::fabs(a - e) <= t.atol + t.rtol * std::fabs(e))) {
        if (bad++ < 5) ADD_FAILURE() << path << ": " << name << "[" << i << "]: gpu " << a << " vs cpu " << e;
      }
    }
    EXPECT_EQ(bad, 0) << path << ": " << name << ": " << bad << " of " << w.numel() << " elements differ";
  }
}

// Runs the model on the CPU and on the GPU with the graph inputs uploaded first (run_device), and compares.
// misalign: each input starts one element past a 256-byte boundary, so 16-byte vector paths must step aside.
inline void expect_gpu_matches_cpu_device_inputs(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs,
                                                 int min_gpu_nodes, std::optional<gputest::Tolerance> tol,
                                                 bool misalign = false) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "gpu test");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_TRUE(passes::infer_shapes(*g).ok());
  auto graph = std::make_shared<const ir::Graph>(std::move(*g));
  cpu::GraphExecutor cpu_exec(graph);
  auto want = cpu_exec.run(inputs);
  ASSERT_TRUE(want.ok()) << "CPU: " << want.status().to_string();
  auto gpu_exec = cuda::GraphExecutor::create(graph, false);
  ASSERT_TRUE(gpu_exec.ok()) << gpu_exec.status().to_string();

  std::vector<void*> allocs;
  auto alloc = [&](size_t bytes) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(bytes, 1)), cudaSuccess);
    allocs.push_back(p);
    return p;
  };
  std::map<std::string, cuda::DeviceTensor> din, dout;
  for (const auto& [name, t] : inputs) {
    cuda::DeviceTensor d;
    d.dtype = t.dtype();
    d.dims = t.dims();
    const size_t skip = misalign ? dtype_size(t.dtype()) : 0;
    d.data = static_cast<char*>(alloc(t.nbytes() + skip)) + skip;
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
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::map<std::string, Tensor> got;
  if (st.ok()) {
    for (const auto& [name, d] : dout) {
      Tensor t(d.dtype, d.dims);
      if (t.nbytes()) EXPECT_EQ(cudaMemcpy(t.raw(), d.data, t.nbytes(), cudaMemcpyDeviceToHost), cudaSuccess);
      got[name] = t;
    }
  }
  for (void* p : allocs) cudaFree(p);
  ASSERT_TRUE(st.ok()) << "GPU (device inputs): " << st.to_string();
  EXPECT_GE((*gpu_exec)->last_stats().gpu_nodes, min_gpu_nodes) << "the node fell back to the CPU";
  compare_outputs(*want, got, tol, misalign ? "misaligned device inputs" : "device inputs");
}

// The host-input path of the plain harness (gputest::expect_gpu_matches_cpu), with this file's comparison
// (which also accepts equal infinities).
inline void expect_gpu_matches_cpu_host_inputs(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs,
                                               int min_gpu_nodes, std::optional<gputest::Tolerance> tol) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "gpu test");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_TRUE(passes::infer_shapes(*g).ok());
  auto graph = std::make_shared<const ir::Graph>(std::move(*g));
  cpu::GraphExecutor cpu_exec(graph);
  auto want = cpu_exec.run(inputs);
  ASSERT_TRUE(want.ok()) << "CPU: " << want.status().to_string();
  auto gpu_exec = cuda::GraphExecutor::create(graph, false);
  ASSERT_TRUE(gpu_exec.ok()) << gpu_exec.status().to_string();
  auto got = (*gpu_exec)->run(inputs);
  ASSERT_TRUE(got.ok()) << "GPU (host inputs): " << got.status().to_string();
  EXPECT_GE((*gpu_exec)->last_stats().gpu_nodes, min_gpu_nodes) << "the node fell back to the CPU";
  compare_outputs(*want, *got, tol, "host inputs");
}

// Both paths: device-resident inputs (always reaches the kernels) and host inputs when they are large enough
// for the executor to send the node to the GPU.
inline void check(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs, int min_gpu_nodes = 1,
                  std::optional<gputest::Tolerance> tol = std::nullopt, bool also_misaligned = false) {
  expect_gpu_matches_cpu_device_inputs(b, inputs, min_gpu_nodes, tol);
  if (also_misaligned) expect_gpu_matches_cpu_device_inputs(b, inputs, min_gpu_nodes, tol, true);
  int64_t elems = 0;
  for (const auto& [name, t] : inputs) elems += t.numel();
  if (elems > 1024) expect_gpu_matches_cpu_host_inputs(b, inputs, min_gpu_nodes, tol);
}

inline const std::vector<DType>& float_dtypes() {
  static const std::vector<DType> v = {DType::kF32, DType::kF16, DType::kBF16};
  return v;
}

}  // namespace kiln::ewtest
