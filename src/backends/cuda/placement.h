// Where the CUDA executor runs each node, as one rule shared by the executor and by the tools and tests that
// predict it (kiln inspect, the skeleton tests):
//  - Shape/Size read dims only and run on the host;
//  - a node whose op has no CUDA kernel for its input dtypes falls back to the CPU reference;
//  - integer math on small host values (torch's shape plumbing) stays on the host;
//  - If, Loop and Scan are control flow: the executor reads the condition / trip count on the host (a read-back
//    when it lives on the GPU) and runs the chosen body's nodes by these same rules, so a body's nodes run on
//    the GPU wherever they have kernels (Scan-8, batch-major, stays a CPU fallback);
//  - everything else runs on the GPU.
// A run is capturable as a CUDA graph only when no node reads a device value back to the host ("downloads").
#pragma once
#include <map>
#include <string>
#include <vector>

#include "backends/cuda/kernel.h"
#include "backends/cuda/shape_limits.h"
#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln::cuda {

enum class Placement { kGpu, kHost, kCpuFallback, kControlFlow };
const char* placement_name(Placement p);

// The placement of one node of a graph of `opset`; kernel is set to the CUDA kernel when it runs on the GPU.
Placement place_node(const ir::Node& node, int64_t opset, const std::vector<InputFact>& inputs, const KernelDef** kernel);

// Inputs a control-flow node reads on the host: If's condition, Loop's trip count and condition.
bool is_control_input(const ir::Node& node, size_t input);
// If, Loop or Scan of the default domain: the executor runs its bodies node by node.
bool is_control_flow(const ir::Node& node);
// Scan-8 is batch-major with sequence lengths: only the CPU reference runs it, body and all.
bool cpu_only_control_flow(const ir::Node& node, int64_t opset);

struct PlacedNode {
  std::string name, op;
  Placement where = Placement::kGpu;
  std::vector<std::string> downloads;  // device values this node reads back to the host
  // For a CPU fallback: why no CUDA kernel takes the node. For control flow: which case it is (what is read
  // back, whether the run stays capturable as a CUDA graph).
  std::string why;
  bool by_shape = false;  // a CPU fallback because a kernel cannot take these shapes (its dtypes it takes)
};

// Walks g with graph inputs on the device at the given dims and predicts every node's placement. The nodes of
// If/Loop/Scan bodies follow their node, named "NODE/then_branch/BODY_NODE" (the attribute holding the body).
Result<std::vector<PlacedNode>> predict_placement(const ir::Graph& g,
                                                  const std::map<std::string, std::vector<int64_t>>& input_dims);

// The nodes of a CUDA engine's graph that run on the CPU reference, predicted at every profile's min, opt and max
// dims (the model's static dims without profiles; a dynamic dim no profile bounds counts as 1): op, dtype, and
// the shape limits kernels state (can_implement), which may hold at one end of a profile only. Each node once,
// in the order found, with why (a shape limit names the profile point). kiln build reports them (and refuses
// them with --no-cpu-fallback); kiln inspect lists them.
Result<std::vector<PlacedNode>> predict_cpu_fallbacks(const ir::Graph& g,
                                                      const std::vector<OptimizationProfile>& profiles);

}  // namespace kiln::cuda
