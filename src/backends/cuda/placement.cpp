#include "backends/cuda/placement.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "ir/node_reads.h"
#include "ops/body_inputs.h"
#include "ops/op.h"
#include "passes/pass.h"
#include "util/error.h"

namespace kiln::cuda {

bool is_control_flow(const ir::Node& node) {
  return node.domain.empty() && (node.op_type == "If" || node.op_type == "Loop" || node.op_type == "Scan");
}

bool cpu_only_control_flow(const ir::Node& node, int64_t opset) { return node.op_type == "Scan" && opset < 9; }

namespace {
// Below this many elements, integer computations on host values stay on the host (shape math: no launch, no
// copy back).
constexpr int64_t kHostComputeLimit = 1024;

// What the kernel cannot take of these inputs' shapes: "" when it takes them, and when a present input's dims
// are unknown (prediction on symbolic shapes; the executor always knows them).
std::string shape_limit(const ir::Node& node, const std::vector<InputFact>& inputs) {
  const ShapeLimitFn limit = shape_limit_of(node.op_type);
  if (!limit) return "";
  for (const InputFact& in : inputs)
    if (in.present && !in.dims_known) return "";
  return limit(node, inputs);
}

std::vector<DType> dtypes_of(const std::vector<InputFact>& inputs) {
  std::vector<DType> dtypes;
  for (const InputFact& in : inputs) dtypes.push_back(in.present ? in.dtype : DType::kUndefined);
  return dtypes;
}

// by_shape: set when the kernel takes the dtypes but not these shapes.
std::string fallback_reason(const ir::Node& node, int64_t opset, const std::vector<InputFact>& inputs,
                            bool* by_shape) {
  if (cpu_only_control_flow(node, opset))
    return "Scan before opset 9 (batch-major, with sequence lengths) runs on the CPU reference with its body";
  const KernelDef* k = kernel_table().find(node.op_type);
  if (!k) return fmt::format("the CUDA backend has no kernel for {}", node.op_type);
  std::vector<std::string> dtypes, shapes;
  for (const InputFact& in : inputs) {
    dtypes.push_back(in.present ? std::string(dtype_name(in.dtype)) : "-");
    shapes.push_back(!in.present ? "-" : in.dims_known ? dims_to_string(in.dims) : "?");
  }
  if (!k->supports || k->supports(node, dtypes_of(inputs))) {
    const std::string limit = shape_limit(node, inputs);
    *by_shape = !limit.empty();
    if (!limit.empty())
      return fmt::format("the CUDA kernel for {} cannot take inputs ({}) of shapes ({}): {}", node.op_type,
                         fmt::join(dtypes, ", "), fmt::join(shapes, ", "), limit);
  }
  return fmt::format("the CUDA kernel for {} does not take input dtypes ({})", node.op_type, fmt::join(dtypes, ", "));
}

// What a control-flow node costs at run time, for kiln inspect: its host reads decide whether the run can be
// one CUDA graph.
std::string control_flow_case(const ir::Node& node, const std::vector<InputFact>& inputs) {
  bool reads_back = false;
  for (size_t k = 0; k < inputs.size(); ++k) reads_back |= is_control_input(node, k) && inputs[k].present && !inputs[k].on_host;
  if (node.op_type == "If")
    return reads_back ? "data-dependent condition: reads one value back from the GPU, then runs the taken branch's "
                        "nodes (on the GPU where they have kernels); such runs are not captured as CUDA graphs"
                      : "condition known on the host (shape math): no read-back; the taken branch runs and the run "
                        "can be captured as a CUDA graph";
  if (node.op_type == "Loop")
    return fmt::format("{}; the body's nodes run each iteration (on the GPU where they have kernels), and a "
                       "condition the body computes on the GPU is read back each iteration",
                       reads_back ? "trip count or condition read back from the GPU before the first iteration"
                                  : "trip count and condition known on the host");
  return "one body run per element of the scan inputs (on the GPU where the body's nodes have kernels); slices "
         "and stacking are device copies, with no read-back";
}

// A graph being walked for predict_placement, inside the scopes that enclose it (If/Loop/Scan bodies read
// enclosing values by name).
struct PredictScope {
  const ir::Graph& g;
  PredictScope* outer = nullptr;
  std::set<std::string> defined, on_host;
  std::map<std::string, ir::ValueInfo> inferred;  // a body's values, typed as prediction walks it

  bool owns(const std::string& n) const { return defined.count(n) || g.initializers.count(n); }
  const ir::ValueInfo* value(const std::string& n) const {
    if (auto it = inferred.find(n); it != inferred.end()) return &it->second;
    if (const ir::ValueInfo* v = g.value(n)) return v;
    return outer ? outer->value(n) : nullptr;
  }
  const Tensor* constant(const std::string& n) const {
    if (auto c = g.initializers.find(n); c != g.initializers.end()) return &c->second;
    return !owns(n) && outer ? outer->constant(n) : nullptr;
  }
  bool known(const std::string& n) const { return owns(n) || (outer && outer->known(n)); }
  bool host(const std::string& n) const { return owns(n) ? on_host.count(n) != 0 : outer && outer->host(n); }
  void mark_host(const std::string& n) {
    if (owns(n) || !outer) on_host.insert(n);
    else outer->mark_host(n);
  }
};

void infer_body_node(PredictScope& s, const ir::Node& node) {
  const auto outputs = ops::infer_outputs(
      node, s.g.opset, [&](const std::string& n) { return s.value(n); },
      [&](const std::string& n) { return s.constant(n); });
  if (!outputs) return;  // left untyped: a prediction, not a check
  for (size_t k = 0; k < node.outputs.size() && k < outputs->size(); ++k)
    if (!node.outputs[k].empty()) s.inferred[node.outputs[k]] = (*outputs)[k];
}

void place_graph(PredictScope& s, int64_t opset, const std::string& prefix, std::vector<PlacedNode>& out) {
  for (const auto& node : s.g.nodes) {
    std::vector<InputFact> facts;
    for (const auto& in : node.inputs) {
      InputFact f;
      if (!in.empty()) {
        const ir::ValueInfo* v = s.value(in);
        f.present = true;
        f.dtype = v ? v->dtype : DType::kUndefined;
        f.dims_known = v && v->shape.is_static();
        if (f.dims_known) f.dims = v->shape.static_dims();
        f.elements = f.dims_known ? num_elements(f.dims) : -1;
        f.on_host = s.host(in);
      }
      facts.push_back(f);
    }
    const KernelDef* kernel = nullptr;
    PlacedNode p{prefix + node.name, node.op_type, place_node(node, opset, facts, &kernel), {}, {}, false};
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (!facts[k].present || facts[k].on_host) continue;
      const bool reads_host = p.where == Placement::kCpuFallback ||
                              (p.where == Placement::kGpu && ((kernel->host_inputs >> k) & 1u)) ||
                              (p.where == Placement::kControlFlow && is_control_input(node, k));
      if (reads_host) {
        p.downloads.push_back(node.inputs[k]);
        s.mark_host(node.inputs[k]);
      }
    }
    if (p.where == Placement::kCpuFallback) {
      p.why = fallback_reason(node, opset, facts, &p.by_shape);
      // A body on the CPU reads the outer values it names from the host too.
      const std::vector<std::string> reads = ir::node_reads(node);
      for (size_t k = node.inputs.size(); k < reads.size(); ++k)
        if (s.known(reads[k]) && !s.host(reads[k])) {
          p.downloads.push_back(reads[k]);
          s.mark_host(reads[k]);
        }
    }
    if (p.where == Placement::kControlFlow) p.why = control_flow_case(node, facts);
    // Bodies are not typed by infer_shapes: their values get types here, as the executor's run would.
    if (s.outer) infer_body_node(s, node);
    const Placement where = p.where;
    const size_t index = out.size();
    out.push_back(std::move(p));
    if (where == Placement::kControlFlow)
      for (const auto& [key, attr] : node.attrs) {
        if (!attr.g) continue;
        std::vector<const ir::ValueInfo*> node_inputs;
        for (const auto& in : node.inputs) node_inputs.push_back(in.empty() ? nullptr : s.value(in));
        PredictScope body{*attr.g, &s, {}, {}, ops::body_input_types(node, *attr.g, node_inputs)};
        body.defined.insert(attr.g->inputs.begin(), attr.g->inputs.end());
        for (const auto& [name, t] : attr.g->initializers) body.on_host.insert(name);
        // A Loop body's iteration number and condition input are host scalars.
        if (node.op_type == "Loop")
          for (size_t k = 0; k < 2 && k < attr.g->inputs.size(); ++k) body.on_host.insert(attr.g->inputs[k]);
        place_graph(body, opset, prefix + node.name + "/" + key + "/", out);
        // A condition the Loop body computes on the GPU is read back after every iteration.
        const std::string& cond_out = attr.g->outputs.empty() ? std::string() : attr.g->outputs[0];
        if (node.op_type == "Loop" && !cond_out.empty() && !body.host(cond_out)) out[index].downloads.push_back(cond_out);
      }
    s.defined.insert(node.outputs.begin(), node.outputs.end());
    if (where != Placement::kGpu && where != Placement::kControlFlow)
      for (const auto& o : node.outputs) s.on_host.insert(o);
  }
}
}  // namespace

const char* placement_name(Placement p) {
  switch (p) {
    case Placement::kGpu: return "gpu";
    case Placement::kHost: return "host";
    case Placement::kCpuFallback: return "cpu-fallback";
    case Placement::kControlFlow: return "control-flow";
  }
  return "?";
}

bool is_control_input(const ir::Node& node, size_t input) {
  return (node.op_type == "If" && input == 0) || (node.op_type == "Loop" && input < 2);
}

Placement place_node(const ir::Node& node, int64_t opset, const std::vector<InputFact>& inputs, const KernelDef** kernel) {
  *kernel = nullptr;
  if (node.op_type == "Shape" || node.op_type == "Size") return Placement::kHost;
  if (is_control_flow(node))
    return cpu_only_control_flow(node, opset) ? Placement::kCpuFallback : Placement::kControlFlow;
  bool all_host = true, any_float = false;
  int64_t elements = 0;
  const std::vector<DType> dtypes = dtypes_of(inputs);
  for (const InputFact& in : inputs) {
    if (!in.present) continue;
    all_host &= in.on_host;
    any_float |= is_float(in.dtype);
    elements += in.elements < 0 ? kHostComputeLimit + 1 : in.elements;
  }
  const KernelDef* k = kernel_table().find(node.op_type);
  const bool gpu_ok = k && (!k->supports || k->supports(node, dtypes)) && shape_limit(node, inputs).empty();
  if (!gpu_ok) return all_host ? Placement::kHost : Placement::kCpuFallback;
  if (all_host && !any_float && elements <= kHostComputeLimit) return Placement::kHost;
  *kernel = k;
  return Placement::kGpu;
}

Result<std::vector<PlacedNode>> predict_placement(const ir::Graph& graph,
                                                  const std::map<std::string, std::vector<int64_t>>& input_dims) {
  ir::Graph g = graph;
  for (const auto& name : g.inputs) {
    auto it = input_dims.find(name);
    if (it == input_dims.end()) return invalid_argument("input '{}' needs dims to predict placement", name);
    g.values[name].shape = Shape::from_dims(it->second);
  }
  for (auto& [name, v] : g.values)
    if (!g.is_constant(name) && !input_dims.count(name)) v.shape = Shape();
  KILN_RETURN_IF_ERROR(passes::infer_shapes(g));
  PredictScope top{g, nullptr, {g.inputs.begin(), g.inputs.end()}, {}, {}};
  for (const auto& [name, t] : g.initializers) top.on_host.insert(name);
  std::vector<PlacedNode> out;
  place_graph(top, g.opset, "", out);
  return out;
}

Result<std::vector<PlacedNode>> predict_cpu_fallbacks(const ir::Graph& g,
                                                      const std::vector<OptimizationProfile>& profiles) {
  std::vector<OptimizationProfile> cases = profiles;
  if (cases.empty()) cases.emplace_back();
  std::vector<PlacedNode> out;
  std::set<std::string> seen;
  // Each profile at its min, opt and max: a kernel's shape limit (can_implement) may hold at one end only.
  for (size_t index = 0; index < cases.size(); ++index) {
    const OptimizationProfile& profile = cases[index];
    std::map<std::string, std::vector<int64_t>> previous;
    for (int point = 0; point < 3; ++point) {
      std::map<std::string, std::vector<int64_t>> dims;
      for (const auto& name : g.inputs) {
        if (auto it = profile.inputs.find(name); it != profile.inputs.end()) {
          dims[name] = point == 0 ? it->second.min : point == 1 ? it->second.opt : it->second.max;
          if (dims[name].empty()) dims[name] = it->second.opt;  // a profile given as one shape
          continue;
        }
        const ir::ValueInfo* v = g.value(name);
        if (!v || !v->shape.has_rank())
          return invalid_argument("graph input '{}' has unknown rank; give it a profile (--shapes {}:DIMS)", name, name);
        std::vector<int64_t>& d = dims[name];
        for (const Dim& dim : v->shape.dims()) d.push_back(dim.is_static() ? dim.value() : 1);
      }
      if (point > 0 && dims == previous) continue;
      previous = dims;
      KILN_ASSIGN_OR_RETURN(auto placed, predict_placement(g, dims));
      for (auto& p : placed)
        if (p.where == Placement::kCpuFallback && seen.insert(p.name).second) {
          if (p.by_shape && !profile.inputs.empty())
            p.why += fmt::format(" (at profile {} {})", index, point == 0 ? "min" : point == 1 ? "opt" : "max");
          out.push_back(std::move(p));
        }
    }
  }
  return out;
}

}  // namespace kiln::cuda
