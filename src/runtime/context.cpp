#include <cstring>

#include "backends/cpu/executor.h"
#ifdef KILN_WITH_CUDA
#include "backends/cuda/executor.h"
#endif
#include "kiln/context.h"
#include "passes/pass.h"
#include "runtime/context_state.h"
#include "runtime/profile_fit.h"
#include "util/error.h"
#include "util/no_throw.h"
#include "util/safe_text.h"

namespace kiln {

namespace {

const TensorDesc* find_desc(const std::vector<TensorDesc>& descs, const std::string& name) {
  for (const auto& d : descs)
    if (d.name == name) return &d;
  return nullptr;
}

std::string names_of(const std::vector<TensorDesc>& descs) {
  std::vector<std::string> n;
  for (const auto& d : descs) n.push_back("'" + printable(d.name) + "'");
  return fmt::format("{}", fmt::join(n, ", "));
}

// Where an output goes: its own binding, else (an aliased output: a KV cache) its input's buffer.
std::map<std::string, Binding>::const_iterator bound_output(const ContextState& cs, const EngineState& s,
                                                                         const std::string& output) {
  auto b = cs.bindings.find(output);
  if (b != cs.bindings.end()) return b;
  auto alias = s.info.aliases.find(output);
  return alias == s.info.aliases.end() ? cs.bindings.end() : cs.bindings.find(alias->second);
}

#ifdef KILN_WITH_CUDA
// Bindings are device pointers: inputs are read in place, outputs written into the caller's buffers.
Status enqueue_cuda(ContextState& cs, const EngineState& s, cudaStream_t stream) {
  if (!cs.device_bindings_valid) {
    cs.device_inputs.clear();
    cs.device_outputs.clear();
    for (const auto& d : s.inputs) {
      auto b = cs.bindings.find(d.name);
      if (b == cs.bindings.end()) return invalid_argument("input '{}' has no address; call set_tensor_address", printable(d.name));
      auto dims = cs.input_dims.find(d.name);
      if (dims == cs.input_dims.end()) return invalid_argument("input '{}' has no shape; call set_input_shape", printable(d.name));
      cuda::DeviceTensor t{d.dtype, dims->second, b->second.address, nullptr};
      if (t.nbytes() > b->second.capacity)
        return invalid_argument("input '{}' needs {} bytes for {} but its buffer holds {}", printable(d.name), t.nbytes(),
                                dims_to_string(t.dims), b->second.capacity);
      KILN_RETURN_IF_ERROR(check_input_dims(s, cs.profile, d, t.dims));
      cs.device_inputs[d.name] = t;
    }
    for (const auto& d : s.outputs) {
      auto b = bound_output(cs, s, d.name);
      if (b == cs.bindings.end())
        return invalid_argument("output '{}' has no address; call set_tensor_address", printable(d.name));
      // Capacity in elements of the output dtype; the executor checks the real size before writing.
      const auto elems = static_cast<int64_t>(b->second.capacity / std::max<size_t>(dtype_size(d.dtype), 1));
      cs.device_outputs[d.name] = cuda::DeviceTensor{d.dtype, {elems}, b->second.address, nullptr};
    }
    cs.device_bindings_valid = true;
  }
  return cs.gpu->run_device(cs.device_inputs, cs.device_outputs, stream);
}

// The bound input buffers and shapes, as device tensors (for profiling).
Result<std::map<std::string, cuda::DeviceTensor>> bound_device_inputs(const ContextState& cs, const EngineState& s) {
  std::map<std::string, cuda::DeviceTensor> inputs;
  for (const auto& d : s.inputs) {
    auto b = cs.bindings.find(d.name);
    auto dims = cs.input_dims.find(d.name);
    if (b == cs.bindings.end() || dims == cs.input_dims.end())
      return invalid_argument("input '{}' needs set_input_shape and set_tensor_address before profiling", printable(d.name));
    cuda::DeviceTensor t{d.dtype, dims->second, b->second.address, nullptr};
    if (t.nbytes() > b->second.capacity)
      return invalid_argument("input '{}' needs {} bytes for {} but its buffer holds {}", printable(d.name), t.nbytes(),
                              dims_to_string(t.dims), b->second.capacity);
    inputs[d.name] = t;
  }
  return inputs;
}
#endif

}  // namespace

ExecutionContext::ExecutionContext(std::unique_ptr<ContextState> state) : state_(std::move(state)) {}
ExecutionContext::ExecutionContext(ExecutionContext&&) noexcept = default;
ExecutionContext& ExecutionContext::operator=(ExecutionContext&&) noexcept = default;
ExecutionContext::~ExecutionContext() = default;

const Engine& ExecutionContext::engine() const { return state_->engine; }
int ExecutionContext::profile() const {
  if (state_->is_bundle() && !state_->bundle.pinned) return std::max(state_->bundle.routed, 0);
  return state_->profile;
}

Status ExecutionContext::set_profile(int index) {
  return no_throw("ExecutionContext::set_profile", [&]() -> Status {
    if (state_->is_bundle() && index == -1) {  // back to routing by shape
      state_->bundle.pinned = false;
      ++state_->bundle.generation;
      return Status();
    }
    const auto n = static_cast<int>(engine().profiles().size());
    if (index < 0 || (n > 0 && index >= n) || (n == 0 && index != 0))
      return invalid_argument("profile {} does not exist; the engine has {} profile(s)", index, std::max(n, 1));
    state_->profile = index;
    state_->device_bindings_valid = false;
    state_->bundle.pinned = true;
    return Status();
  });
}

Status ExecutionContext::set_input_shape(const std::string& name, const std::vector<int64_t>& dims) {
  return no_throw("ExecutionContext::set_input_shape", [&]() -> Status {
    const EngineState& s = *engine().state();
    const TensorDesc* d = find_desc(s.inputs, name);
    if (!d) return not_found("the engine has no input '{}'; its inputs are {}", printable(name), names_of(s.inputs));
    if (state_->is_bundle() && !state_->bundle.pinned) {
      KILN_RETURN_IF_ERROR(check_input_dims(s, -1, *d, dims));
      KILN_RETURN_IF_ERROR(route_bundle(s, {{name, dims}}).status());
    } else {
      KILN_RETURN_IF_ERROR(check_input_dims(s, state_->profile, *d, dims));
    }
    state_->input_dims[name] = dims;
    state_->device_bindings_valid = false;
    ++state_->bundle.generation;
    return Status();
  });
}

Result<std::vector<int64_t>> ExecutionContext::output_shape(const std::string& name) const {
  return no_throw("ExecutionContext::output_shape", [&]() -> Result<std::vector<int64_t>> {
    const EngineState& s = *engine().state();
    if (!find_desc(s.outputs, name)) return not_found("the engine has no output '{}'; its outputs are {}", printable(name), names_of(s.outputs));
    if (state_->is_bundle()) {
      KILN_ASSIGN_OR_RETURN(ExecutionContext * member, routed_member(*state_));
      return member->output_shape(name);
    }
    // Shape inference over a copy of the graph with the current concrete input dims.
    ir::Graph g = *s.graph;
    for (const auto& in : g.inputs) {
      auto it = state_->input_dims.find(in);
      if (it == state_->input_dims.end()) return invalid_argument("input '{}' has no shape yet; call set_input_shape first", printable(in));
      g.values[in].shape = Shape::from_dims(it->second);
    }
    for (auto& [k, v] : g.values)
      if (!g.is_constant(k) && std::find(g.inputs.begin(), g.inputs.end(), k) == g.inputs.end()) v.shape = Shape();
    KILN_RETURN_IF_ERROR(passes::infer_shapes(g));
    if (!g.values[name].shape.is_static()) {
      // Shape math the engine kept (GPT-2's Reshape targets read Shape of the input) folds once the input dims
      // are concrete. Without this, callers sizing buffers need a whole run first, and its plan (every output in
      // the arena: 1.6 GB of logits at batch 32) stays with the context.
      // Best effort: where folding stops short, the last run's dims below still answer.
      (void)passes::fold_shape_subgraphs(g);
    }
    const Shape& shape = g.values[name].shape;
    if (shape.is_static()) return shape.static_dims();
    const auto* last_dims = &state_->last_output_dims;
#ifdef KILN_WITH_CUDA
    if (state_->gpu) last_dims = &state_->gpu->last_output_dims();
#endif
    auto last = last_dims->find(name);
    if (last != last_dims->end()) return last->second;
    return invalid_argument("output '{}' has shape {} that depends on input values; run once, then ask again", printable(name),
                            shape.to_string());
  });
}

Status ExecutionContext::set_tensor_address(const std::string& name, void* address, size_t capacity_bytes) {
  return no_throw("ExecutionContext::set_tensor_address", [&]() -> Status {
    const EngineState& s = *engine().state();
    if (!find_desc(s.inputs, name) && !find_desc(s.outputs, name))
      return not_found("the engine has no tensor '{}'; inputs: {}; outputs: {}", printable(name), names_of(s.inputs), names_of(s.outputs));
    if (!address) return invalid_argument("tensor '{}': address is null", printable(name));
    if (s.info.backend == BackendKind::kCuda && reinterpret_cast<uintptr_t>(address) % 16 != 0)
      return invalid_argument("tensor '{}': device address {} is not 16-byte aligned (cudaMalloc returns 256-byte "
                              "aligned memory; offset sub-buffers by multiples of 16 bytes)",
                              printable(name), address);
    state_->bindings[name] = {address, capacity_bytes};
    state_->device_bindings_valid = false;
    ++state_->bundle.generation;
    return Status();
  });
}

Status ExecutionContext::enqueue(void* stream) {
  return no_throw("ExecutionContext::enqueue", [&]() -> Status {
    const EngineState& s = *engine().state();
    if (state_->is_bundle()) {
      KILN_ASSIGN_OR_RETURN(ExecutionContext * member, routed_member(*state_));
      return member->enqueue(stream);
    }
#ifdef KILN_WITH_CUDA
    if (state_->gpu) return enqueue_cuda(*state_, s, static_cast<cudaStream_t>(stream));
#else
    (void)stream;
#endif
    std::map<std::string, Tensor> inputs;
    for (const auto& d : s.inputs) {
      auto b = state_->bindings.find(d.name);
      if (b == state_->bindings.end()) return invalid_argument("input '{}' has no address; call set_tensor_address", printable(d.name));
      auto dims = state_->input_dims.find(d.name);
      if (dims == state_->input_dims.end()) return invalid_argument("input '{}' has no shape; call set_input_shape", printable(d.name));
      Tensor t = Tensor::wrap(d.dtype, dims->second, b->second.address);
      if (t.nbytes() > b->second.capacity)
        return invalid_argument("input '{}' needs {} bytes for {} but its buffer holds {}", printable(d.name), t.nbytes(),
                                t.describe(), b->second.capacity);
      inputs[d.name] = t;
    }
    for (const auto& d : s.outputs)
      if (bound_output(*state_, s, d.name) == state_->bindings.end())
        return invalid_argument("output '{}' has no address; call set_tensor_address", printable(d.name));
    KILN_ASSIGN_OR_RETURN(auto outputs, infer(inputs));
    // Check every size before writing any, so a too-small buffer never leaves partial results. The CPU backend
    // computes every output aside, so an output bound to an input's buffer (an alias) is copied there after the
    // whole run has read it.
    for (const auto& d : s.outputs) {
      const Tensor& t = outputs.at(d.name);
      const auto& b = bound_output(*state_, s, d.name)->second;
      if (t.nbytes() > b.capacity)
        return invalid_argument("output '{}' is {} ({} bytes) but its buffer holds {} bytes", printable(d.name), t.describe(),
                                t.nbytes(), b.capacity);
    }
    // Outputs into an input's buffer go last: another output may still be a view of that input's bytes.
    auto into_input = [&](const void* address) {
      for (const auto& in : s.inputs)
        if (state_->bindings.at(in.name).address == address) return true;
      return false;
    };
    for (const bool last : {false, true})
      for (const auto& d : s.outputs) {
        const Tensor& t = outputs.at(d.name);
        void* dst = bound_output(*state_, s, d.name)->second.address;
        if (t.nbytes() && into_input(dst) == last) std::memmove(dst, t.raw(), t.nbytes());
      }
    return Status();
  });
}

void ExecutionContext::set_cuda_graphs(bool enabled) {
  if (state_->is_bundle()) {
    state_->bundle.cuda_graphs = enabled;
    for (auto& c : state_->bundle.contexts)
      if (c) c->set_cuda_graphs(enabled);
    return;
  }
#ifdef KILN_WITH_CUDA
  if (state_->gpu) state_->gpu->set_cuda_graphs(enabled);
#else
  (void)enabled;
#endif
}

bool ExecutionContext::cuda_graphs() const {
  if (state_->is_bundle())
    return engine().info().backend == BackendKind::kCuda && state_->bundle.cuda_graphs.value_or(engine().info().cuda_graphs);
#ifdef KILN_WITH_CUDA
  if (state_->gpu) return state_->gpu->cuda_graphs();
#endif
  return false;
}

void ExecutionContext::set_device_memory_limit(size_t bytes) {
  if (state_->is_bundle()) {
    state_->bundle.memory_limit = bytes;
    for (auto& c : state_->bundle.contexts)
      if (c) c->set_device_memory_limit(bytes);
    return;
  }
#ifdef KILN_WITH_CUDA
  if (state_->gpu) state_->gpu->set_memory_limit(bytes);
#else
  (void)bytes;
#endif
}

RunInfo ExecutionContext::last_run_info() const {
  if (state_->is_bundle()) {
    const auto& b = state_->bundle;
    if (b.routed < 0) return RunInfo{};
    const int member = engine().state()->slots.at(static_cast<size_t>(b.routed)).first;
    const auto& ctx = b.contexts.at(static_cast<size_t>(member));
    if (!ctx) return RunInfo{};
    RunInfo r = ctx->last_run_info();
    r.bundle_member = member;
    return r;
  }
#ifdef KILN_WITH_CUDA
  if (state_->gpu) return state_->gpu->last_run_info();
#endif
  RunInfo r;
  r.host_nodes = static_cast<int>(engine().info().num_nodes);
  return r;
}

size_t ExecutionContext::device_memory_bytes() const {
  if (state_->is_bundle()) {
    size_t total = 0;
    for (const auto& c : state_->bundle.contexts)
      if (c) total += c->device_memory_bytes();
    return total;
  }
#ifdef KILN_WITH_CUDA
  if (state_->gpu) return state_->gpu->device_bytes();
#endif
  return 0;
}

Result<std::vector<LayerTiming>> ExecutionContext::profile_layers(void* stream) {
  return no_throw("ExecutionContext::profile_layers", [&]() -> Result<std::vector<LayerTiming>> {
    const EngineState& s = *engine().state();
    if (state_->is_bundle()) {
      KILN_ASSIGN_OR_RETURN(ExecutionContext * member, routed_member(*state_));
      return member->profile_layers(stream);
    }
#ifdef KILN_WITH_CUDA
    if (state_->gpu) {
      KILN_ASSIGN_OR_RETURN(auto inputs, bound_device_inputs(*state_, s));
      for (const auto& d : s.inputs) KILN_RETURN_IF_ERROR(check_input_dims(s, state_->profile, d, inputs.at(d.name).dims));
      return state_->gpu->profile(inputs, static_cast<cudaStream_t>(stream));
    }
#else
    (void)stream;
#endif
    if (!s.cpu) return unsupported("this engine's backend '{}' cannot run here", backend_name(s.info.backend));
    std::map<std::string, Tensor> inputs;
    for (const auto& d : s.inputs) {
      auto b = state_->bindings.find(d.name);
      auto dims = state_->input_dims.find(d.name);
      if (b == state_->bindings.end() || dims == state_->input_dims.end())
        return invalid_argument("input '{}' needs set_input_shape and set_tensor_address before profiling", printable(d.name));
      Tensor t = Tensor::wrap(d.dtype, dims->second, b->second.address);
      if (t.nbytes() > b->second.capacity)
        return invalid_argument("input '{}' needs {} bytes for {} but its buffer holds {}", printable(d.name), t.nbytes(),
                                t.describe(), b->second.capacity);
      KILN_RETURN_IF_ERROR(check_input_dims(s, state_->profile, d, t.dims()));
      inputs[d.name] = t;
    }
    return s.cpu->profile(inputs);
  });
}

Result<std::map<std::string, Tensor>> ExecutionContext::infer(const std::map<std::string, Tensor>& inputs) {
  return no_throw("ExecutionContext::infer", [&]() -> Result<std::map<std::string, Tensor>> {
    const EngineState& s = *engine().state();
    for (const auto& [name, t] : inputs)
      if (!find_desc(s.inputs, name))
        return not_found("the engine has no input '{}'; its inputs are {}", printable(name), names_of(s.inputs));
    for (const auto& d : s.inputs) {
      auto it = inputs.find(d.name);
      if (it == inputs.end())
        return invalid_argument("input '{}' ({} {}) was not given", printable(d.name), dtype_name(d.dtype), d.shape.to_string());
      if (it->second.dtype() != d.dtype)
        return invalid_argument("input '{}' must be {} but {} was given; convert it (e.g. numpy .astype)", printable(d.name),
                                dtype_name(d.dtype), dtype_name(it->second.dtype()));
      const bool routed = state_->is_bundle() && !state_->bundle.pinned;
      KILN_RETURN_IF_ERROR(check_input_dims(s, routed ? -1 : state_->profile, d, it->second.dims()));
    }
    if (state_->is_bundle()) {
      std::map<std::string, std::vector<int64_t>> dims;
      for (const auto& [name, t] : inputs) dims[name] = t.dims();
      KILN_ASSIGN_OR_RETURN(ExecutionContext * member, routed_member(*state_, &dims));
      auto out = member->infer(inputs);
      if (out.ok()) {
        for (const auto& [name, t] : inputs) state_->input_dims[name] = t.dims();
        ++state_->bundle.generation;
      }
      return out;
    }
    Result<std::map<std::string, Tensor>> out = unsupported("this engine's backend '{}' cannot run here",
                                                           backend_name(s.info.backend));
#ifdef KILN_WITH_CUDA
    if (state_->gpu) out = state_->gpu->run(inputs);
    else
#endif
    if (s.cpu) out = s.cpu->run(inputs);
    if (!out.ok()) return out.status();
    for (const auto& [name, t] : inputs) state_->input_dims[name] = t.dims();
    state_->device_bindings_valid = false;
    for (const auto& [name, t] : *out) state_->last_output_dims[name] = t.dims();
    return out;
  });
}

}  // namespace kiln
