#include "fuzz/fuzz_runner.h"

#include <exception>

#include "fuzz/model_mutator.h"
#include "kiln/kiln.h"

namespace kiln::fuzz {

namespace {

// Inputs past this many elements are left out: a mutated dim of 2^40 must be refused by kiln, not by the
// fuzzer's own allocation.
constexpr int64_t kMaxInputElements = int64_t{1} << 22;

Outcome run(const Engine& engine, const std::map<std::string, Tensor>& given) {
  auto ctx = engine.create_context();
  if (!ctx.ok()) return {Stage::kContext, ctx.status().message()};
  auto out = ctx->infer(fit_inputs(engine.inputs(), given, kMaxInputElements));
  if (!out.ok()) return {Stage::kRun, out.status().message()};
  return {Stage::kRan, ""};
}

}  // namespace

std::string_view stage_name(Stage s) {
  switch (s) {
    case Stage::kBuild: return "build";
    case Stage::kLoad: return "load";
    case Stage::kContext: return "context";
    case Stage::kRun: return "run";
    case Stage::kRan: return "ran";
    case Stage::kThrew: return "threw";
  }
  return "?";
}

Outcome run_model(const std::string& model_bytes, const std::string& base_dir,
                  const std::map<std::string, Tensor>& given) {
  try {
    BuildConfig cfg;
    cfg.backend = BackendKind::kCpu;
    auto engine = Builder::build_from_bytes(model_bytes, cfg, base_dir);
    if (!engine.ok()) return {Stage::kBuild, engine.status().message()};
    return run(*engine, given);
  } catch (const std::exception& e) {
    return {Stage::kThrew, e.what()};
  }
}

Outcome run_engine_file(const std::string& engine_bytes, const std::map<std::string, Tensor>& given) {
  try {
    auto engine = Engine::deserialize(engine_bytes);
    if (!engine.ok()) return {Stage::kLoad, engine.status().message()};
    return run(*engine, given);
  } catch (const std::exception& e) {
    return {Stage::kThrew, e.what()};
  }
}

}  // namespace kiln::fuzz
