// kiln lint: the pitfalls of a model found before it is built, each with what to do about it.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "kiln/status.h"

namespace kiln {

enum class LintSeverity { kInfo, kWarning, kError };
// "info", "warning", "error"
const char* lint_severity_name(LintSeverity s);

struct LintFinding {
  LintSeverity severity = LintSeverity::kWarning;
  std::string check;  // stable id of the check, e.g. "unsupported-op", "frozen-dim" (docs/lint.md lists them)
  std::string node;   // the node concerned, "" when none
  std::string op;     // its op type ("domain::Op" outside the default domain), "" when none
  std::string value;  // the value, input, initializer or dim concerned, "" when none
  std::string message;  // what is wrong
  std::string advice;   // what to do
  // Further nodes or values with the very same finding (one finding per op kind, not one per node).
  std::vector<std::string> others;
};

struct LintOptions {
  // Look for f16 overflow risks (a build with --fp16 is planned).
  bool fp16 = false;
  // kCuda: predict the nodes the CUDA backend would run on the CPU reference (needs a kiln built with CUDA,
  // not a GPU; without, the report's `skipped` says so); kAuto: the same where the CUDA backend is built in,
  // nothing elsewhere; kCpu: skip that check.
  BackendKind backend = BackendKind::kAuto;
  // Concrete dims per input (kiln build --shapes' opt) for the checks that need sizes; dynamic dims without
  // them count as 1.
  std::map<std::string, std::vector<int64_t>> dims;
};

struct LintReport {
  std::vector<LintFinding> findings;  // errors, then warnings, then infos
  // Checks that did not run, and why (e.g. "cpu-fallback: needs a kiln built with the CUDA backend").
  std::vector<std::string> skipped;
  int64_t opset = 0;
  int64_t ir_version = 0;
  bool has_errors() const;
};

// An error Status only when the file cannot be read or is not an ONNX model at all; everything wrong inside a
// model (unknown ops, duplicate names, what the importer rejects) is a finding.
Result<LintReport> lint_model(const std::string& path, const LintOptions& options = {});
// The same on a serialized ModelProto; base_dir resolves external data, what names it in messages.
Result<LintReport> lint_model_bytes(const std::string& bytes, const std::string& base_dir,
                                    const std::string& what, const LintOptions& options = {});

}  // namespace kiln
