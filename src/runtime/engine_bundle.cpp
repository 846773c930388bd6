// Engine bundles: several engines of one model in one Engine (kiln build --bundle); contexts route each run.
#include "engine/engine_file.h"
#include "engine/engine_state.h"
#include "util/error.h"
#include "util/no_throw.h"

namespace kiln {

Result<Engine> Engine::bundle(const std::vector<Engine>& members) {
  return no_throw("Engine::bundle", [&]() -> Result<Engine> {
    if (members.size() < 2) return invalid_argument("a bundle holds two or more engines, got {}", members.size());
    EngineState draft;
    for (size_t k = 0; k < members.size(); ++k) {
      if (!members[k].state()) return invalid_argument("bundle member {} is an empty Engine", k);
      draft.members.push_back(members[k].state());
    }
    // Checked here so the error names members before anything is written; the file round trip then gives the
    // bundle exactly the state Engine::load would (weights shared by content, one device copy).
    std::vector<EngineState> copies;
    for (const auto& m : draft.members) copies.push_back(*m);
    EngineState checked;
    KILN_RETURN_IF_ERROR(finalize_bundle_state(checked, std::move(copies)));
    draft.inputs = checked.inputs;
    draft.outputs = checked.outputs;
    draft.info = checked.info;
    draft.info.gpu_json = checked.info.gpu_json;
    KILN_ASSIGN_OR_RETURN(std::string bytes, engine_file::serialize(draft));
    return Engine::deserialize(bytes);
  });
}

std::vector<Engine> Engine::members() const {
  std::vector<Engine> out;
  if (state_)
    for (const auto& m : state_->members) out.emplace_back(m);
  return out;
}

}  // namespace kiln
