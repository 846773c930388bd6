// kiln inspect MODEL.onnx|FILE.kiln: I/O, op histogram, parameters; for an engine (or with --layers) the layers
// after fusion with precision and tactic and the memory plan; --dot/--svg: the graph after fusion as a picture;
// --placement: where the CUDA backend would run each node at given input dims, and whether the run can be
// captured as a CUDA graph.
#include <fmt/format.h>

#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "inspect_control_flow.h"
#include "inspect_layers.h"
#include "kiln/inspect.h"

namespace kiln::cli {

namespace {

struct InspectArgs {
  std::string path;
  bool json = false;
  bool placement = false;
  bool layers = false;
  std::string dot, svg, profile_json, times;
  std::vector<std::string> shapes;
  int member = 0;
};

// An engine's layer table is printed without --layers up to this many layers; past it a line says how.
constexpr size_t kDefaultLayerRows = 40;

int run_inspect(const InspectArgs& o) {
  InspectOptions options;
  options.member = o.member;
  options.placement = o.placement;
  options.layers = o.layers;
  if (!o.shapes.empty()) {
    auto profiles = parse_profiles(o.shapes);
    if (!profiles.ok()) return fail(profiles.status());
    options.shapes = std::move(*profiles);
  }
  options.profile_json_path = o.profile_json;
  options.times_path = o.times;
  options.dot_path = o.dot;
  options.svg_path = o.svg;
  auto document = inspect_json(o.path, options);
  if (!document.ok()) return fail(document.status());
  const nlohmann::json j = nlohmann::json::parse(*document);
  const bool is_onnx = j["kind"] == "onnx model";
  if (j.contains("warnings"))
    for (const auto& w : j["warnings"]) std::cerr << "warning: " << w.get<std::string>() << "\n";
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{}: {}\n", o.path, j["kind"].get<std::string>());
  if (is_onnx) std::cout << fmt::format("  opset {}, IR version {}\n", j["opset"].get<int64_t>(), j["ir_version"].get<int64_t>());
  else std::cout << fmt::format("  format v{}, kiln {}, backend {}, precision {}{}\n", j["format_version"].get<int>(),
                                j["kiln_version"].get<std::string>(), j["backend"].get<std::string>(),
                                j["precision"].get<std::string>(),
                                j["backend"] == "cuda" ? fmt::format(", {} stored tactic choices",
                                                                     j["tactics"].get<size_t>())
                                                       : std::string());
  if (j.contains("bundle")) {
    const auto& b = j["bundle"];
    std::cout << fmt::format("  a bundle of {} engines ({:.2f} MB of weights, equal ones stored once); each run goes "
                             "to the one whose profile fits its shapes best:\n",
                             b["members"].size(), b["weight_bytes"].get<size_t>() / 1e6);
    for (size_t k = 0; k < b["members"].size(); ++k) {
      const auto& m = b["members"][k];
      std::string ranges;
      for (const auto& p : m["profiles"])
        for (const auto& [name, r] : p.items())
          ranges += fmt::format("{}{} {}..{}", ranges.empty() ? "" : ", ", name,
                                dims_to_string(r["min"].get<std::vector<int64_t>>()),
                                dims_to_string(r["max"].get<std::vector<int64_t>>()));
      std::cout << fmt::format("    [{}] {}, {} nodes: {}\n", k, m["precision"].get<std::string>(),
                               m["nodes"].get<size_t>(), ranges);
    }
    std::cout << fmt::format("  engine {} of the bundle (--member K for another):\n", b["shown_member"].get<int>());
  }
  for (const char* k : {"inputs", "outputs"}) {
    std::cout << "  " << k << ":\n";
    for (const auto& d : j[k])
      std::cout << fmt::format("    {} {} {}\n", d["name"].get<std::string>(), d["dtype"].get<std::string>(),
                               d["shape"].get<std::string>());
  }
  if (j.contains("aliases") && !j["aliases"].empty()) {
    std::cout << "  aliases (output written into an input's buffer):\n";
    for (const auto& a : j["aliases"])
      std::cout << fmt::format("    {} -> {} ({})\n", a["output"].get<std::string>(), a["input"].get<std::string>(),
                               a["in_place"].get<bool>() ? "in place"
                                                         : "copied after each run: " + a["why_copied"].get<std::string>());
  }
  std::cout << fmt::format("  {} nodes, {} parameters ({:.2f} MB) in {} initializers\n", j["nodes"].get<size_t>(),
                           j["parameters"].get<int64_t>(), j["parameter_bytes"].get<int64_t>() / 1e6,
                           j["initializers"].get<size_t>());
  std::vector<std::pair<int, std::string>> sorted;
  for (const auto& [k, v] : j["ops"].items()) sorted.push_back({-v.get<int>(), k});
  std::sort(sorted.begin(), sorted.end());
  std::cout << "  ops:\n";
  for (const auto& [c, k] : sorted) std::cout << fmt::format("    {:<24} {}\n", k, -c);
  if (j.contains("cpu_fallback")) {
    const auto& f = j["cpu_fallback"];
    if (f.contains("error"))
      std::cout << fmt::format("  CPU fallback: not predicted ({})\n", f["error"].get<std::string>());
    else if (f["nodes"].empty())
      std::cout << "  CPU fallback: none (every node runs on the GPU or as host shape math)\n";
    else
      std::cout << fmt::format("  CPU fallback: {} node(s) run on the CPU reference:\n", f["nodes"].size());
    if (f.contains("nodes"))
      for (const auto& n : f["nodes"])
        std::cout << fmt::format("    {} ({}): {}\n", n["node"].get<std::string>(), n["op"].get<std::string>(),
                                 n["why"].get<std::string>());
  }
  print_control_flow(j["control_flow"]);
  if (j.contains("layers")) {
    if (o.layers || (!is_onnx && j["layers"].size() <= kDefaultLayerRows))
      print_layers(j["layers"], j["tactics_unmapped"]);
    else if (!is_onnx)
      std::cout << fmt::format("  {} layers after fusion: --layers lists them\n", j["layers"].size());
    print_memory_plan(j["memory"]);
  }
  if (!o.dot.empty()) std::cout << fmt::format("  wrote {} (DOT)\n", o.dot);
  if (!o.svg.empty()) std::cout << fmt::format("  wrote {} (SVG)\n", o.svg);
  if (o.placement) {
    const auto& p = j["placement"];
    std::string at;
    for (const auto& [name, d] : p["dims"].items())
      at += fmt::format("{}{}={}", at.empty() ? "" : " ", name, dims_to_string(d.get<std::vector<int64_t>>()));
    std::cout << fmt::format("  placement on the CUDA backend at {}: {} GPU, {} host (shape math), {} CPU fallback{}\n",
                             at, p["gpu"].get<int>(), p["host"].get<int>(), p["cpu_fallback"].get<int>(),
                             p["control_flow"].get<int>() ? fmt::format(", {} control flow (their bodies' nodes counted "
                                                                        "where they run)", p["control_flow"].get<int>())
                                                          : std::string());
    for (const auto& c : p["control_flow_nodes"])
      std::cout << fmt::format("    control flow: {} ({}): {}\n", c["node"].get<std::string>(),
                               c["op"].get<std::string>(), c["case"].get<std::string>());
    for (const auto& f : p["fallback_nodes"])
      std::cout << fmt::format("    CPU fallback: {} ({}): {}\n", f["node"].get<std::string>(),
                               f["op"].get<std::string>(), f["why"].get<std::string>());
    if (p["read_backs"].empty())
      std::cout << "  no value is read back from the GPU: each input shape runs as one CUDA graph\n";
    for (const auto& r : p["read_backs"])
      std::cout << fmt::format("    read back: '{}' by {} ({}) — blocks the host and prevents CUDA graph capture\n",
                               r["value"].get<std::string>(), r["node"].get<std::string>(), r["op"].get<std::string>());
  }
  return 0;
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto o = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand("inspect", "Show a model's or engine's I/O, op histogram and parameters");
  cmd->add_option("path", o->path, "ONNX model (.onnx) or engine (.kiln)")->required();
  cmd->add_option("--member", o->member,
                  "For a bundle (kiln build --bundle): which of its engines the details describe (default 0)");
  cmd->add_flag("--json", o->json, "Print as JSON");
  cmd->add_flag("--placement", o->placement,
                "Predict where the CUDA backend runs each node (GPU kernel, host shape math, CPU fallback) and "
                "which values it reads back from the GPU (those prevent CUDA graph capture)");
  cmd->add_option("--shapes", o->shapes,
                  "Input dims NAME:DIMS or NAME:MIN,OPT,MAX (e.g. image:1x3x224x224): where --placement predicts, "
                  "and the points the memory plan is estimated at (instead of the engine's profiles)");
  cmd->add_flag("--layers", o->layers,
                "List the layers after fusion (op, precision, output shape, tactic) and the memory plan; an "
                "engine lists them by default when it has at most 40 layers. A model goes through kiln build's "
                "default passes first");
  cmd->add_option("--dot", o->dot, "Write the graph after fusion to FILE in graphviz DOT");
  cmd->add_option("--svg", o->svg,
                  "Write the graph after fusion to FILE as SVG (drawn by kiln: boxes per layer with op, precision "
                  "and shape, edges labelled with tensor shapes)");
  cmd->add_option("--profile-json", o->profile_json,
                  "Per-layer times from kiln bench --profile --json: colour the pictures by time, add times to "
                  "--layers");
  cmd->add_option("--times", o->times, "Per-layer times from a text file of 'LAYER_NAME MILLISECONDS' lines");
  cmd->callback([o] { std::exit(run_inspect(*o)); });
}

}  // namespace kiln::cli
