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
#include "ir/in_place.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#ifdef KILN_WITH_CUDA
#include "backends/cuda/placement.h"
#endif
#include "engine/engine_state.h"
#include "util/file.h"
#include "viz/dot_writer.h"
#include "viz/graph_layout.h"
#include "viz/svg_writer.h"

namespace kiln::cli {

namespace {

struct InspectOptions {
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

std::string file_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// --layers, --dot, --svg: the layers after fusion, their tactics and times, the memory plan, and the pictures.
// g: the engine's graph, or the model after the default passes.
Status add_fused_view(const InspectOptions& o, const ir::Graph& g, const Engine* engine, nlohmann::json& j) {
  std::vector<OptimizationProfile> profiles;
  if (!o.shapes.empty()) {
    KILN_ASSIGN_OR_RETURN(profiles, parse_profiles(o.shapes));
  } else if (engine) {
    profiles = engine->profiles();
  }
  const std::map<std::string, std::string> cache =
      engine ? engine->state()->tactics->entries() : std::map<std::string, std::string>();
  nlohmann::json unmapped;
  viz::LayerGraph lg = layers_with_tactics(g, cache, &unmapped);
  if (!o.profile_json.empty() || !o.times.empty()) {
    KILN_ASSIGN_OR_RETURN(auto times, read_layer_times(o.profile_json, o.times));
    const size_t applied = viz::apply_times(lg, times);
    if (applied == 0)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("none of the {} timed layers is a layer of {} after fusion; were the times taken on "
                                "this engine?",
                                times.size(), o.path));
    if (applied < times.size())
      std::cerr << fmt::format("warning: {} of {} timed layers are not in this graph\n", times.size() - applied,
                               times.size());
  }
  j["layers"] = layers_json(lg);
  j["tactics_unmapped"] = unmapped;
  j["memory"] = memory_plan_json(g, profiles);
  const std::string title = file_name(o.path) + " after fusion";
  if (!o.dot.empty()) KILN_RETURN_IF_ERROR(write_file_atomic(o.dot, viz::write_dot(lg, title)));
  if (!o.svg.empty())
    KILN_RETURN_IF_ERROR(write_file_atomic(o.svg, viz::write_svg(lg, viz::layout_graph(lg), title)));
  return Status();
}

// Dims per input for --placement: --shapes NAME:DIMS (or the OPT of NAME:MIN,OPT,MAX), else the engine's first
// profile's opt, else the model's static dims.
Result<std::map<std::string, std::vector<int64_t>>> placement_dims(const InspectOptions& o, const ir::Graph& g,
                                                                   const std::vector<OptimizationProfile>& profiles) {
  OptimizationProfile given;
  KILN_RETURN_IF_ERROR(parse_shapes(o.shapes, given));
  std::map<std::string, std::vector<int64_t>> dims;
  for (const auto& name : g.inputs) {
    if (auto it = given.inputs.find(name); it != given.inputs.end()) {
      dims[name] = it->second.opt;
    } else if (!profiles.empty() && profiles[0].inputs.count(name)) {
      dims[name] = profiles[0].inputs.at(name).opt;
    } else if (const ir::ValueInfo* v = g.value(name); v && v->shape.is_static()) {
      dims[name] = v->shape.static_dims();
    } else {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("input '{}' has dynamic shape {}; give its dims with --shapes {}:DIMS", name,
                                g.value(name) ? g.value(name)->shape.to_string() : "?", name));
    }
  }
  return dims;
}

// g: the engine's graph, or the model after the default passes (placed as the builder would leave it, f32).
Result<nlohmann::json> placement_json(const InspectOptions& o, const ir::Graph& g,
                                      const std::vector<OptimizationProfile>& profiles) {
#ifdef KILN_WITH_CUDA
  KILN_ASSIGN_OR_RETURN(auto dims, placement_dims(o, g, profiles));
  KILN_ASSIGN_OR_RETURN(auto placed, cuda::predict_placement(g, dims));
  nlohmann::json j = {{"gpu", 0}, {"host", 0}, {"cpu_fallback", 0}, {"control_flow", 0}};
  j["read_backs"] = nlohmann::json::array();
  j["fallback_nodes"] = nlohmann::json::array();
  j["control_flow_nodes"] = nlohmann::json::array();
  for (const auto& [name, d] : dims) j["dims"][name] = d;
  for (const auto& p : placed) {
    const char* key = p.where == cuda::Placement::kGpu           ? "gpu"
                      : p.where == cuda::Placement::kHost        ? "host"
                      : p.where == cuda::Placement::kControlFlow ? "control_flow"
                                                                 : "cpu_fallback";
    j[key] = j[key].get<int>() + 1;
    if (p.where == cuda::Placement::kCpuFallback)
      j["fallback_nodes"].push_back({{"node", p.name}, {"op", p.op}, {"why", p.why}});
    if (p.where == cuda::Placement::kControlFlow)
      j["control_flow_nodes"].push_back({{"node", p.name}, {"op", p.op}, {"case", p.why}});
    for (const auto& v : p.downloads) j["read_backs"].push_back({{"node", p.name}, {"op", p.op}, {"value", v}});
  }
  j["cuda_graph_capturable"] = j["read_backs"].empty();
  return j;
#else
  (void)o, (void)g, (void)profiles;
  return Status(StatusCode::kUnsupported, "--placement needs a kiln built with the CUDA backend");
#endif
}

// A CUDA engine's nodes that run on the CPU reference (as kiln build reported them), or why that is unknown.
nlohmann::json engine_cpu_fallbacks(const ir::Graph& g, const std::vector<OptimizationProfile>& profiles) {
#ifdef KILN_WITH_CUDA
  auto placed = cuda::predict_cpu_fallbacks(g, profiles);
  if (!placed.ok()) return {{"error", placed.status().message()}};
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& p : *placed) nodes.push_back({{"node", p.name}, {"op", p.op}, {"why", p.why}});
  return {{"nodes", nodes}};
#else
  (void)g, (void)profiles;
  return {{"error", "this kiln has no CUDA backend to predict placement with"}};
#endif
}

bool has_control_flow(const ir::Graph& g) {
  for (const auto& n : g.nodes)
    if (n.op_type == "If" || n.op_type == "Loop" || n.op_type == "Scan") return true;
  return false;
}

nlohmann::json desc_json(const std::string& name, DType dt, const Shape& s) {
  return {{"name", name}, {"dtype", std::string(dtype_name(dt))}, {"shape", s.to_string()}};
}

int run_inspect(const InspectOptions& o) {
  const bool is_onnx = o.path.size() >= 5 && o.path.substr(o.path.size() - 5) == ".onnx";
  std::shared_ptr<const ir::Graph> graph;
  std::optional<Engine> engine;
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
    if (e->info().bundle_members) {
      // A bundle: the list of its engines, then the details of one of them.
      const auto members = e->members();
      if (o.member < 0 || static_cast<size_t>(o.member) >= members.size())
        return fail(Status(StatusCode::kInvalidArgument,
                           fmt::format("--member {}: the bundle holds engines 0..{}", o.member, members.size() - 1)));
      j["bundle"] = {{"precision", e->info().precision}, {"weight_bytes", e->info().weight_bytes},
                     {"shown_member", o.member}, {"members", bundle_members_json(*e)}};
      e = members[static_cast<size_t>(o.member)];
    } else if (o.member != 0) {
      return fail(Status(StatusCode::kInvalidArgument, "--member is for bundles (kiln build --bundle); this is one engine"));
    }
    graph = e->state()->graph;
    engine = *e;
    j["kind"] = "kiln engine";
    j["format_version"] = e->info().format_version;
    j["kiln_version"] = e->info().kiln_version;
    j["backend"] = std::string(backend_name(e->info().backend));
    j["precision"] = e->info().precision;
    j["tactics"] = e->info().tactics;
    j["manifest"] = nlohmann::json::parse(e->info().manifest_json);
    if (e->info().backend == BackendKind::kCuda) j["cpu_fallback"] = engine_cpu_fallbacks(*graph, e->profiles());
    j["aliases"] = nlohmann::json::array();
    for (const auto& [out, in] : e->info().aliases) {
      const ir::InPlaceVerdict v = ir::in_place_verdict(*graph, out, in);
      j["aliases"].push_back({{"output", out}, {"input", in}, {"in_place", v.in_place}, {"why_copied", v.why}});
    }
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
  // A model goes through kiln build's default passes once, for the views that show it as built.
  std::shared_ptr<const ir::Graph> built = is_onnx ? nullptr : graph;
  auto as_built = [&]() -> Result<std::shared_ptr<const ir::Graph>> {
    if (!built) {
      auto g = std::make_shared<ir::Graph>(*graph);
      KILN_RETURN_IF_ERROR(passes::run_pipeline(*g, passes::default_pipeline()));
      built = g;
    }
    return built;
  };
  // What became of each If/Loop/Scan (a model's Ifs that the passes fold are named as folded).
  if (is_onnx && !has_control_flow(*graph)) {
    j["control_flow"] = nlohmann::json::array();
  } else {
    auto g = as_built();
    if (!g.ok()) return fail(g.status());
    // A model as built is judged for whichever backend; an engine for its own.
    j["control_flow"] = control_flow_json(**g, engine ? engine->info().backend : BackendKind::kAuto);
  }
  if (!is_onnx || o.layers || !o.dot.empty() || !o.svg.empty()) {
    auto g = as_built();
    if (!g.ok()) return fail(g.status());
    Status st = add_fused_view(o, **g, engine ? &*engine : nullptr, j);
    if (!st.ok()) return fail(st);
  }
  if (o.placement) {
    std::vector<OptimizationProfile> profiles;
    if (!is_onnx) profiles = engine->profiles();
    auto g = as_built();
    if (!g.ok()) return fail(g.status());
    auto pj = placement_json(o, **g, profiles);
    if (!pj.ok()) return fail(pj.status());
    j["placement"] = *pj;
  }
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{}: {}\n", o.path, j["kind"].get<std::string>());
  if (is_onnx) std::cout << fmt::format("  opset {}, IR version {}\n", graph->opset, graph->ir_version);
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
  std::cout << fmt::format("  {} nodes, {} parameters ({:.2f} MB) in {} initializers\n", graph->nodes.size(), params,
                           bytes / 1e6, graph->initializers.size());
  std::vector<std::pair<int, std::string>> sorted;
  for (const auto& [k, v] : hist) sorted.push_back({-v, k});
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
  auto o = std::make_shared<InspectOptions>();
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
