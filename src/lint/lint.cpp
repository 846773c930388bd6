// kiln lint's entry points: read and parse the model, run every check group, order the findings.
#include "kiln/lint.h"

#include <algorithm>
#include <climits>
#include <filesystem>

#include "lint/lint_context.h"
#include "onnx/importer.h"
#include "ops/op.h"
#include "util/error.h"
#include "util/file.h"
#include "util/safe_text.h"

namespace kiln {

const char* lint_severity_name(LintSeverity s) {
  switch (s) {
    case LintSeverity::kInfo:
      return "info";
    case LintSeverity::kWarning:
      return "warning";
    case LintSeverity::kError:
      return "error";
  }
  return "?";
}

bool LintReport::has_errors() const {
  return std::any_of(findings.begin(), findings.end(),
                     [](const LintFinding& f) { return f.severity == LintSeverity::kError; });
}

namespace lint {

LintFinding& LintContext::add(LintSeverity severity, std::string check, std::string node, std::string op,
                              std::string value, std::string message, std::string advice) {
  LintFinding f;
  f.severity = severity;
  f.check = std::move(check);
  // Names come from the file: made safe to print before they reach a terminal or a JSON log.
  f.node = printable(node);
  f.op = printable(op);
  f.value = printable(value);
  f.message = printable_message(message);
  f.advice = std::move(advice);
  report.findings.push_back(std::move(f));
  return report.findings.back();
}

std::string op_label(const kiln_onnx::NodeProto& n) {
  if (n.domain().empty() || n.domain() == "ai.onnx") return n.op_type();
  return n.domain() + "::" + n.op_type();
}

std::string node_name(const kiln_onnx::NodeProto& n, int index) {
  return n.name().empty() ? fmt::format("{}_{}", n.op_type(), index) : n.name();
}

int64_t default_opset(const kiln_onnx::ModelProto& m) {
  int64_t opset = -1;
  for (const auto& imp : m.opset_import())
    if (imp.domain().empty() || imp.domain() == "ai.onnx") opset = imp.version();
  return opset < 0 ? 1 : opset;
}

void for_each_graph(const kiln_onnx::GraphProto& g,
                    const std::function<void(const kiln_onnx::GraphProto&, int depth)>& fn, int depth) {
  fn(g, depth);
  for (const auto& n : g.node())
    for (const auto& a : n.attribute()) {
      if (a.has_g()) for_each_graph(a.g(), fn, depth + 1);
      for (const auto& sub : a.graphs()) for_each_graph(sub, fn, depth + 1);
    }
}

bool op_supported(const kiln_onnx::NodeProto& n) {
  const std::string_view domain = n.domain() == "ai.onnx" ? std::string_view() : std::string_view(n.domain());
  const ops::OpDef* def = ops::op_registry().find(n.op_type());
  return def && def->domain == domain;
}

}  // namespace lint

namespace {

// protobuf cannot parse a message of 2 GiB or more: such a model only loads with its weights in external
// data.
constexpr uint64_t kProtobufLimit = static_cast<uint64_t>(INT_MAX);

LintFinding oversized(const std::string& what, uint64_t bytes) {
  LintFinding f;
  f.severity = LintSeverity::kError;
  f.check = "model-size";
  f.message = fmt::format(
      "{} is {:.2f} GB in one file: protobuf cannot read a model over 2 GB, so neither kiln nor "
      "any other ONNX tool can load it",
      what, static_cast<double>(bytes) / 1e9);
  f.advice =
      "re-export with the weights in external data: torch.onnx.export(..., external_data=True) or "
      "onnx.save_model(model, path, save_as_external_data=True); kiln reads the .onnx file and its data "
      "file(s) from the same folder";
  return f;
}

}  // namespace

Result<LintReport> lint_model_bytes(const std::string& bytes, const std::string& base_dir,
                                    const std::string& what, const LintOptions& options) {
  if (bytes.size() > kProtobufLimit) {
    LintReport r;
    r.findings.push_back(oversized(what, bytes.size()));
    return r;
  }
  if (bytes.empty()) return invalid_model("{} is empty (0 bytes); expected an ONNX model", what);
  kiln_onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    return invalid_model("{} is not an ONNX model: protobuf parsing failed (truncated or not a .onnx file?)",
                         what);
  if (!model.has_graph() || (model.graph().node_size() == 0 && model.graph().output_size() == 0))
    return invalid_model("{} has no graph; is it an ONNX model? (truncated or not a .onnx file?)", what);

  LintReport report;
  report.opset = lint::default_opset(model);
  report.ir_version = model.ir_version();
  lint::LintContext ctx{model, options, what, base_dir, report};
  lint::check_versions(ctx);
  lint::check_ops(ctx);
  lint::check_names(ctx);
  lint::check_usage(ctx);
  lint::check_input_dims(ctx);
  lint::check_values(ctx);
  lint::check_control_flow(ctx);
  if (auto g = lint::import_for_lint(ctx)) {
    lint::check_frozen_dims(ctx, *g);
    if (options.fp16) lint::check_precision(ctx, *g);
    lint::check_placement(ctx, *g);
  }
  std::stable_sort(report.findings.begin(), report.findings.end(),
                   [](const LintFinding& a, const LintFinding& b) {
                     return static_cast<int>(a.severity) > static_cast<int>(b.severity);
                   });
  return report;
}

Result<LintReport> lint_model(const std::string& path, const LintOptions& options) {
  const std::string what = "model '" + printable(path) + "'";
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (!ec && size > kProtobufLimit) {
    LintReport r;
    r.findings.push_back(oversized(what, size));
    return r;
  }
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  std::string dir = std::filesystem::path(path).parent_path().string();
  return lint_model_bytes(bytes, dir.empty() ? "." : dir, what, options);
}

}  // namespace kiln
