// kiln::inspect_json: I/O, op histogram and parameters of a model or engine; for an engine (or with layers) the
// layers after fusion with precision and tactic and the memory plan; the pictures; the predicted placement on the
// CUDA backend; what became of each If, Loop and Scan.
#include "kiln/inspect.h"

#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "engine/engine_state.h"
#include "inspect/control_flow_view.h"
#include "inspect/layers_view.h"
#include "ir/in_place.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#ifdef KILN_WITH_CUDA
#include "backends/cuda/placement.h"
#endif
#include "util/file.h"
#include "viz/dot_writer.h"
#include "viz/graph_layout.h"
#include "viz/svg_writer.h"

namespace kiln {

namespace {

std::string file_name(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The layers after fusion, their tactics and times, the memory plan, and the pictures.
// g: the engine's graph, or the model after the default passes.
Status add_fused_view(const std::string& path, const InspectOptions& o, const ir::Graph& g, const Engine* engine,
                      nlohmann::json& j) {
  const std::vector<OptimizationProfile> profiles =
      !o.shapes.empty() ? o.shapes : engine ? engine->profiles() : std::vector<OptimizationProfile>();
  const std::map<std::string, std::string> cache =
      engine ? engine->state()->tactics->entries() : std::map<std::string, std::string>();
  nlohmann::json unmapped;
  viz::LayerGraph lg = inspect::layers_with_tactics(g, cache, &unmapped);
  if (!o.profile_json_path.empty() || !o.times_path.empty()) {
    KILN_ASSIGN_OR_RETURN(auto times, inspect::read_layer_times(o.profile_json_path, o.times_path));
    const size_t applied = viz::apply_times(lg, times);
    if (applied == 0)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("none of the {} timed layers is a layer of {} after fusion; were the times taken on "
                                "this engine?",
                                times.size(), path));
    if (applied < times.size())
      j["warnings"].push_back(
          fmt::format("{} of {} timed layers are not in this graph", times.size() - applied, times.size()));
  }
  j["layers"] = inspect::layers_json(lg);
  j["tactics_unmapped"] = unmapped;
  j["memory"] = inspect::memory_plan_json(g, profiles);
  const std::string title = file_name(path) + " after fusion";
  if (!o.dot_path.empty()) KILN_RETURN_IF_ERROR(write_file_atomic(o.dot_path, viz::write_dot(lg, title)));
  if (!o.svg_path.empty())
    KILN_RETURN_IF_ERROR(write_file_atomic(o.svg_path, viz::write_svg(lg, viz::layout_graph(lg), title)));
  return Status();
}

#ifdef KILN_WITH_CUDA
// Dims per input for the placement: the given shapes' opt, else the engine's first profile's opt, else the
// model's static dims.
Result<std::map<std::string, std::vector<int64_t>>> placement_dims(const InspectOptions& o, const ir::Graph& g,
                                                                   const std::vector<OptimizationProfile>& profiles) {
  std::map<std::string, std::vector<int64_t>> dims;
  for (const auto& name : g.inputs) {
    if (!o.shapes.empty() && o.shapes[0].inputs.count(name)) {
      dims[name] = o.shapes[0].inputs.at(name).opt;
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
#endif

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

nlohmann::json members_json(const Engine& bundle) {
  nlohmann::json a = nlohmann::json::array();
  for (const Engine& m : bundle.members()) {
    nlohmann::json profiles = nlohmann::json::array();
    for (const auto& p : m.profiles()) {
      nlohmann::json inputs = nlohmann::json::object();
      for (const auto& [name, r] : p.inputs) inputs[name] = {{"min", r.min}, {"opt", r.opt}, {"max", r.max}};
      profiles.push_back(inputs);
    }
    a.push_back({{"precision", m.info().precision}, {"nodes", m.info().num_nodes},
                 {"weight_bytes", m.info().weight_bytes}, {"tactics", m.info().tactics}, {"profiles", profiles}});
  }
  return a;
}

// The engine's own facts; `e` becomes the bundle member the details describe.
Status add_engine_facts(const InspectOptions& o, Engine& e, nlohmann::json& j) {
  if (e.info().bundle_members) {
    const auto members = e.members();
    if (o.member < 0 || static_cast<size_t>(o.member) >= members.size())
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--member {}: the bundle holds engines 0..{}", o.member, members.size() - 1));
    j["bundle"] = {{"precision", e.info().precision}, {"weight_bytes", e.info().weight_bytes},
                   {"shown_member", o.member}, {"members", members_json(e)}};
    e = members[static_cast<size_t>(o.member)];
  } else if (o.member != 0) {
    return Status(StatusCode::kInvalidArgument, "--member is for bundles (kiln build --bundle); this is one engine");
  }
  const ir::Graph& graph = *e.state()->graph;
  j["kind"] = "kiln engine";
  j["format_version"] = e.info().format_version;
  j["kiln_version"] = e.info().kiln_version;
  j["backend"] = std::string(backend_name(e.info().backend));
  j["precision"] = e.info().precision;
  j["tactics"] = e.info().tactics;
  j["manifest"] = nlohmann::json::parse(e.info().manifest_json);
  if (e.info().backend == BackendKind::kCuda) j["cpu_fallback"] = engine_cpu_fallbacks(graph, e.profiles());
  j["aliases"] = nlohmann::json::array();
  for (const auto& [out, in] : e.info().aliases) {
    const ir::InPlaceVerdict v = ir::in_place_verdict(graph, out, in);
    j["aliases"].push_back({{"output", out}, {"input", in}, {"in_place", v.in_place}, {"why_copied", v.why}});
  }
  return Status();
}

void add_graph_facts(const ir::Graph& graph, nlohmann::json& j) {
  j["inputs"] = nlohmann::json::array();
  j["outputs"] = nlohmann::json::array();
  for (const auto& n : graph.inputs) {
    const auto* v = graph.value(n);
    j["inputs"].push_back(desc_json(n, v ? v->dtype : DType::kUndefined, v ? v->shape : Shape()));
  }
  for (const auto& n : graph.outputs) {
    const auto* v = graph.value(n);
    j["outputs"].push_back(desc_json(n, v ? v->dtype : DType::kUndefined, v ? v->shape : Shape()));
  }
  std::map<std::string, int> hist;
  for (const auto& n : graph.nodes) ++hist[n.op_type];
  j["ops"] = hist;
  j["nodes"] = graph.nodes.size();
  int64_t params = 0, bytes = 0;
  for (const auto& [n, t] : graph.initializers) {
    params += t.numel();
    bytes += static_cast<int64_t>(t.nbytes());
  }
  j["parameters"] = params;
  j["parameter_bytes"] = bytes;
  j["initializers"] = graph.initializers.size();
}

Result<nlohmann::json> inspect_document(const std::string& path, const InspectOptions& o) {
  const bool is_onnx = path.size() >= 5 && path.substr(path.size() - 5) == ".onnx";
  std::shared_ptr<const ir::Graph> graph;
  std::optional<Engine> engine;
  nlohmann::json j;
  if (is_onnx) {
    KILN_ASSIGN_OR_RETURN(ir::Graph g, onnx::import_model_file(path));
    graph = std::make_shared<ir::Graph>(std::move(g));
    j["kind"] = "onnx model";
    j["opset"] = graph->opset;
    j["ir_version"] = graph->ir_version;
  } else {
    KILN_ASSIGN_OR_RETURN(Engine e, Engine::load(path));
    KILN_RETURN_IF_ERROR(add_engine_facts(o, e, j));
    graph = e.state()->graph;
    engine = e;
  }
  add_graph_facts(*graph, j);
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
    KILN_ASSIGN_OR_RETURN(auto g, as_built());
    // A model as built is judged for whichever backend; an engine for its own.
    j["control_flow"] = inspect::control_flow_json(*g, engine ? engine->info().backend : BackendKind::kAuto);
  }
  if (!is_onnx || o.layers || !o.dot_path.empty() || !o.svg_path.empty()) {
    KILN_ASSIGN_OR_RETURN(auto g, as_built());
    KILN_RETURN_IF_ERROR(add_fused_view(path, o, *g, engine ? &*engine : nullptr, j));
  }
  if (o.placement) {
    KILN_ASSIGN_OR_RETURN(auto g, as_built());
    KILN_ASSIGN_OR_RETURN(j["placement"], placement_json(o, *g, engine ? engine->profiles()
                                                                      : std::vector<OptimizationProfile>()));
  }
  return j;
}

}  // namespace

Result<std::string> inspect_json(const std::string& path, const InspectOptions& options) {
  KILN_ASSIGN_OR_RETURN(nlohmann::json j, inspect_document(path, options));
  return j.dump(2);
}

std::string bundle_members_json(const Engine& bundle) { return members_json(bundle).dump(); }

}  // namespace kiln
