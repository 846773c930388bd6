#include "backends/cuda/placement.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

#include "ir/node_reads.h"
#include "passes/pass.h"
#include "util/error.h"

namespace kiln::cuda {

namespace {
// Below this many elements, integer computations on host values stay on the host (shape math: no launch, no
// copy back).
constexpr int64_t kHostComputeLimit = 1024;

bool is_control_flow(const std::string& op) { return op == "If" || op == "Loop" || op == "Scan"; }

std::string fallback_reason(const ir::Node& node, const std::vector<InputFact>& inputs) {
  if (is_control_flow(node.op_type))
    return fmt::format("{} runs on the CPU reference with its bodies (the CUDA backend has no control-flow "
                       "segments yet)", node.op_type);
  const KernelDef* k = kernel_table().find(node.op_type);
  if (!k) return fmt::format("the CUDA backend has no kernel for {}", node.op_type);
  std::vector<std::string> dtypes;
  for (const InputFact& in : inputs) dtypes.push_back(in.present ? std::string(dtype_name(in.dtype)) : "-");
  return fmt::format("the CUDA kernel for {} does not take input dtypes ({})", node.op_type, fmt::join(dtypes, ", "));
}
}  // namespace

const char* placement_name(Placement p) {
  switch (p) {
    case Placement::kGpu: return "gpu";
    case Placement::kHost: return "host";
    case Placement::kCpuFallback: return "cpu-fallback";
  }
  return "?";
}

Placement place_node(const ir::Node& node, const std::vector<InputFact>& inputs, const KernelDef** kernel) {
  *kernel = nullptr;
  if (node.op_type == "Shape" || node.op_type == "Size") return Placement::kHost;
  bool all_host = true, any_float = false;
  int64_t elements = 0;
  std::vector<DType> dtypes;
  for (const InputFact& in : inputs) {
    dtypes.push_back(in.present ? in.dtype : DType::kUndefined);
    if (!in.present) continue;
    all_host &= in.on_host;
    any_float |= is_float(in.dtype);
    elements += in.elements < 0 ? kHostComputeLimit + 1 : in.elements;
  }
  const KernelDef* k = kernel_table().find(node.op_type);
  const bool gpu_ok = k && (!k->supports || k->supports(node, dtypes));
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
  std::set<std::string> on_host;
  for (const auto& [name, t] : g.initializers) on_host.insert(name);
  std::set<std::string> defined(g.inputs.begin(), g.inputs.end());
  std::vector<PlacedNode> out;
  for (const auto& node : g.nodes) {
    std::vector<InputFact> facts;
    for (const auto& in : node.inputs) {
      InputFact f;
      if (!in.empty()) {
        const ir::ValueInfo* v = g.value(in);
        f.present = true;
        f.dtype = v ? v->dtype : DType::kUndefined;
        f.elements = v && v->shape.is_static() ? num_elements(v->shape.static_dims()) : -1;
        f.on_host = on_host.count(in) != 0;
      }
      facts.push_back(f);
    }
    const KernelDef* kernel = nullptr;
    PlacedNode p{node.name, node.op_type, place_node(node, facts, &kernel), {}, {}};
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (!facts[k].present || facts[k].on_host) continue;
      const bool reads_host = p.where == Placement::kCpuFallback ||
                              (p.where == Placement::kGpu && ((kernel->host_inputs >> k) & 1u));
      if (reads_host) {
        p.downloads.push_back(node.inputs[k]);
        on_host.insert(node.inputs[k]);
      }
    }
    if (p.where == Placement::kCpuFallback) {
      p.why = fallback_reason(node, facts);
      // A body on the CPU reads the outer values it names from the host too.
      const std::vector<std::string> reads = ir::node_reads(node);
      for (size_t k = node.inputs.size(); k < reads.size(); ++k)
        if (defined.count(reads[k]) && !on_host.count(reads[k])) {
          p.downloads.push_back(reads[k]);
          on_host.insert(reads[k]);
        }
    }
    defined.insert(node.outputs.begin(), node.outputs.end());
    if (p.where != Placement::kGpu)
      for (const auto& o : node.outputs) on_host.insert(o);
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::vector<PlacedNode>> predict_cpu_fallbacks(const ir::Graph& g,
                                                      const std::vector<OptimizationProfile>& profiles) {
  std::vector<OptimizationProfile> cases = profiles;
  if (cases.empty()) cases.emplace_back();
  std::vector<PlacedNode> out;
  std::set<std::string> seen;
  for (const OptimizationProfile& profile : cases) {
    std::map<std::string, std::vector<int64_t>> dims;
    for (const auto& name : g.inputs) {
      if (auto it = profile.inputs.find(name); it != profile.inputs.end()) {
        dims[name] = it->second.opt;
        continue;
      }
      const ir::ValueInfo* v = g.value(name);
      if (!v || !v->shape.has_rank())
        return invalid_argument("graph input '{}' has unknown rank; give it a profile (--shapes {}:DIMS)", name, name);
      std::vector<int64_t>& d = dims[name];
      for (const Dim& dim : v->shape.dims()) d.push_back(dim.is_static() ? dim.value() : 1);
    }
    KILN_ASSIGN_OR_RETURN(auto placed, predict_placement(g, dims));
    for (auto& p : placed)
      if (p.where == Placement::kCpuFallback && seen.insert(p.name).second) out.push_back(std::move(p));
  }
  return out;
}

}  // namespace kiln::cuda
