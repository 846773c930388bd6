// kiln inspect MODEL.onnx|FILE.kiln: I/O, op histogram, parameters.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "onnx/importer.h"
#include "runtime/engine_state.h"

namespace kiln::cli {

namespace {

struct InspectOptions {
  std::string path;
  bool json = false;
};

nlohmann::json desc_json(const std::string& name, DType dt, const Shape& s) {
  return {{"name", name}, {"dtype", std::string(dtype_name(dt))}, {"shape", s.to_string()}};
}

int run_inspect(const InspectOptions& o) {
  const bool is_onnx = o.path.size() >= 5 && o.path.substr(o.path.size() - 5) == ".onnx";
  std::shared_ptr<const ir::Graph> graph;
  nlohmann::json j;
  if (is_onnx) {
    auto g = onnx::import_model_file(o.path);
    if (!g.ok()) return fail(g.status());
    graph = std::make_shared<ir::Graph>(std::move(*g));
    j["kind"] = "onnx model";
    j["opset"] = graph->opset;
    j["ir_version"] = graph->ir_version;
  } else {
    auto e = Engine::load(o.path);
    if (!e.ok()) return fail(e.status());
    graph = e->state()->graph;
    j["kind"] = "kiln engine";
    j["format_version"] = e->info().format_version;
    j["kiln_version"] = e->info().kiln_version;
    j["backend"] = std::string(backend_name(e->info().backend));
    j["precision"] = e->info().precision;
    j["manifest"] = nlohmann::json::parse(e->info().manifest_json);
  }
  for (const auto& n : graph->inputs) {
    const auto* v = graph->value(n);
    j["inputs"].push_back(desc_json(n, v ? v->dtype : DType::kUndefined, v ? v->shape : Shape()));
  }
  for (const auto& n : graph->outputs) {
    const auto* v = graph->value(n);
    j["outputs"].push_back(desc_json(n, v ? v->dtype : DType::kUndefined, v ? v->shape : Shape()));
  }
  std::map<std::string, int> hist;
  for (const auto& n : graph->nodes) ++hist[n.op_type];
  j["ops"] = hist;
  j["nodes"] = graph->nodes.size();
  int64_t params = 0, bytes = 0;
  for (const auto& [n, t] : graph->initializers) {
    params += t.numel();
    bytes += static_cast<int64_t>(t.nbytes());
  }
  j["parameters"] = params;
  j["parameter_bytes"] = bytes;
  j["initializers"] = graph->initializers.size();
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{}: {}\n", o.path, j["kind"].get<std::string>());
  if (is_onnx) std::cout << fmt::format("  opset {}, IR version {}\n", graph->opset, graph->ir_version);
  else std::cout << fmt::format("  format v{}, kiln {}, backend {}, precision {}\n", j["format_version"].get<int>(),
                                j["kiln_version"].get<std::string>(), j["backend"].get<std::string>(),
                                j["precision"].get<std::string>());
  for (const char* k : {"inputs", "outputs"}) {
    std::cout << "  " << k << ":\n";
    for (const auto& d : j[k])
      std::cout << fmt::format("    {} {} {}\n", d["name"].get<std::string>(), d["dtype"].get<std::string>(),
                               d["shape"].get<std::string>());
  }
  std::cout << fmt::format("  {} nodes, {} parameters ({:.2f} MB) in {} initializers\n", graph->nodes.size(), params,
                           bytes / 1e6, graph->initializers.size());
  std::vector<std::pair<int, std::string>> sorted;
  for (const auto& [k, v] : hist) sorted.push_back({-v, k});
  std::sort(sorted.begin(), sorted.end());
  std::cout << "  ops:\n";
  for (const auto& [c, k] : sorted) std::cout << fmt::format("    {:<24} {}\n", k, -c);
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand("inspect", "Show a model's or engine's I/O, op histogram and parameters");
  cmd->add_option("path", o->path, "ONNX model (.onnx) or engine (.kiln)")->required();
  cmd->add_flag("--json", o->json, "Print as JSON");
  cmd->callback([o] { std::exit(run_inspect(*o)); });
}

}  // namespace kiln::cli
