#include <algorithm>
#include <set>

#include "backends/cpu/executor.h"
#include "engine/engine_file.h"
#include "kiln/context.h"
#include "runtime/context_state.h"
#include "util/error.h"
#include "util/file.h"
#include "util/no_throw.h"
#include "util/safe_text.h"

namespace kiln {

Engine::Engine() = default;
Engine::~Engine() = default;
Engine::Engine(const Engine&) = default;
Engine& Engine::operator=(const Engine&) = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;
Engine::Engine(std::shared_ptr<const EngineState> state) : state_(std::move(state)) {}

Result<Engine> Engine::deserialize(std::string_view bytes) {
  return no_throw("Engine::deserialize", [&]() -> Result<Engine> {
    KILN_ASSIGN_OR_RETURN(EngineState s, engine_file::deserialize(bytes));
    return Engine(std::make_shared<const EngineState>(std::move(s)));
  });
}

Result<Engine> Engine::load(const std::string& path) {
  return no_throw("Engine::load", [&]() -> Result<Engine> {
    KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
    if (bytes.empty())
      return Status(StatusCode::kInvalidEngine,
                    "engine file '" + path + "' is empty (0 bytes); rebuild it with `kiln build MODEL.onnx -o FILE.kiln`");
    auto e = deserialize(bytes);
    if (!e.ok()) return e.status().with_context("engine '" + path + "'");
    return e;
  });
}

Result<std::string> Engine::serialize() const {
  return no_throw("Engine::serialize", [&]() -> Result<std::string> {
    if (!state_) return invalid_argument("serialize() on an empty Engine");
    return engine_file::serialize(*state_);
  });
}

Status Engine::save(const std::string& path) const {
  return no_throw("Engine::save", [&]() -> Status {
    KILN_ASSIGN_OR_RETURN(std::string bytes, serialize());
    return write_file_atomic(path, bytes);
  });
}

namespace {
const std::vector<TensorDesc> kNoDescs;
const std::vector<OptimizationProfile> kNoProfiles;
const EngineInfo kNoInfo;
}  // namespace

const std::vector<TensorDesc>& Engine::inputs() const { return state_ ? state_->inputs : kNoDescs; }
const std::vector<TensorDesc>& Engine::outputs() const { return state_ ? state_->outputs : kNoDescs; }
const std::vector<OptimizationProfile>& Engine::profiles() const { return state_ ? state_->profiles : kNoProfiles; }
const EngineInfo& Engine::info() const { return state_ ? state_->info : kNoInfo; }

std::map<std::string, int> Engine::op_histogram() const {
  std::map<std::string, int> h;
  if (state_)
    for (const auto& n : state_->graph->nodes) ++h[n.op_type];
  return h;
}

Result<ExecutionContext> Engine::create_context() const {
  return no_throw("Engine::create_context", [&]() -> Result<ExecutionContext> {
    if (!state_) return invalid_argument("create_context() on an empty Engine");
    auto cs = std::make_unique<ContextState>();
    cs->engine = *this;
    for (const auto& d : state_->inputs)
      if (d.shape.is_static()) cs->input_dims[d.name] = d.shape.static_dims();
    // A bundle's context makes its members' contexts when a run first goes to them (routed_member).
    if (state_->members.empty()) {
      KILN_ASSIGN_OR_RETURN(cs->backend, make_run_backend(*state_));
    }
    return ExecutionContext(std::move(cs));
  });
}

}  // namespace kiln
