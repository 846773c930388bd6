// Y = act(Conv(X, W) + B + Z) as one cuDNN operation graph (the backend "graph" API): a convolution node and
// pointwise nodes on virtual f32 tensors, so cuDNN's runtime-fusion engines can run the whole epilogue inside
// the convolution kernel. Used by FusedConv (fused_conv.cu) as one more tactic next to the legacy
// cudnnConvolutionBiasActivationForward / cudnnConvolutionForward paths; the builder's timing picks among
// them.
#pragma once
#include <cudnn.h>

#include <memory>
#include <string>
#include <vector>

#include "ops/fused_conv.h"
#include "kiln/status.h"

namespace kiln::cuda {

// What the operation graph computes. Dims are channels-first (N, C, spatial... for X and Y; M, C/group,
// kernel... for W) whatever the memory layout; `nhwc` selects channels-last strides for X, W, Z and Y.
struct ConvGraphSpec {
  cudnnDataType_t dtype = CUDNN_DATA_HALF;
  bool nhwc = false;
  std::vector<int64_t> x, w, y;
  std::vector<int64_t> pad_begin, pad_end, stride, dil;
  bool bias = false, residual = false;
  ops::ConvActivation act = ops::ConvActivation::kNone;
  int64_t alignment = 16;  // bytes every data pointer is aligned to
};

// Pointers of one run; b and z may be null when the spec has no bias / residual.
struct ConvGraphArgs {
  const void *x = nullptr, *w = nullptr, *b = nullptr, *z = nullptr;
  void* y = nullptr;
  void* workspace = nullptr;
};

class ConvGraph;

// One finalized execution plan (one engine configuration of the graph).
class ConvGraphPlan {
 public:
  ~ConvGraphPlan();
  ConvGraphPlan(const ConvGraphPlan&) = delete;
  ConvGraphPlan& operator=(const ConvGraphPlan&) = delete;
  size_t workspace_bytes() const { return workspace_; }
  // Position in cuDNN's heuristic list (what the tactic cache stores) and the engine's global index.
  int config_index() const { return index_; }
  int64_t engine_id() const { return engine_; }
  // false: cuDNN declined to run it (the caller tries another tactic); errors are real failures.
  Result<bool> run(cudnnHandle_t handle, const ConvGraphArgs& a) const;

 private:
  friend class ConvGraph;
  ConvGraphPlan() = default;
  std::shared_ptr<const ConvGraph> graph_;  // the descriptors the plan was made from stay alive with it
  cudnnBackendDescriptor_t plan_ = nullptr;
  // The variant pack of the last run, rebuilt only when a pointer changes: a context's arena and weights stay
  // put, so eager runs (no CUDA graph) do not create and finalize a descriptor per enqueue.
  mutable cudnnBackendDescriptor_t pack_ = nullptr;
  mutable void* pack_ptrs_[6] = {};
  size_t workspace_ = 0;
  int index_ = -1;
  int64_t engine_ = -1;
  bool bias_ = false, residual_ = false;
};

// The finalized operation graph and cuDNN's ranked engine configurations for it.
class ConvGraph : public std::enable_shared_from_this<ConvGraph> {
 public:
  // nullptr when cuDNN cannot express or run this convolution as a graph (why: in *reason).
  static std::shared_ptr<ConvGraph> create(cudnnHandle_t handle, const ConvGraphSpec& spec, std::string* reason);
  ~ConvGraph();
  ConvGraph(const ConvGraph&) = delete;
  ConvGraph& operator=(const ConvGraph&) = delete;
  int config_count() const { return static_cast<int>(configs_.size()); }
  // The plan of configuration `index`, or nullptr when cuDNN cannot finalize it or it wants more than
  // `max_workspace` bytes.
  std::unique_ptr<ConvGraphPlan> plan(cudnnHandle_t handle, int index, size_t max_workspace) const;

 private:
  ConvGraph() = default;
  ConvGraphSpec spec_;
  std::vector<cudnnBackendDescriptor_t> owned_;  // tensors, ops, graph, heuristics
  std::vector<cudnnBackendDescriptor_t> configs_;
};

}  // namespace kiln::cuda
