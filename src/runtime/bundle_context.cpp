// A bundle's context: each run goes to the context of the member engine that takes its shapes.
#include "runtime/context_state.h"
#include "runtime/profile_fit.h"
#include "util/error.h"

namespace kiln {

Result<ExecutionContext*> routed_member(ContextState& cs, const std::map<std::string, std::vector<int64_t>>* dims) {
  const EngineState& s = *cs.engine.state();
  auto& b = cs.bundle;
  int profile = cs.profile;
  if (!b.pinned) {
    if (dims || b.routed_generation != b.generation) {
      KILN_ASSIGN_OR_RETURN(profile, route_bundle(s, dims ? *dims : cs.input_dims));
      if (!dims) b.routed_generation = b.generation;
    } else {
      profile = b.routed;
    }
  }
  const auto [member, member_profile] = s.slots.at(static_cast<size_t>(profile));
  if (b.contexts.empty()) {
    b.contexts.resize(s.members.size());
    b.synced.assign(s.members.size(), 0);
  }
  auto& ctx = b.contexts[static_cast<size_t>(member)];
  if (!ctx) {
    KILN_ASSIGN_OR_RETURN(ExecutionContext made, Engine(s.members[static_cast<size_t>(member)]).create_context());
    if (b.cuda_graphs) made.set_cuda_graphs(*b.cuda_graphs);
    if (b.memory_limit) made.set_device_memory_limit(b.memory_limit);
    ctx = std::make_unique<ExecutionContext>(std::move(made));
  }
  b.routed = profile;  // only once its context exists: last_run_info reads it
  if (ctx->profile() != member_profile || b.synced[static_cast<size_t>(member)] != b.generation) {
    KILN_RETURN_IF_ERROR(ctx->set_profile(member_profile));
    if (!dims)
      for (const auto& [name, d] : cs.input_dims) KILN_RETURN_IF_ERROR(ctx->set_input_shape(name, d));
    for (const auto& [name, binding] : cs.bindings)
      KILN_RETURN_IF_ERROR(ctx->set_tensor_address(name, binding.address, binding.capacity));
    // infer() sets its own shapes on the member, so the next enqueue sets this context's again.
    b.synced[static_cast<size_t>(member)] = dims ? 0 : b.generation;
  }
  return ctx.get();
}

}  // namespace kiln
