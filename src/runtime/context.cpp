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

}  // namespace

std::map<std::string, Binding>::const_iterator bound_output(const ContextState& cs, const EngineState& s,
                                                           const std::string& output) {
  auto b = cs.bindings.find(output);
  if (b != cs.bindings.end()) return b;
  auto alias = s.info.aliases.find(output);
  return alias == s.info.aliases.end() ? cs.bindings.end() : cs.bindings.find(alias->second);
}

Result<BoundInput> bound_input(const ContextState& cs, const TensorDesc& d, const char* no_address,
                               const char* no_shape) {
  auto b = cs.bindings.find(d.name);
  if (b == cs.bindings.end()) return invalid_argument("input '{}' has no address; {}", printable(d.name), no_address);
  auto dims = cs.input_dims.find(d.name);
  if (dims == cs.input_dims.end()) return invalid_argument("input '{}' has no shape; {}", printable(d.name), no_shape);
  const size_t bytes = static_cast<size_t>(num_elements(dims->second)) * dtype_size(d.dtype);
  if (bytes > b->second.capacity)
    return invalid_argument("input '{}' needs {} bytes for {}{} but its buffer holds {}", printable(d.name), bytes,
                            dtype_name(d.dtype), dims_to_string(dims->second), b->second.capacity);
  KILN_RETURN_IF_ERROR(check_input_dims(*cs.engine.state(), cs.profile, d, dims->second));
  return BoundInput{b->second.address, dims->second};
}

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
    const auto& last_dims = state_->backend->last_output_dims(*state_);
    auto last = last_dims.find(name);
    if (last != last_dims.end()) return last->second;
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
    if (state_->is_bundle()) {
      KILN_ASSIGN_OR_RETURN(ExecutionContext * member, routed_member(*state_));
      return member->enqueue(stream);
    }
    return state_->backend->enqueue(*this, *state_, stream);
  });
}

void ExecutionContext::set_cuda_graphs(bool enabled) {
  if (state_->is_bundle()) {
    state_->bundle.cuda_graphs = enabled;
    for (auto& c : state_->bundle.contexts)
      if (c) c->set_cuda_graphs(enabled);
    return;
  }
  state_->backend->set_cuda_graphs(enabled);
}

bool ExecutionContext::cuda_graphs() const {
  if (state_->is_bundle())
    return engine().info().backend == BackendKind::kCuda && state_->bundle.cuda_graphs.value_or(engine().info().cuda_graphs);
  return state_->backend->cuda_graphs();
}

void ExecutionContext::set_device_memory_limit(size_t bytes) {
  if (state_->is_bundle()) {
    state_->bundle.memory_limit = bytes;
    for (auto& c : state_->bundle.contexts)
      if (c) c->set_device_memory_limit(bytes);
    return;
  }
  state_->backend->set_memory_limit(bytes);
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
  return state_->backend->last_run_info(*state_);
}

size_t ExecutionContext::device_memory_bytes() const {
  if (state_->is_bundle()) {
    size_t total = 0;
    for (const auto& c : state_->bundle.contexts)
      if (c) total += c->device_memory_bytes();
    return total;
  }
  return state_->backend->device_bytes();
}

Result<std::vector<LayerTiming>> ExecutionContext::profile_layers(void* stream) {
  return no_throw("ExecutionContext::profile_layers", [&]() -> Result<std::vector<LayerTiming>> {
    if (state_->is_bundle()) {
      KILN_ASSIGN_OR_RETURN(ExecutionContext * member, routed_member(*state_));
      return member->profile_layers(stream);
    }
    return state_->backend->profile(*state_, stream);
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
    Result<std::map<std::string, Tensor>> out = state_->backend->run(inputs);
    if (!out.ok()) return out.status();
    for (const auto& [name, t] : inputs) state_->input_dims[name] = t.dims();
    state_->device_bindings_valid = false;
    for (const auto& [name, t] : *out) state_->last_output_dims[name] = t.dims();
    return out;
  });
}

}  // namespace kiln
