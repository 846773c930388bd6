// CUDA kernels: one file per op (family) under kernels/, listed in kernel_list.h. Each is checked against the CPU
// reference by tests/gpu. Inputs arrive on the device; inputs a kernel reads as parameters on the host (shapes,
// axes, starts…) are named in host_inputs and arrive as host tensors instead.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/cuda/device_tensor.h"
#include "ir/graph.h"
#include "kiln/status.h"
#include "kiln/tensor.h"
#include "util/tactic_cache.h"

namespace kiln::cuda {

// Base of the per-context state a kernel may keep in Resources::kernel_state.
struct KernelState {
  virtual ~KernelState() = default;
  // GPU memory the state holds (scratch buffers), so the context's memory count includes it.
  virtual size_t device_bytes() const { return 0; }
};

// Handles and scratch shared by the kernels of one context (one stream).
struct Resources {
  cudaStream_t stream = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  cudnnHandle_t cudnn = nullptr;
  void* workspace = nullptr;  // cuBLASLt workspace
  size_t workspace_bytes = 0;
  bool allow_tf32 = false;
  // Kernels with several candidate algorithms (cuBLASLt) time the top ones once per shape and keep the fastest;
  // off: the library heuristic's first pick (no timing runs).
  bool time_tactics = false;
  // Kernels that choose among algorithms name their choice here; profiling runs report it per layer.
  std::string tactic;
  // Tactic choices shared with the engine (and the other contexts): kernels look a choice up before timing
  // candidates and record what they chose. Never null in an executor.
  std::shared_ptr<TacticCache> tactics;
  // State a kernel keeps per context between runs (cuDNN plans and algorithm choices, extra scratch), made on
  // first use and destroyed with the context; keyed by op type. A context runs on one stream at a time.
  std::map<std::string, std::shared_ptr<KernelState>, std::less<>> kernel_state;
};

class KernelContext {
 public:
  KernelContext(const ir::Node& node, int64_t opset, std::vector<const DeviceTensor*> inputs,
                std::vector<const Tensor*> host_inputs, std::vector<DeviceTensor>* outputs, Resources& res)
      : node_(node), opset_(opset), inputs_(std::move(inputs)), host_(std::move(host_inputs)), outputs_(outputs),
        res_(res) {}

  const ir::Node& node() const { return node_; }
  int64_t opset() const { return opset_; }
  size_t num_inputs() const { return inputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && (inputs_[i] != nullptr || host_[i] != nullptr); }
  // Device inputs (null for host_inputs and omitted ones).
  const DeviceTensor& input(size_t i) const { return *inputs_[i]; }
  // Host copies of the inputs the kernel declared in host_inputs.
  const Tensor* host_input(size_t i) const { return i < host_.size() ? host_[i] : nullptr; }
  size_t num_outputs() const { return outputs_->size(); }
  bool has_output(size_t i) const { return i < node_.outputs.size() && !node_.outputs[i].empty(); }
  // Pre-allocated from shape inference.
  DeviceTensor& output(size_t i) { return (*outputs_)[i]; }
  // For views: the output aliases another tensor's storage (Reshape, Squeeze…).
  void set_output(size_t i, DeviceTensor t) { (*outputs_)[i] = std::move(t); }
  Resources& res() { return res_; }
  cudaStream_t stream() const { return res_.stream; }

  template <class... A>
  Status error(fmt::format_string<A...> f, A&&... a) const {
    return Status(StatusCode::kInvalidArgument, node_.label() + ": " + fmt::format(f, std::forward<A>(a)...));
  }

 private:
  const ir::Node& node_;
  int64_t opset_;
  std::vector<const DeviceTensor*> inputs_;
  std::vector<const Tensor*> host_;
  std::vector<DeviceTensor>* outputs_;
  Resources& res_;
};

using KernelFn = Status (*)(KernelContext&);
// Whether the kernel handles this node with these input dtypes; when false the node runs on the CPU reference.
using SupportsFn = bool (*)(const ir::Node& node, const std::vector<DType>& input_dtypes);

struct KernelDef {
  std::string_view op_type;
  KernelFn run = nullptr;
  SupportsFn supports = nullptr;   // null: any dtype
  uint32_t host_inputs = 0;        // bit i set: input i is read on the host
};

class KernelTable {
 public:
  void add(const KernelDef& def) { defs_[std::string(def.op_type)] = def; }
  const KernelDef* find(std::string_view op_type) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, KernelDef, std::less<>> defs_;
};

const KernelTable& kernel_table();

// Common dtype filters.
bool floats_only(const ir::Node&, const std::vector<DType>& dts);  // f32/f16/bf16 for every present input

}  // namespace kiln::cuda
