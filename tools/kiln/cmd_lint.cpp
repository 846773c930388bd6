// kiln lint MODEL.onnx: the model's pitfalls found before a build, each with what to do; exit code 1 when one
// of them is an error.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "kiln/lint.h"

namespace kiln::cli {

namespace {

struct LintCliOptions {
  std::string path;
  bool json = false;
  bool fp16 = false;
  std::string backend = "auto";
  std::vector<std::string> shapes;
};

nlohmann::json finding_json(const LintFinding& f) {
  return {{"severity", lint_severity_name(f.severity)},
          {"check", f.check},
          {"node", f.node},
          {"op", f.op},
          {"value", f.value},
          {"message", f.message},
          {"advice", f.advice},
          {"others", f.others}};
}

std::string subject(const LintFinding& f) {
  if (!f.node.empty()) return fmt::format("node '{}' ({})", f.node, f.op);
  if (!f.value.empty()) return fmt::format("'{}'", f.value);
  return "model";
}

void print_text(const std::string& path, const LintReport& r) {
  int counts[3] = {0, 0, 0};
  for (const auto& f : r.findings) ++counts[static_cast<int>(f.severity)];
  const std::string header = fmt::format("{} (opset {}, IR version {})", path, r.opset, r.ir_version);
  if (r.findings.empty()) {
    std::cout << header << ": no findings\n";
  } else {
    std::cout << fmt::format("{}: {} error(s), {} warning(s), {} info\n", header, counts[2], counts[1],
                             counts[0]);
  }
  for (const auto& f : r.findings) {
    std::cout << fmt::format("\n{} [{}] {}\n  {}\n  fix: {}\n", lint_severity_name(f.severity), f.check,
                             subject(f), f.message, f.advice);
    if (!f.others.empty()) {
      std::string names;
      for (size_t i = 0; i < f.others.size() && i < 20; ++i) names += (i ? ", " : "") + f.others[i];
      if (f.others.size() > 20) names += fmt::format(" and {} more", f.others.size() - 20);
      std::cout << fmt::format("  also: {}\n", names);
    }
  }
  if (!r.skipped.empty()) {
    std::cout << "\nnot checked:\n";
    for (const auto& s : r.skipped) std::cout << "  " << s << "\n";
  }
}

int run_lint(const LintCliOptions& o) {
  LintOptions opts;
  opts.fp16 = o.fp16;
  auto b = parse_backend(o.backend);
  if (!b)
    return fail(
        Status(StatusCode::kInvalidArgument, "--backend must be auto, cpu or cuda, got '" + o.backend + "'"));
  opts.backend = *b;
  OptimizationProfile given;
  if (Status s = parse_shapes(o.shapes, given); !s.ok()) return fail(s);
  for (const auto& [name, range] : given.inputs) opts.dims[name] = range.opt;
  auto report = lint_model(o.path, opts);
  // Not a model at all (unreadable, not ONNX): exit 1 like a model with errors, not 2 (a usage error).
  if (!report.ok()) {
    std::cerr << "error: " << report.status().to_string() << "\n";
    return 1;
  }
  if (o.json) {
    nlohmann::json j;
    j["model"] = o.path;
    j["opset"] = report->opset;
    j["ir_version"] = report->ir_version;
    j["findings"] = nlohmann::json::array();
    nlohmann::json counts = {{"error", 0}, {"warning", 0}, {"info", 0}};
    for (const auto& f : report->findings) {
      j["findings"].push_back(finding_json(f));
      counts[lint_severity_name(f.severity)] = counts[lint_severity_name(f.severity)].get<int>() + 1;
    }
    j["counts"] = counts;
    j["skipped"] = report->skipped;
    std::cout << j.dump(2) << "\n";
  } else {
    print_text(o.path, *report);
  }
  return report->has_errors() ? 1 : 0;
}

}  // namespace

void add_lint_command(CLI::App& app) {
  auto o = std::make_shared<LintCliOptions>();
  auto* cmd = app.add_subcommand(
      "lint",
      "Find a model's pitfalls before building it (unsupported ops, control flow, frozen or unnamed dynamic "
      "dims, unused inputs, f16 risks, CPU fallbacks, ...); exit code 1 when one is an error");
  cmd->add_option("path", o->path, "ONNX model (.onnx)")->required();
  cmd->add_flag("--json", o->json, "Print the findings as JSON");
  cmd->add_flag("--fp16", o->fp16, "Also look for f16 overflow risks (a build with --fp16 is planned)");
  cmd->add_option(
      "--backend", o->backend,
      "auto (default): where this kiln has the CUDA backend, predict the nodes it would run on the CPU "
      "(no GPU needed); cuda: the same, and say so when this kiln lacks it; cpu: skip that check");
  cmd->add_option(
      "--shapes", o->shapes,
      "Input dims NAME:DIMS (or NAME:MIN,OPT,MAX, whose OPT is used) for the checks that need sizes; "
      "other dynamic dims count as 1");
  cmd->callback([o] { std::exit(run_lint(*o)); });
}

}  // namespace kiln::cli
