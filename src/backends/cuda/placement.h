// Where the CUDA executor runs each node, as one rule shared by the executor and by the tools and tests that
// predict it (kiln inspect, the skeleton tests):
//  - Shape/Size read dims only and run on the host;
//  - a node whose op has no CUDA kernel for its input dtypes falls back to the CPU reference;
//  - integer math on small host values (torch's shape plumbing) stays on the host;
//  - everything else runs on the GPU.
// A run is capturable as a CUDA graph only when no node reads a device value back to the host ("downloads").
#pragma once
#include <map>
#include <string>
#include <vector>

#include "backends/cuda/kernel.h"
#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln::cuda {

enum class Placement { kGpu, kHost, kCpuFallback };
const char* placement_name(Placement p);

struct InputFact {
  bool present = false;
  DType dtype = DType::kUndefined;
  int64_t elements = 0;  // -1: unknown
  bool on_host = false;  // a host copy exists (constants, shape math, values already downloaded)
};

// The placement of one node; kernel is set to the CUDA kernel when it runs on the GPU.
Placement place_node(const ir::Node& node, const std::vector<InputFact>& inputs, const KernelDef** kernel);

struct PlacedNode {
  std::string name, op;
  Placement where = Placement::kGpu;
  std::vector<std::string> downloads;  // device values this node reads back to the host
  std::string why;                     // for a CPU fallback: why no CUDA kernel takes the node
};

// Walks g with graph inputs on the device at the given dims and predicts every node's placement.
Result<std::vector<PlacedNode>> predict_placement(const ir::Graph& g,
                                                  const std::map<std::string, std::vector<int64_t>>& input_dims);

// The nodes of a CUDA engine's graph that run on the CPU reference, predicted at every profile's opt dims (the
// model's static dims without profiles; a dynamic dim no profile bounds counts as 1: placement follows op and
// dtype, not size). Each node once, in graph order, with why. kiln build reports them (and refuses them with
// --no-cpu-fallback); kiln inspect lists them.
Result<std::vector<PlacedNode>> predict_cpu_fallbacks(const ir::Graph& g,
                                                      const std::vector<OptimizationProfile>& profiles);

}  // namespace kiln::cuda
