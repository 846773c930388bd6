// Runs one (possibly broken) model or engine file through kiln's CPU path the way a user would: build, create
// a context, infer. Whatever the bytes, kiln must answer with a Status; an escaped exception is a bug, and so
// is a crash or a hang, which end the process (the fuzz driver arms a signal handler that names the case).
#pragma once
#include <map>
#include <string>

#include "kiln/tensor.h"

namespace kiln::fuzz {

enum class Stage { kBuild, kLoad, kContext, kRun, kRan, kThrew };
std::string_view stage_name(Stage s);

struct Outcome {
  Stage stage = Stage::kRan;  // where it stopped: the failing stage, kRan, or kThrew
  std::string message;        // the error (or the exception's what())
};

// Builds `model_bytes` for the CPU backend (external data resolved under `base_dir`), then runs it on inputs
// fitted to the engine's inputs: the `given` tensors where their dtype and dims fit, else small deterministic
// values of the engine's shape.
Outcome run_model(const std::string& model_bytes, const std::string& base_dir,
                  const std::map<std::string, Tensor>& given);

// Loads `engine_bytes`, then runs it the same way.
Outcome run_engine_file(const std::string& engine_bytes, const std::map<std::string, Tensor>& given);

}  // namespace kiln::fuzz
