// Runs a graph on the GPU. Each node runs where it is cheapest and correct:
//  - Shape/Size and small host-resident computations (torch's shape plumbing) run on the host;
//  - nodes with a CUDA kernel that supports their dtypes run on the GPU;
//  - anything else falls back to the CPU reference (inputs downloaded, result kept on the host and uploaded
//    when a GPU node needs it). Correct for every model the CPU backend runs; fast where kernels exist.
//
// If, Loop and Scan run their bodies through this same executor (control_flow.cpp): the condition or trip count
// is read on the host, and each body node is placed by the rules above, reading enclosing values by name.
//
// Each distinct input signature (dims and buffer addresses) gets a Plan. Its first run is traced: every
// allocation's size and lifetime is recorded, and the plan packs them into one activation arena. When the run
// read nothing back from the GPU (no CPU fallback on device data, no data-dependent shapes), the same run is
// captured as a CUDA graph over that arena, and later runs with the signature are a single graph launch with
// no host work and no synchronisation. Otherwise later runs execute node by node.
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backends/cuda/device_tensor.h"
#include "backends/cuda/device_weights.h"
#include "backends/cuda/kernel.h"
#include "backends/cuda/memory_pool.h"
#include "backends/cuda/profile_gate.h"
#include "ir/graph.h"
#include "kiln/context.h"
#include "util/arena_plan.h"

namespace kiln::cuda {

struct RunStats {
  int gpu_nodes = 0, host_nodes = 0, fallback_nodes = 0;
  int downloads = 0;          // device -> host reads during the run (each one blocks)
  bool graph_replay = false;  // the run was one CUDA graph launch
  bool arena = false;         // the run used its plan's activation arena
};

struct ExecutorOptions {
  bool allow_tf32 = false;
  size_t memory_limit_bytes = 0;  // device memory this executor may hold (arenas + pool); 0 = no cap
  bool cuda_graphs = true;
  std::shared_ptr<SharedDeviceWeights> weights;  // the engine's shared upload; null = a private one
  std::shared_ptr<TacticCache> tactics;            // the engine's tactic choices; null = a private cache
  // The engine's output -> input aliases (EngineInfo::aliases): those ir::in_place_verdict allows are written
  // straight into the input's buffer when the caller binds them there; the others are copied after the run.
  std::map<std::string, std::string> aliases;
};

class GraphExecutor {
 public:
  static Result<std::unique_ptr<GraphExecutor>> create(std::shared_ptr<const ir::Graph> graph,
                                                       const ExecutorOptions& options);
  static Result<std::unique_ptr<GraphExecutor>> create(std::shared_ptr<const ir::Graph> graph, bool allow_tf32,
                                                       size_t memory_limit_bytes = 0);
  ~GraphExecutor();

  // Host arrays in and out (blocks).
  Result<std::map<std::string, Tensor>> run(const std::map<std::string, Tensor>& inputs);
  // Device buffers in and out, ordered on `stream`; returns without waiting for the GPU. Inputs are read in
  // place; outputs are written into the caller's buffers (sizes checked before anything is written).
  Status run_device(const std::map<std::string, DeviceTensor>& inputs, std::map<std::string, DeviceTensor>& outputs,
                    cudaStream_t stream);
  // One node-by-node run with CUDA events around each node; blocks.
  Result<std::vector<LayerTiming>> profile(const std::map<std::string, DeviceTensor>& inputs, cudaStream_t stream);

  const std::map<std::string, std::vector<int64_t>>& last_output_dims() const;
  const RunStats& last_stats() const { return stats_; }
  // The last run's stats with its plan's arena size and, when it ran node by node, why.
  RunInfo last_run_info() const;
  void set_cuda_graphs(bool on) { cuda_graphs_ = on; }
  bool cuda_graphs() const { return cuda_graphs_; }
  void set_memory_limit(size_t bytes);
  // GPU memory the context holds: every shape plan's arena, the pool, the workspace, staging buffers and the
  // kernels' own scratch (KernelState::device_bytes). Weights are the engine's.
  size_t device_bytes() const;
  MemoryPool& pool() { return *pool_; }

 private:
  GraphExecutor() = default;
  // A value during a run: on the host, on the device, or both (a host copy made by a read-back or an upload).
  struct Slot {
    std::optional<Tensor> host;
    std::optional<DeviceTensor> dev;
    DType dtype() const { return host ? host->dtype() : dev->dtype; }
    const std::vector<int64_t>& dims() const { return host ? host->dims() : dev->dims; }
  };
  struct Plan;
  enum class Mode { kPool, kTrace, kArena };
  using Values = std::map<std::string, Slot>;
  // A body's view of the values of the graphs that enclose it; null when no enclosing graph has the name.
  using SlotLookup = std::function<Slot*(const std::string&)>;

  // Runs the nodes of g (the engine's graph, or a body with `outer` its enclosing scope) over `values`.
  Result<Values> execute(const ir::Graph& g, Values values, const SlotLookup* outer, std::vector<LayerTiming>* timings);
  // Per node of g: the values of g it is the last reader of (reads by nested bodies count).
  const std::vector<std::vector<std::string>>& release_plan(const ir::Graph& g);
  // control_flow.cpp: If, Loop and Scan (opset >= 9) with their bodies run by execute.
  Status run_control_flow(const ir::Node& node, const std::vector<Slot*>& in, const SlotLookup& scope,
                          std::vector<Slot>& outs);
  Status run_if(const ir::Node& node, const std::vector<Slot*>& in, const SlotLookup& scope, std::vector<Slot>& outs);
  Status run_loop(const ir::Node& node, const std::vector<Slot*>& in, const SlotLookup& scope, std::vector<Slot>& outs);
  Status run_scan(const ir::Node& node, const std::vector<Slot*>& in, const SlotLookup& scope, std::vector<Slot>& outs);
  // Body output `name` after a body run: a value the body made, its constant, or an enclosing value.
  Result<Slot> body_result(const ir::Graph& body, Values& done, const SlotLookup& scope, const std::string& name);
  // Reads a one-element control value (a condition, a trip count) on the host.
  Result<int64_t> control_value(const ir::Node& node, const std::string& what, const std::string& name, Slot& s);
  // Loop/Scan outputs: equally shaped parts stacked along a new axis (on the host when every part is there).
  Result<Slot> stack_slots(std::vector<Slot>& parts, size_t axis, DType dtype, const ir::Node& node);
  // Scan inputs: element `index` along `axis` (a view of the device buffer when the slice is contiguous).
  Result<Slot> slice_slot(const Slot& s, size_t axis, int64_t index);
  Result<std::shared_ptr<void>> allocate(size_t bytes);
  // The caller's buffer for graph output `name` of `bytes`, when the producing node may write it there
  // directly (see execute); null: allocate as usual.
  void* direct_output(const std::string& name, size_t bytes);
  Status ensure_host(const std::string& name, Slot& s);
  Status ensure_device(const std::string& name, Slot& s);
  // Runs once in `mode` and leaves every graph output on the device (in out).
  // user_outputs: the caller's buffers, which nodes producing graph outputs write directly when they can.
  Status run_once(Mode mode, Plan* plan, const std::map<std::string, DeviceTensor>& inputs,
                  std::map<std::string, DeviceTensor>& out, std::vector<LayerTiming>* timings = nullptr,
                  const std::map<std::string, DeviceTensor>* user_outputs = nullptr);
  Status copy_outputs(const std::map<std::string, DeviceTensor>& produced,
                      std::map<std::string, DeviceTensor>& outputs);
  Status check_output_sizes(const std::map<std::string, std::vector<int64_t>>& dims,
                            const std::map<std::string, DeviceTensor>& outputs) const;
  Status build_plan(Plan& plan, const std::map<std::string, DeviceTensor>& inputs,
                    std::map<std::string, DeviceTensor>* user_outputs, std::map<std::string, DeviceTensor>& produced);
  Status capture(Plan& plan, const std::map<std::string, DeviceTensor>& inputs,
                 std::map<std::string, DeviceTensor>* user_outputs);
  // Runs with a plan for this signature (creating it on first use); user_outputs null: results stay in produced.
  Status run_planned(const std::string& key, const std::map<std::string, DeviceTensor>& inputs,
                     std::map<std::string, DeviceTensor>* user_outputs, std::map<std::string, DeviceTensor>& produced);
  Plan* find_plan(const std::string& key);
  void evict_plans(size_t keep);

  std::shared_ptr<const ir::Graph> graph_;
  std::shared_ptr<MemoryPool> pool_;
  std::shared_ptr<const DeviceWeights> weights_;
  Resources res_;
  cudaEvent_t ready_ = nullptr;
  ProfileGate gate_;  // holds the stream during a profiled run (see profile_gate.h)
  bool cuda_graphs_ = true;
  size_t memory_limit_ = 0;
  std::vector<std::vector<std::string>> release_after_;
  std::map<const ir::Graph*, std::vector<std::vector<std::string>>> body_release_;  // release_plan of bodies
  // Value -> the graph output that views of it become (see create): direct_output gives it that output's buffer.
  std::map<std::string, std::string> output_alias_;
  // Graph output -> the graph input whose buffer it may overwrite while the graph runs (ir::in_place_verdict):
  // direct_output lets such an output share that input's buffer.
  std::map<std::string, std::string> in_place_;
  std::map<std::string, DeviceTensor> staging_;  // run(): host inputs uploaded here (stable addresses)

  // Per-run state.
  Mode mode_ = Mode::kPool;
  Plan* plan_ = nullptr;
  std::shared_ptr<AllocationTrace> trace_;
  size_t arena_cursor_ = 0;
  size_t upload_cursor_ = 0;  // arena runs take the trace's uploads in order (a Loop uploads one name per iteration)
  const std::map<std::string, DeviceTensor>* run_inputs_ = nullptr;
  const std::map<std::string, DeviceTensor>* user_outputs_ = nullptr;
  RunStats stats_;
  std::map<std::string, std::vector<int64_t>> last_output_dims_;

  std::list<std::unique_ptr<Plan>> plans_;  // most recently used first
  const Plan* last_plan_ = nullptr;
  bool dims_from_plan_ = false;  // the last run was a replay: its output dims are its plan's
  // run_device(): the last call's buffers and their signature, so repeating them builds no key.
  std::vector<std::pair<const void*, std::vector<int64_t>>> last_bound_inputs_;
  std::vector<const void*> last_bound_outputs_;
  std::string last_key_;
  bool traced_last_ = false;  // the last run built its plan (a traced run)
  // Small integer/bool graph inputs (a length, a step, a flag) keyed by value: after a traced run read
  // something back, their values are read once before each run, join the plan key, and the run uses those
  // host copies, so shape math on them runs on the host and the plan is captured (one graph per value).
  std::set<std::string> value_keyed_;
  std::map<std::string, Tensor> input_values_;  // this run's host copies of the value_keyed_ inputs
  size_t value_key_evictions_ = 0;              // plans evicted to make room for a new value
  bool value_keying_off_ = false;               // keying did not help or values changed too often
  // Reads the value_keyed_ inputs (one sync) into input_values_ and returns them as a key suffix.
  Result<std::string> value_key(const std::map<std::string, DeviceTensor>& inputs);
  // After a traced run: starts keying by value, or stops when it did not help (see value_keyed_).
  void learn_value_keys(const Plan& traced, const std::map<std::string, DeviceTensor>& inputs);
};

}  // namespace kiln::cuda
