#include "backends/cuda/executor.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <set>

#include "backends/cpu/executor.h"
#include "backends/cuda/cuda_check.h"
#include "backends/cuda/device_alloc.h"
#include "backends/cuda/placement.h"
#include "ir/in_place.h"
#include "ir/node_reads.h"
#include "ops/op.h"
#include "util/error.h"

namespace kiln::cuda {

namespace {
constexpr size_t kWorkspaceBytes = 32u << 20;
// Signatures whose plans (arena + CUDA graph) a context keeps; the least recently used goes first.
constexpr size_t kMaxPlans = 16;
// Integer and bool graph inputs up to this many elements whose values the host reads (a length, a step, a
// flag, a target shape) get their values in the plan key. Floats are data, not shapes: keying by them would
// trace and capture a new plan for nearly every call.
constexpr int64_t kValueKeyLimit = 8;

bool value_keyable(const DeviceTensor& t) {
  return !is_float(t.dtype) && t.dtype != DType::kString && t.dtype != DType::kUndefined &&
         num_elements(t.dims) <= kValueKeyLimit;
}

std::string signature(const std::map<std::string, DeviceTensor>& inputs,
                      const std::map<std::string, DeviceTensor>* outputs) {
  std::string key;
  for (const auto& [name, t] : inputs) key += fmt::format("{}:{}@{};", name, dims_to_string(t.dims), t.data);
  if (outputs)
    for (const auto& [name, t] : *outputs) key += fmt::format("{}@{};", name, t.data);
  else
    key += "host";
  return key;
}

// "x [8,64], mask [8,1,64]": the input shapes a plan is for, as a message shows them (the key adds addresses).
std::string shapes_text(const std::map<std::string, DeviceTensor>& inputs) {
  std::string s;
  for (const auto& [name, t] : inputs) s += fmt::format("{}'{}' {}", s.empty() ? "" : ", ", name, dims_to_string(t.dims));
  return s;
}
}  // namespace

struct GraphExecutor::Plan {
  std::string key;
  bool deterministic = false;  // the trace run read nothing back from the GPU: same work every time
  std::vector<size_t> sizes;   // allocation sizes in order, from the trace run
  ArenaLayout layout;
  std::shared_ptr<void> arena;
  // Host-computed values (shape math) uploaded once by the trace, in the order the run needs them.
  std::vector<std::pair<std::string, DeviceTensor>> uploads;
  cudaGraphExec_t exec = nullptr;
  std::map<std::string, DeviceTensor> outputs;  // where the captured graph leaves the graph outputs
  std::map<std::string, std::vector<int64_t>> output_dims;
  std::string capture_error;  // why this signature runs node by node, when it does
  // Graph outputs the traced run wrote straight into the caller's buffers (no arena space, no copy); the
  // arena and captured runs do the same for the same signature.
  std::set<std::string> direct_outputs;
  RunStats stats;             // of the traced run: where each node ran
  ~Plan() {
    if (exec) cudaGraphExecDestroy(exec);
  }
};

Result<std::unique_ptr<GraphExecutor>> GraphExecutor::create(std::shared_ptr<const ir::Graph> graph, bool allow_tf32,
                                                             size_t memory_limit_bytes) {
  ExecutorOptions o;
  o.allow_tf32 = allow_tf32;
  o.memory_limit_bytes = memory_limit_bytes;
  return create(std::move(graph), o);
}

Result<std::unique_ptr<GraphExecutor>> GraphExecutor::create(std::shared_ptr<const ir::Graph> graph,
                                                             const ExecutorOptions& options) {
  std::unique_ptr<GraphExecutor> ex(new GraphExecutor());
  ex->graph_ = std::move(graph);
  ex->pool_ = std::make_shared<MemoryPool>(options.memory_limit_bytes);
  ex->memory_limit_ = options.memory_limit_bytes;
  ex->cuda_graphs_ = options.cuda_graphs;
  ex->res_.allow_tf32 = options.allow_tf32;
  // The first run of each shape is a traced run anyway: kernels may time their candidate algorithms there.
  ex->res_.time_tactics = true;
  ex->res_.tactics = options.tactics ? options.tactics : std::make_shared<TacticCache>();
  if (options.weights) {
    KILN_ASSIGN_OR_RETURN(ex->weights_, options.weights->get(*ex->graph_));
  } else {
    KILN_ASSIGN_OR_RETURN(ex->weights_, DeviceWeights::upload(*ex->graph_));
  }
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&ex->res_.stream, cudaStreamNonBlocking));
  KILN_CUDA_CHECK(cudaEventCreateWithFlags(&ex->ready_, cudaEventDisableTiming));
  KILN_CUBLAS_CHECK(cublasLtCreate(&ex->res_.cublaslt));
  KILN_CUDNN_CHECK(cudnnCreate(&ex->res_.cudnn));
  KILN_CUDNN_CHECK(cudnnSetStream(ex->res_.cudnn, ex->res_.stream));
  KILN_RETURN_IF_ERROR(device_alloc(&ex->res_.workspace, kWorkspaceBytes, "the context's kernel workspace"));
  ex->res_.workspace_bytes = kWorkspaceBytes;
  ex->release_after_ = ir::release_after(*ex->graph_);
  std::set<std::string> keep(ex->graph_->outputs.begin(), ex->graph_->outputs.end());
  // Values a chain of views (kernels/views.cpp: same bytes, new dims) turns into a graph output: their producer
  // may write that output's buffer directly (GPT-2's logits are a Reshape of the lm_head GEMM's output).
  std::set<std::string> external(ex->graph_->inputs.begin(), ex->graph_->inputs.end());
  for (const auto& o : ex->graph_->outputs) {
    std::string v = o;
    std::set<std::string> seen;
    while (seen.insert(v).second) {
      const ir::Node* producer = nullptr;
      for (const auto& n : ex->graph_->nodes)
        if (!n.outputs.empty() && n.outputs[0] == v) producer = &n;
      if (!producer || !ir::is_view(*producer)) break;
      v = producer->inputs[0];
      if (v.empty() || keep.count(v) || external.count(v) || ex->graph_->is_constant(v)) break;
      ex->output_alias_.emplace(v, o);
    }
  }
  for (const auto& [out, in] : options.aliases)
    if (ir::in_place_verdict(*ex->graph_, out, in).in_place) ex->in_place_[out] = in;
  return ex;
}

GraphExecutor::~GraphExecutor() {
  if (res_.stream) cudaStreamSynchronize(res_.stream);
  plans_.clear();
  staging_.clear();
  // Kernel caches before the handles: cuDNN graph-API plans were made with res_.cudnn and must not outlive it.
  res_.kernel_state.clear();
  if (ready_) cudaEventDestroy(ready_);
  if (res_.workspace) cudaFree(res_.workspace);
  if (res_.cudnn) cudnnDestroy(res_.cudnn);
  if (res_.cublaslt) cublasLtDestroy(res_.cublaslt);
  if (res_.stream) cudaStreamDestroy(res_.stream);
}

void GraphExecutor::set_memory_limit(size_t bytes) {
  memory_limit_ = bytes;
  pool_->set_limit(bytes);
}

size_t GraphExecutor::device_bytes() const {
  size_t n = pool_->bytes_held() + res_.workspace_bytes;
  for (const auto& p : plans_) n += p->arena ? p->layout.total : 0;
  for (const auto& [name, s] : staging_) n += s.nbytes();
  for (const auto& [name, state] : res_.kernel_state) n += state ? state->device_bytes() : 0;
  return n;
}

Result<std::shared_ptr<void>> GraphExecutor::allocate(size_t bytes) {
  switch (mode_) {
    case Mode::kArena: {
      const size_t i = arena_cursor_++;
      if (!plan_ || !plan_->arena || i >= plan_->sizes.size() || plan_->sizes[i] != bytes)
        return internal_error("activation plan mismatch at allocation {} ({} bytes)", i, bytes);
      char* p = static_cast<char*>(plan_->arena.get()) + plan_->layout.offsets[i];
      return std::shared_ptr<void>(plan_->arena, p);  // aliases the arena: keeps it alive, frees nothing
    }
    case Mode::kTrace: {
      KILN_ASSIGN_OR_RETURN(auto block, pool_->allocate(bytes));
      const size_t id = trace_->on_alloc(bytes);
      void* p = block.get();
      return std::shared_ptr<void>(p, [block = std::move(block), trace = trace_, id](void*) mutable {
        trace->on_free(id);
        block.reset();
      });
    }
    case Mode::kPool: break;
  }
  return pool_->allocate(bytes);
}

void* GraphExecutor::direct_output(const std::string& name, size_t bytes) {
  if (!user_outputs_) return nullptr;
  auto it = user_outputs_->find(name);
  if (it == user_outputs_->end()) {
    auto alias = output_alias_.find(name);
    if (alias != output_alias_.end()) it = user_outputs_->find(alias->second);
  }
  if (it == user_outputs_->end() || !it->second.data) return nullptr;
  if (mode_ == Mode::kArena) return plan_ && plan_->direct_outputs.count(name) ? it->second.data : nullptr;
  if (it->second.nbytes() < bytes) return nullptr;  // copy_outputs reports it
  // Writing early must not clobber what later nodes read: no overlap with an input, nor a buffer shared
  // with another output.
  const auto* lo = static_cast<const char*>(it->second.data);
  const char* hi = lo + bytes;
  // Except an aliased output the graph writes in place (ir::in_place_verdict): the buffer of its own input,
  // which no node reads after this one writes.
  auto own = in_place_.find(it->first);
  if (run_inputs_)
    for (const auto& [in_name, t] : *run_inputs_) {
      const auto* a = static_cast<const char*>(t.data);
      if (own != in_place_.end() && own->second == in_name && a == lo && t.nbytes() == bytes) continue;
      if (a < hi && lo < a + t.nbytes()) return nullptr;
    }
  for (const auto& [other, t] : *user_outputs_)
    if (other != it->first && t.data == it->second.data) return nullptr;
  if (mode_ == Mode::kTrace && plan_) plan_->direct_outputs.insert(name);
  return it->second.data;
}

Status GraphExecutor::ensure_host(const std::string& name, Slot& s) {
  if (s.host) return Status();
  if (mode_ == Mode::kArena) return internal_error("planned run reads '{}' back from the GPU", name);
  Tensor t(s.dev->dtype, s.dev->dims);
  if (t.nbytes()) {
    gate_.open();  // the copy below has to run now: a profiled run's layers after it include the host's wait
    KILN_CUDA_CHECK(cudaMemcpyAsync(t.raw(), s.dev->data, t.nbytes(), cudaMemcpyDeviceToHost, res_.stream));
    KILN_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
  }
  stats_.downloads++;
  s.host = std::move(t);
  return Status();
}

Status GraphExecutor::ensure_device(const std::string& name, Slot& s) {
  if (s.dev) return Status();
  const Tensor& h = *s.host;
  if (mode_ == Mode::kArena) {
    // Host values in a deterministic plan are shape math: the same every run, uploaded once by the trace.
    const size_t i = upload_cursor_++;
    if (i >= plan_->uploads.size() || plan_->uploads[i].first != name || plan_->uploads[i].second.dims != h.dims() ||
        plan_->uploads[i].second.dtype != h.dtype())
      return internal_error("planned run has no uploaded value for '{}'", name);
    s.dev = plan_->uploads[i].second;
    return Status();
  }
  DeviceTensor d;
  d.dtype = h.dtype();
  d.dims = h.dims();
  KILN_ASSIGN_OR_RETURN(d.storage, pool_->allocate(std::max<size_t>(h.nbytes(), 1)));
  d.data = d.storage.get();
  // Pageable-source copies return once the source is staged, so the host tensor may go right after.
  if (h.nbytes()) KILN_CUDA_CHECK(cudaMemcpyAsync(d.data, h.raw(), h.nbytes(), cudaMemcpyHostToDevice, res_.stream));
  if (mode_ == Mode::kTrace) plan_->uploads.emplace_back(name, d);
  s.dev = std::move(d);
  return Status();
}

const std::vector<std::vector<std::string>>& GraphExecutor::release_plan(const ir::Graph& g) {
  if (&g == graph_.get()) return release_after_;
  auto it = body_release_.find(&g);
  if (it == body_release_.end()) it = body_release_.emplace(&g, ir::release_after(g)).first;
  return it->second;
}

Result<GraphExecutor::Values> GraphExecutor::execute(const ir::Graph& g, Values live, const SlotLookup* outer,
                                                     std::vector<LayerTiming>* timings) {
  const bool top = &g == graph_.get();
  const std::vector<std::vector<std::string>>& release = release_plan(g);
  auto slot_of = [&](const std::string& name) -> Slot* {
    if (auto it = live.find(name); it != live.end()) return &it->second;
    auto c = g.initializers.find(name);
    if (c == g.initializers.end()) return outer ? (*outer)(name) : nullptr;
    Slot s;
    s.host = c->second;
    // The engine's upload holds the top graph's constants; a body's are uploaded when a GPU node reads them.
    if (top)
      if (const DeviceTensor* w = weights_->find(name)) s.dev = *w;
    return &(live[name] = std::move(s));
  };
  // Made at the first control-flow node: a std::function over this frame allocates, and most runs need none.
  std::optional<SlotLookup> scope;
  std::vector<std::pair<cudaEvent_t, cudaEvent_t>> events;
  std::vector<double> host_ms;
  struct GateOpener {
    ProfileGate& gate;
    ~GateOpener() { gate.open(); }
  } opener{gate_};
  if (timings) KILN_RETURN_IF_ERROR(gate_.close(res_.stream));
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& node = g.nodes[i];
    std::vector<Slot*> in(node.inputs.size(), nullptr);
    std::vector<InputFact> facts(node.inputs.size());
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (node.inputs[k].empty()) continue;
      in[k] = slot_of(node.inputs[k]);
      if (!in[k]) return internal_error("{}: input '{}' has no value at run time", node.label(), node.inputs[k]);
      facts[k] = {true, in[k]->dtype(), num_elements(in[k]->dims()), in[k]->host.has_value(), true, in[k]->dims()};
    }
    const KernelDef* kernel = nullptr;
    const Placement where = place_node(node, g.opset, facts, &kernel);
    const bool dims_only = node.op_type == "Shape" || node.op_type == "Size";
    const bool on_host = where == Placement::kHost || where == Placement::kCpuFallback;

    const auto host_start = std::chrono::steady_clock::now();
    if (timings) {
      cudaEvent_t a, b;
      KILN_CUDA_CHECK(cudaEventCreate(&a));
      KILN_CUDA_CHECK(cudaEventCreate(&b));
      events.emplace_back(a, b);
      KILN_CUDA_CHECK(cudaEventRecord(a, res_.stream));
      res_.tactic.clear();
    }
    std::vector<Slot> outs(node.outputs.size());
    if (where == Placement::kControlFlow) {
      if (!scope) scope.emplace(slot_of);
      KILN_RETURN_IF_ERROR(run_control_flow(node, in, *scope, outs));
    } else if (on_host) {
      std::vector<Tensor> views(in.size());
      std::vector<const Tensor*> ptrs(in.size(), nullptr);
      for (size_t k = 0; k < in.size(); ++k) {
        if (!in[k]) continue;
        if (dims_only) {
          views[k] = Tensor::wrap(in[k]->dtype(), in[k]->dims(), nullptr);  // Shape/Size read dims only
        } else {
          KILN_RETURN_IF_ERROR(ensure_host(node.inputs[k], *in[k]));
          views[k] = *in[k]->host;
        }
        ptrs[k] = &views[k];
      }
      // A body run on the CPU reference (Scan before opset 9) may read any value of this scope by name: each
      // one it reads is brought to the host (a read-back, so such runs are not captured as CUDA graphs).
      // Only a node with a body gets one, so plain host nodes make no std::function.
      Status scope_error;
      std::optional<cpu::ValueLookup> host_scope;
      if (std::any_of(node.attrs.begin(), node.attrs.end(), [](const auto& a) { return a.second.g != nullptr; }))
        host_scope.emplace([&](const std::string& name) -> const Tensor* {
          Slot* s = slot_of(name);
          if (!s) return nullptr;
          if (Status st = ensure_host(name, *s); !st.ok()) {
            if (scope_error.ok()) scope_error = st;
            return nullptr;
          }
          return &*s->host;
        });
      auto results = cpu::run_node(node, g.opset, ptrs, host_scope ? &*host_scope : nullptr);
      KILN_RETURN_IF_ERROR(scope_error);
      if (!results.ok()) return results.status();
      for (size_t k = 0; k < results->size(); ++k) outs[k].host = std::move((*results)[k]);
      (where == Placement::kHost ? stats_.host_nodes : stats_.fallback_nodes)++;
    } else {
      // Shapes on the host: inference sees dims, and values of inputs that live on the host.
      std::vector<ir::ValueInfo> infos(in.size());
      std::vector<const ir::ValueInfo*> info_ptrs(in.size(), nullptr);
      std::vector<const Tensor*> values(in.size(), nullptr);
      std::vector<const DeviceTensor*> dev_in(in.size(), nullptr);
      std::vector<const Tensor*> host_in(in.size(), nullptr);
      for (size_t k = 0; k < in.size(); ++k) {
        if (!in[k]) continue;
        infos[k] = {in[k]->dtype(), Shape::from_dims(in[k]->dims())};
        info_ptrs[k] = &infos[k];
        if ((kernel->host_inputs >> k) & 1u) {
          KILN_RETURN_IF_ERROR(ensure_host(node.inputs[k], *in[k]));
          host_in[k] = &*in[k]->host;
        } else {
          KILN_RETURN_IF_ERROR(ensure_device(node.inputs[k], *in[k]));
          dev_in[k] = &*in[k]->dev;
        }
        if (in[k]->host) values[k] = &*in[k]->host;
      }
      ops::InferContext ictx(node, g.opset, info_ptrs, values);
      KILN_RETURN_IF_ERROR(ops::infer_node(node, g.opset, ictx));
      std::vector<DeviceTensor> dev_out(node.outputs.size());
      for (size_t k = 0; k < dev_out.size(); ++k) {
        if (node.outputs[k].empty()) continue;
        const auto& o = ictx.outputs()[k];
        if (!o.shape.is_static())
          return unsupported("{}: output {} has data-dependent shape {}; this op needs a CPU fallback entry",
                             node.label(), k, o.shape.to_string());
        dev_out[k].dtype = o.dtype;
        dev_out[k].dims = o.shape.static_dims();
        // A graph output goes straight to the caller's buffer when there is one (enqueue), saving the arena
        // space and the copy at the end (GPT-2's logits at batch 32: 1.6 GB of each).
        if (void* target = top ? direct_output(node.outputs[k], dev_out[k].nbytes()) : nullptr) {
          dev_out[k].storage = std::shared_ptr<void>(target, [](void*) {});
        } else {
          KILN_ASSIGN_OR_RETURN(dev_out[k].storage, allocate(std::max<size_t>(dev_out[k].nbytes(), 1)));
        }
        dev_out[k].data = dev_out[k].storage.get();
      }
      KernelContext kctx(node, g.opset, dev_in, host_in, &dev_out, res_);
      KILN_RETURN_IF_ERROR(kernel->run(kctx));
      KILN_CUDA_CHECK_LAUNCH();
      for (size_t k = 0; k < dev_out.size(); ++k)
        if (!node.outputs[k].empty()) outs[k].dev = std::move(dev_out[k]);
      stats_.gpu_nodes++;
    }
    if (timings) {
      KILN_CUDA_CHECK(cudaEventRecord(events.back().second, res_.stream));
      host_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - host_start).count());
      timings->push_back({node.name, node.op_type, placement_name(where), res_.tactic, 0.0});
    }
    for (size_t k = 0; k < node.outputs.size(); ++k)
      if (!node.outputs[k].empty()) live[node.outputs[k]] = std::move(outs[k]);
    for (const auto& name : release[i]) live.erase(name);
  }
  if (timings) {
    gate_.open();
    KILN_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
    for (size_t i = 0; i < events.size(); ++i) {
      float ms = 0;
      cudaEventElapsedTime(&ms, events[i].first, events[i].second);
      // Host and fallback layers do their work on the CPU, between the events: their wall time is what counts.
      (*timings)[i].ms = (*timings)[i].placement == "gpu" ? ms : host_ms[i];
      cudaEventDestroy(events[i].first);
      cudaEventDestroy(events[i].second);
    }
  }
  return live;
}

Status GraphExecutor::run_once(Mode mode, Plan* plan, const std::map<std::string, DeviceTensor>& inputs,
                               std::map<std::string, DeviceTensor>& out, std::vector<LayerTiming>* timings,
                               const std::map<std::string, DeviceTensor>* user_outputs) {
  struct Restore {
    GraphExecutor* ex;
    ~Restore() {
      ex->mode_ = Mode::kPool;
      ex->plan_ = nullptr;
      ex->run_inputs_ = ex->user_outputs_ = nullptr;
    }
  } restore{this};
  mode_ = mode;
  plan_ = plan;
  run_inputs_ = &inputs;
  user_outputs_ = user_outputs;
  if (plan && mode == Mode::kTrace) plan->direct_outputs.clear();
  arena_cursor_ = upload_cursor_ = 0;
  stats_ = {};
  Values live;
  for (const auto& name : graph_->inputs) {
    auto it = inputs.find(name);
    if (it == inputs.end()) return invalid_argument("input '{}' has no device buffer", name);
    live[name].dev = it->second;
    // Read before the run (value_key): the host has it already, and nothing is read back in the run.
    if (auto v = input_values_.find(name); v != input_values_.end() && v->second.dims() == it->second.dims)
      live[name].host = v->second;
  }
  KILN_ASSIGN_OR_RETURN(Values done, execute(*graph_, std::move(live), nullptr, timings));
  out.clear();
  for (const auto& name : graph_->outputs) {
    Slot init;
    Slot* s = nullptr;
    if (auto it = done.find(name); it != done.end()) {
      s = &it->second;
    } else if (const DeviceTensor* w = weights_->find(name)) {
      init.dev = *w;
      s = &init;
    } else {
      return internal_error("graph output '{}' was not produced", name);
    }
    KILN_RETURN_IF_ERROR(ensure_device(name, *s));
    out[name] = *s->dev;
  }
  stats_.arena = mode == Mode::kArena;
  last_output_dims_.clear();
  dims_from_plan_ = false;
  for (const auto& [name, t] : out) last_output_dims_[name] = t.dims;
  return Status();
}

Status GraphExecutor::check_output_sizes(const std::map<std::string, std::vector<int64_t>>& dims,
                                         const std::map<std::string, DeviceTensor>& outputs) const {
  for (const auto& [name, d] : dims) {
    auto it = outputs.find(name);
    if (it == outputs.end()) return invalid_argument("output '{}' has no device buffer", name);
    auto desc = graph_->value(name);
    const DType dt = desc ? desc->dtype : it->second.dtype;
    const size_t bytes = static_cast<size_t>(num_elements(d)) * dtype_size(dt);
    if (bytes > it->second.nbytes())
      return invalid_argument("output '{}' is {} bytes ({}) but its buffer holds {} bytes", name, bytes,
                              dims_to_string(d), it->second.nbytes());
  }
  return Status();
}

Status GraphExecutor::copy_outputs(const std::map<std::string, DeviceTensor>& produced,
                                   std::map<std::string, DeviceTensor>& outputs) {
  std::map<std::string, std::vector<int64_t>> dims;
  for (const auto& [name, t] : produced) dims[name] = t.dims;
  // Every size is checked before anything is written, so a too-small buffer never leaves partial results.
  KILN_RETURN_IF_ERROR(check_output_sizes(dims, outputs));
  for (const auto& [name, t] : produced)
    if (t.nbytes() && outputs.at(name).data != t.data)  // else written there directly
      KILN_CUDA_CHECK(cudaMemcpyAsync(outputs.at(name).data, t.data, t.nbytes(), cudaMemcpyDeviceToDevice, res_.stream));
  return Status();
}

Status GraphExecutor::build_plan(Plan& plan, const std::map<std::string, DeviceTensor>& inputs,
                                 std::map<std::string, DeviceTensor>* user_outputs,
                                 std::map<std::string, DeviceTensor>& produced) {
  trace_ = std::make_shared<AllocationTrace>();
  Status st = run_once(Mode::kTrace, &plan, inputs, produced, nullptr, user_outputs);
  std::vector<LifetimeBlock> blocks = trace_->blocks();
  trace_.reset();
  if (st.code() == StatusCode::kOutOfMemory) {
    // The blocks the failed trace got are idle now: give them back, so other contexts (and a smaller shape
    // here) find the memory free.
    produced.clear();
    plan.uploads.clear();
    cudaStreamSynchronize(res_.stream);
    cudaGetLastError();
    pool_->trim();
  }
  KILN_RETURN_IF_ERROR(st);
  if (user_outputs) KILN_RETURN_IF_ERROR(copy_outputs(produced, *user_outputs));
  for (const auto& [name, t] : produced) plan.output_dims[name] = t.dims;
  plan.stats = stats_;
  plan.deterministic = stats_.downloads == 0;
  if (!plan.deterministic) {
    plan.capture_error = fmt::format("{} value(s) read back from the GPU (CPU fallback or data-dependent shapes)",
                                     stats_.downloads);
    return Status();
  }
  plan.layout = pack_by_lifetime(blocks);
  plan.sizes.clear();
  for (const auto& b : blocks) plan.sizes.push_back(b.bytes);
  const size_t arena_bytes = std::max<size_t>(plan.layout.total, 256);
  size_t held = pool_->bytes_held();
  for (const auto& p : plans_) held += p->arena ? p->layout.total : 0;
  if (memory_limit_ && held + arena_bytes > memory_limit_)
    return make_error(StatusCode::kOutOfMemory,
                      "GPU memory cap reached: the activation arena for inputs {} needs {} bytes, {} are held, cap {} "
                      "bytes; raise the cap or use smaller shapes",
                      shapes_text(inputs), arena_bytes, held, memory_limit_);
  // The trace's blocks now sit idle in the pool; the arena replaces them.
  KILN_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
  pool_->trim();
  void* base = nullptr;
  KILN_RETURN_IF_ERROR(device_alloc(&base, arena_bytes, fmt::format("the activation arena for inputs {}", shapes_text(inputs))));
  plan.arena = std::shared_ptr<void>(base, [](void* p) { cudaFree(p); });
  return Status();
}

Status GraphExecutor::capture(Plan& plan, const std::map<std::string, DeviceTensor>& inputs,
                              std::map<std::string, DeviceTensor>* user_outputs) {
  const RunStats stats = stats_;
  const auto dims = last_output_dims_;
  KILN_CUDA_CHECK(cudaStreamBeginCapture(res_.stream, cudaStreamCaptureModeThreadLocal));
  std::map<std::string, DeviceTensor> produced;
  Status st = run_once(Mode::kArena, &plan, inputs, produced, nullptr, user_outputs);
  if (st.ok() && user_outputs) st = copy_outputs(produced, *user_outputs);
  cudaGraph_t graph = nullptr;
  cudaError_t e = cudaStreamEndCapture(res_.stream, &graph);
  if (st.ok() && e == cudaSuccess) e = cudaGraphInstantiate(&plan.exec, graph, 0);
  if (graph) cudaGraphDestroy(graph);
  stats_ = stats;
  last_output_dims_ = dims;
  if (!st.ok() || e != cudaSuccess) {
    cudaGetLastError();
    plan.exec = nullptr;
    plan.capture_error = st.ok() ? std::string(cudaGetErrorString(e)) : st.message();
    return Status();  // not fatal: this signature runs node by node in its arena
  }
  plan.outputs = std::move(produced);
  return Status();
}

GraphExecutor::Plan* GraphExecutor::find_plan(const std::string& key) {
  for (auto it = plans_.begin(); it != plans_.end(); ++it)
    if ((*it)->key == key) {
      plans_.splice(plans_.begin(), plans_, it);
      return plans_.front().get();
    }
  return nullptr;
}

void GraphExecutor::evict_plans(size_t keep) {
  if (plans_.size() <= keep) return;
  cudaStreamSynchronize(res_.stream);  // an evicted graph may still be running
  while (plans_.size() > keep) plans_.pop_back();
}

const std::map<std::string, std::vector<int64_t>>& GraphExecutor::last_output_dims() const {
  return dims_from_plan_ && last_plan_ ? last_plan_->output_dims : last_output_dims_;
}

RunInfo GraphExecutor::last_run_info() const {
  RunInfo r;
  r.cuda_graph = stats_.graph_replay;
  r.arena = stats_.arena;
  r.gpu_nodes = stats_.gpu_nodes;
  r.host_nodes = stats_.host_nodes;
  r.fallback_nodes = stats_.fallback_nodes;
  r.downloads = stats_.downloads;
  r.cached_plans = static_cast<int>(plans_.size());
  r.plan_cache_limit = static_cast<int>(kMaxPlans);
  r.value_keyed_inputs.assign(value_keyed_.begin(), value_keyed_.end());
  const Plan* plan = nullptr;
  for (const auto& p : plans_)
    if (p.get() == last_plan_) plan = p.get();
  if (plan) {
    r.arena_bytes = plan->arena ? plan->layout.total : 0;
    if (!r.cuda_graph)
      r.not_captured = !cuda_graphs_ ? "CUDA graphs are off (--no-cuda-graph or set_cuda_graphs(false))"
                                     : plan->capture_error.empty() ? "first run of this shape (traced)"
                                                                   : plan->capture_error;
  }
  return r;
}

Status GraphExecutor::run_planned(const std::string& key, const std::map<std::string, DeviceTensor>& inputs,
                                  std::map<std::string, DeviceTensor>* user_outputs,
                                  std::map<std::string, DeviceTensor>& produced) {
  last_plan_ = nullptr;
  traced_last_ = false;
  Plan* plan = find_plan(key);
  if (!plan) {
    // First run of this signature: the traced run computes the results; capture only records.
    auto fresh = std::make_unique<Plan>();
    fresh->key = key;
    KILN_RETURN_IF_ERROR(build_plan(*fresh, inputs, user_outputs, produced));
    learn_value_keys(*fresh, inputs);
    if (fresh->deterministic && cuda_graphs_) KILN_RETURN_IF_ERROR(capture(*fresh, inputs, user_outputs));
    plans_.push_front(std::move(fresh));
    evict_plans(kMaxPlans);
    last_plan_ = plans_.front().get();
    traced_last_ = true;
    return Status();
  }
  last_plan_ = plan;
  if (cuda_graphs_ && plan->deterministic && !plan->exec && plan->capture_error.empty())
    KILN_RETURN_IF_ERROR(capture(*plan, inputs, user_outputs));
  if (cuda_graphs_ && plan->exec) {
    if (user_outputs) KILN_RETURN_IF_ERROR(check_output_sizes(plan->output_dims, *user_outputs));
    KILN_CUDA_CHECK(cudaGraphLaunch(plan->exec, res_.stream));
    stats_ = plan->stats;  // the same nodes ran where the trace put them
    stats_.downloads = 0;
    stats_.graph_replay = stats_.arena = true;
    dims_from_plan_ = true;
    if (!user_outputs) produced = plan->outputs;  // run() reads them back; enqueue copied them in the graph
    return Status();
  }
  // Buffers big enough before anything runs: a direct output would otherwise be written past its end.
  if (user_outputs && plan->deterministic) KILN_RETURN_IF_ERROR(check_output_sizes(plan->output_dims, *user_outputs));
  KILN_RETURN_IF_ERROR(run_once(plan->deterministic ? Mode::kArena : Mode::kPool, plan, inputs, produced, nullptr,
                                user_outputs));
  if (user_outputs) KILN_RETURN_IF_ERROR(copy_outputs(produced, *user_outputs));
  return Status();
}

Result<std::map<std::string, Tensor>> GraphExecutor::run(const std::map<std::string, Tensor>& inputs) {
  std::map<std::string, DeviceTensor> dev;
  for (const auto& name : graph_->inputs) {
    auto it = inputs.find(name);
    if (it == inputs.end()) return invalid_argument("input '{}' was not given", name);
    const Tensor& h = it->second;
    DeviceTensor& st = staging_[name];
    // Staging buffers keep their address while they are big enough, so repeated shapes reuse one plan.
    if (!st.storage || st.nbytes() < h.nbytes()) {
      void* p = nullptr;
      KILN_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
      st = DeviceTensor{};
      KILN_RETURN_IF_ERROR(device_alloc(&p, std::max<size_t>(h.nbytes(), 256),
                                        fmt::format("the device copy of input '{}' {}", name, dims_to_string(h.dims()))));
      st.storage = std::shared_ptr<void>(p, [](void* q) { cudaFree(q); });
      st.data = p;
    }
    st.dtype = h.dtype();
    st.dims = h.dims();
    if (h.nbytes()) KILN_CUDA_CHECK(cudaMemcpyAsync(st.data, h.raw(), h.nbytes(), cudaMemcpyHostToDevice, res_.stream));
    dev[name] = st;
  }
  std::map<std::string, DeviceTensor> produced;
  KILN_ASSIGN_OR_RETURN(std::string values, value_key(dev));
  KILN_RETURN_IF_ERROR(run_planned(signature(dev, nullptr) + values, dev, nullptr, produced));
  std::map<std::string, Tensor> result;
  for (const auto& [name, t] : produced) {
    Tensor h(t.dtype, t.dims);
    if (h.nbytes()) KILN_CUDA_CHECK(cudaMemcpyAsync(h.raw(), t.data, h.nbytes(), cudaMemcpyDeviceToHost, res_.stream));
    result[name] = std::move(h);
  }
  KILN_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
  if (traced_last_ && last_plan_ && last_plan_->arena) {
    produced.clear();  // the traced run's results, in pool blocks the arena replaces
    pool_->trim();
  }
  return result;
}

Status GraphExecutor::run_device(const std::map<std::string, DeviceTensor>& inputs,
                                 std::map<std::string, DeviceTensor>& outputs, cudaStream_t stream) {
  // Work runs on our stream, ordered after the caller's stream and back; nothing here waits for the GPU
  // unless a CPU fallback needs a value.
  KILN_CUDA_CHECK(cudaEventRecord(ready_, stream));
  KILN_CUDA_CHECK(cudaStreamWaitEvent(res_.stream, ready_));
  std::map<std::string, DeviceTensor> produced;
  // The same buffers as last time (the steady state of enqueue) reuse the last key: nothing is built.
  bool same = inputs.size() == last_bound_inputs_.size() && outputs.size() == last_bound_outputs_.size() &&
              !last_key_.empty();
  size_t i = 0;
  for (auto it = inputs.begin(); same && it != inputs.end(); ++it, ++i)
    same = last_bound_inputs_[i].first == it->second.data && last_bound_inputs_[i].second == it->second.dims;
  i = 0;
  for (auto it = outputs.begin(); same && it != outputs.end(); ++it, ++i) same = last_bound_outputs_[i] == it->second.data;
  if (!same) {
    last_key_ = signature(inputs, &outputs);
    last_bound_inputs_.clear();
    last_bound_outputs_.clear();
    for (const auto& [name, t] : inputs) last_bound_inputs_.emplace_back(t.data, t.dims);
    for (const auto& [name, t] : outputs) last_bound_outputs_.push_back(t.data);
  }
  KILN_ASSIGN_OR_RETURN(std::string values, value_key(inputs));
  KILN_RETURN_IF_ERROR(run_planned(values.empty() ? last_key_ : last_key_ + values, inputs, &outputs, produced));
  KILN_CUDA_CHECK(cudaEventRecord(ready_, res_.stream));
  KILN_CUDA_CHECK(cudaStreamWaitEvent(stream, ready_));
  if (traced_last_ && last_plan_ && last_plan_->arena) {
    // A new shape's traced run left its results in pool blocks; the arena serves this shape from now on, so
    // give those blocks back once the copies out of them are done (first run of a shape only).
    KILN_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
    produced.clear();
    pool_->trim();
  }
  return Status();
}

void GraphExecutor::learn_value_keys(const Plan& traced, const std::map<std::string, DeviceTensor>& inputs) {
  if (value_keying_off_) return;
  const bool keyed = !input_values_.empty();
  if (keyed && !traced.deterministic) {
    // The values were on the host and the run still read something back: keying buys nothing here.
    value_keying_off_ = true;
  } else if (keyed && plans_.size() >= kMaxPlans && ++value_key_evictions_ > kMaxPlans) {
    // Values that keep changing (more new ones than the cache holds) would trace and capture nearly every
    // call: those inputs are read back inside the run again, as before keying.
    value_keying_off_ = true;
  } else if (!keyed && !traced.deterministic) {
    // A read-back in the run, which shape math on small integer inputs usually causes: from the next run their
    // values are read first and join the key, so that math runs on the host and the plan can be captured.
    for (const auto& [name, t] : inputs)
      if (value_keyable(t)) value_keyed_.insert(name);
  }
  if (value_keying_off_) value_keyed_.clear();
}

Result<std::string> GraphExecutor::value_key(const std::map<std::string, DeviceTensor>& inputs) {
  input_values_.clear();
  if (value_keyed_.empty()) return std::string();
  for (const auto& name : value_keyed_) {
    auto it = inputs.find(name);
    if (it == inputs.end() || !value_keyable(it->second)) continue;  // read in the run instead
    Tensor t(it->second.dtype, it->second.dims);
    if (t.nbytes())
      KILN_CUDA_CHECK(cudaMemcpyAsync(t.raw(), it->second.data, t.nbytes(), cudaMemcpyDeviceToHost, res_.stream));
    input_values_.emplace(name, std::move(t));
  }
  KILN_CUDA_CHECK(cudaStreamSynchronize(res_.stream));  // the values are ordered after the caller's work
  std::string key;
  for (const auto& [name, t] : input_values_)
    key += fmt::format("{}={};", name, std::string_view(static_cast<const char*>(t.raw()), t.nbytes()));
  return key;
}

Result<std::vector<LayerTiming>> GraphExecutor::profile(const std::map<std::string, DeviceTensor>& inputs,
                                                        cudaStream_t stream) {
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  input_values_.clear();  // a profiled run reads what it needs itself
  std::vector<LayerTiming> timings;
  std::map<std::string, DeviceTensor> produced;
  KILN_RETURN_IF_ERROR(run_once(Mode::kPool, nullptr, inputs, produced, &timings));
  KILN_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
  return timings;
}

}  // namespace kiln::cuda
