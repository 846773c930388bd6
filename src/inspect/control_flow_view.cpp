#include "inspect/control_flow_view.h"

#include <fmt/format.h>

#include <set>

#include "passes/pass.h"

namespace kiln::inspect {

namespace {

// How a node that reads tensor values to decide its control flow runs, per backend.
std::string runtime_text(const std::string& op, BackendKind backend) {
  const std::string what = op == "If" ? "the taken branch" : "the body";
  switch (backend) {
    case BackendKind::kCpu: return fmt::format("runs on the CPU backend with {} each call", what);
    case BackendKind::kCuda:
      if (op == "Scan")
        return "runs its body once per step, the body's nodes on the GPU where they have kernels (slices and "
               "stacking are device copies); Scan before opset 9 runs on the CPU reference";
      return fmt::format("reads {} on the host each call (a read-back when the GPU computed it, which keeps the "
                         "run out of a CUDA graph), then runs {}'s nodes on the GPU where they have kernels",
                         op == "If" ? "its condition" : "its trip count and condition", what);
    default:
      return fmt::format("runs with {} each call (on a CUDA engine its nodes run on the GPU, after the {} is read "
                         "on the host)", what, op == "If" ? "condition" : "trip count");
  }
}

// True when `name` is computed from constants and the dims of values (Shape/Size) alone, never from a tensor's
// values: such a condition is shape math on the host, decided without reading anything back.
bool from_shapes_only(const ir::Graph& g, const std::string& name, std::set<std::string>& seen) {
  if (g.is_constant(name) || !seen.insert(name).second) return true;
  const ir::Node* producer = nullptr;
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs)
      if (o == name) producer = &n;
  if (!producer) return false;  // a graph input's values, or an enclosing scope's value
  if (producer->op_type == "Shape" || producer->op_type == "Size") return true;
  if (producer->op_type == "If" || producer->op_type == "Loop" || producer->op_type == "Scan") return false;
  for (const auto& in : producer->inputs)
    if (!in.empty() && !from_shapes_only(g, in, seen)) return false;
  return true;
}

void visit(const ir::Graph& g, const std::string& prefix, BackendKind backend, nlohmann::json& out) {
  for (const auto& n : g.nodes) {
    const std::string name = prefix + n.name;
    if (n.domain.empty() && (n.op_type == "If" || n.op_type == "Loop" || n.op_type == "Scan")) {
      nlohmann::json e = {{"node", name}, {"op", n.op_type}};
      const std::string first = n.inputs.empty() ? std::string() : n.inputs[0];
      std::set<std::string> seen;
      if (n.op_type == "If" && !first.empty() && from_shapes_only(g, first, seen)) {
        e["case"] = "shape-decided";
        e["decided_by"] = first;
        e["detail"] = fmt::format(
            "the condition '{}' comes from input shapes (dynamic dims, so it is not folded at build): it is computed "
            "on the host each call with nothing read back, and {}",
            first, backend == BackendKind::kCpu ? "the taken branch runs on the CPU backend"
                                                : "on a CUDA engine the taken branch's nodes run on the GPU, one CUDA "
                                                  "graph per input shape");
      } else if (n.op_type == "If") {
        e["case"] = "data-dependent";
        e["decided_by"] = first;
        e["detail"] = fmt::format("the condition '{}' is known only at run time; the If {}", first,
                                  runtime_text(n.op_type, backend));
      } else if (n.op_type == "Loop") {
        // Static when the trip count is a constant and no condition input can stop the loop earlier.
        const bool static_count = !first.empty() && g.is_constant(first) && g.initializers.at(first).numel() == 1 &&
                                  (n.inputs.size() < 2 || n.inputs[1].empty() || g.is_constant(n.inputs[1]));
        e["case"] = static_count ? "static trip count" : "runtime trip count";
        e["decided_by"] = first.empty() ? (n.inputs.size() > 1 ? n.inputs[1] : std::string()) : first;
        e["detail"] = static_count ? fmt::format("trip count {} (a constant); the Loop {}",
                                                 g.initializers.at(first).get_as_double(0), runtime_text(n.op_type, backend))
                                   : fmt::format("the trip count or condition is read at run time; the Loop {}",
                                                 runtime_text(n.op_type, backend));
      } else {
        e["case"] = "scan";
        e["decided_by"] = "";
        e["detail"] = "iterates over its scan inputs' axis; the Scan " + runtime_text(n.op_type, backend);
      }
      out.push_back(std::move(e));
    }
    for (const auto& [key, a] : n.attrs)
      if (a.g) visit(*a.g, name + "/", backend, out);
  }
}

}  // namespace

nlohmann::json control_flow_json(const ir::Graph& g, BackendKind backend) {
  nlohmann::json out = nlohmann::json::array();
  const std::string key = passes::kFoldedIfKey;
  for (const auto& [k, v] : g.metadata) {
    if (k.rfind(key, 0) != 0) continue;
    const size_t tab = v.find('\t');
    const std::string branch = v.substr(0, tab);
    const std::string cond = tab == std::string::npos ? std::string() : v.substr(tab + 1);
    out.push_back({{"node", k.substr(key.size())},
                   {"op", "If"},
                   {"case", "folded"},
                   {"decided_by", cond},
                   {"branch", branch},
                   {"detail", fmt::format("the condition '{}' is fixed at build (a constant or static shapes): only "
                                          "its {} was compiled, inline with the rest of the model; nothing is "
                                          "read back",
                                          cond, branch)}});
  }
  visit(g, "", backend, out);
  return out;
}

}  // namespace kiln::inspect
