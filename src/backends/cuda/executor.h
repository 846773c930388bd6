// Runs a graph on the GPU. Each node runs where it is cheapest and correct:
//  - Shape/Size and small host-resident computations (torch's shape plumbing) run on the host;
//  - nodes with a CUDA kernel that supports their dtypes run on the GPU;
//  - anything else falls back to the CPU reference (inputs downloaded, result kept on the host and uploaded
//    when a GPU node needs it). Correct for every model the CPU backend runs; fast where kernels exist.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "backends/cuda/device_tensor.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/memory_pool.h"
#include "ir/graph.h"

namespace kiln::cuda {

struct RunStats {
  int gpu_nodes = 0, host_nodes = 0, fallback_nodes = 0;
};

class GraphExecutor {
 public:
  static Result<std::unique_ptr<GraphExecutor>> create(std::shared_ptr<const ir::Graph> graph, bool allow_tf32,
                                                       size_t memory_limit_bytes = 0);
  ~GraphExecutor();

  // Host arrays in and out.
  Result<std::map<std::string, Tensor>> run(const std::map<std::string, Tensor>& inputs);
  // Device buffers in and out (outputs copied into the caller's buffers, sizes checked first).
  Status run_device(const std::map<std::string, DeviceTensor>& inputs, std::map<std::string, DeviceTensor>& outputs,
                    cudaStream_t stream);
  const RunStats& last_stats() const { return stats_; }
  MemoryPool& pool() { return *pool_; }

 private:
  GraphExecutor() = default;
  struct Slot;
  Result<std::map<std::string, Slot>> execute(std::map<std::string, Slot> values);
  Status ensure_host(const std::string& name, Slot& s);
  Status ensure_device(const std::string& name, Slot& s);

  std::shared_ptr<const ir::Graph> graph_;
  std::shared_ptr<MemoryPool> pool_;
  Resources res_;
  bool owns_stream_ = false;
  std::map<std::string, DeviceTensor> device_weights_;  // uploaded on first use
  std::vector<std::vector<std::string>> release_after_;
  RunStats stats_;
};

}  // namespace kiln::cuda
