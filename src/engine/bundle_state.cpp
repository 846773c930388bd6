// A bundle's state from its members' (finalize_bundle_state): the checks that they form one bundle, merged I/O
// shapes and profiles, and weights shared on the GPU. Engine::bundle and the engine loader build bundles with it.
#include <algorithm>
#include <set>

#ifdef KILN_WITH_CUDA
#include "backends/cuda/device_weights.h"
#endif
#include "engine/engine_state.h"
#include "util/error.h"
#include "util/safe_text.h"

namespace kiln {

namespace {

std::string names(const std::vector<TensorDesc>& descs) {
  std::vector<std::string> n;
  for (const auto& d : descs) n.push_back(fmt::format("'{}' {}", printable(d.name), dtype_name(d.dtype)));
  return fmt::format("{}", fmt::join(n, ", "));
}

// Same names, order and dtypes (shapes may differ: each member has its own ranges).
bool same_io(const std::vector<TensorDesc>& a, const std::vector<TensorDesc>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || a[i].dtype != b[i].dtype) return false;
  return true;
}

// One shape every member's shape is an instance of: a dim static and equal in all stays, else symbolic.
Shape merged_shape(const std::vector<const Shape*>& shapes) {
  const Shape& first = *shapes.front();
  for (const Shape* s : shapes)
    if (!s->has_rank() || s->rank() != first.rank()) return Shape();
  std::vector<Dim> dims;
  for (size_t i = 0; i < first.rank(); ++i) {
    bool same = true;
    std::string symbol;
    for (const Shape* s : shapes) {
      same = same && (*s)[i].is_static() && first[i].is_static() && (*s)[i].value() == first[i].value();
      if (symbol.empty() && (*s)[i].is_symbolic()) symbol = (*s)[i].symbol_name();
    }
    dims.push_back(same ? first[i] : symbol.empty() ? Dim::unknown() : Dim::symbol(symbol));
  }
  return Shape(std::move(dims));
}

std::vector<TensorDesc> merged_descs(const std::vector<EngineState>& members, bool inputs) {
  std::vector<TensorDesc> out = inputs ? members[0].inputs : members[0].outputs;
  for (size_t i = 0; i < out.size(); ++i) {
    std::vector<const Shape*> shapes;
    for (const auto& m : members) shapes.push_back(&(inputs ? m.inputs : m.outputs)[i].shape);
    out[i].shape = merged_shape(shapes);
  }
  return out;
}

// A member's profiles; one of its static input shapes when it has none.
Result<std::vector<OptimizationProfile>> member_profiles(const EngineState& m, size_t index) {
  if (!m.profiles.empty()) return m.profiles;
  OptimizationProfile p;
  for (const auto& d : m.inputs) {
    if (!d.shape.is_static())
      return invalid_argument("bundle member {} has no optimization profile and input '{}' is dynamic ({}); build "
                              "each member with --shapes NAME:MIN,OPT,MAX so the bundle knows which shapes it takes",
                              index, printable(d.name), d.shape.to_string());
    const auto dims = d.shape.static_dims();
    p.inputs[d.name] = {dims, dims, dims};
  }
  return std::vector<OptimizationProfile>{p};
}

}  // namespace

Status finalize_bundle_state(EngineState& b, std::vector<EngineState> members) {
  if (members.size() < 2) return invalid_argument("a bundle holds two or more engines, got {}", members.size());
  const EngineState& first = members[0];
  std::vector<std::string> precisions;
  for (size_t k = 0; k < members.size(); ++k) {
    const EngineState& m = members[k];
    if (!m.members.empty()) return invalid_argument("bundle member {} is itself a bundle; list its members instead", k);
    if (m.info.backend != first.info.backend)
      return invalid_argument("bundle member {} is a {} engine but member 0 is {}; a bundle holds one backend", k,
                              backend_name(m.info.backend), backend_name(first.info.backend));
    if (!same_io(m.inputs, first.inputs))
      return invalid_argument("bundle member {} takes inputs {} but member 0 takes {}; build every member from one "
                              "model with the same --reduced-precision-io",
                              k, names(m.inputs), names(first.inputs));
    if (!same_io(m.outputs, first.outputs))
      return invalid_argument("bundle member {} gives outputs {} but member 0 gives {}; build every member from one "
                              "model with the same --reduced-precision-io",
                              k, names(m.outputs), names(first.outputs));
    if (m.info.aliases != first.info.aliases)
      return invalid_argument("bundle member {} writes other outputs into its inputs (aliases) than member 0; build "
                              "every member with the same --alias flags",
                              k);
    if (m.info.backend == BackendKind::kCuda && m.info.gpu_json != first.info.gpu_json)
      return invalid_argument("bundle member {} was built for another GPU or library versions than member 0 ({} vs {})",
                              k, m.info.gpu_json, first.info.gpu_json);
    KILN_ASSIGN_OR_RETURN(auto profiles, member_profiles(m, k));
    for (size_t p = 0; p < profiles.size(); ++p) {
      b.profiles.push_back(profiles[p]);
      b.slots.emplace_back(static_cast<int>(k), static_cast<int>(p));
    }
    if (std::find(precisions.begin(), precisions.end(), m.info.precision) == precisions.end())
      precisions.push_back(m.info.precision);
  }
  b.info.backend = first.info.backend;
  b.info.gpu_json = first.info.gpu_json;
  b.info.precision = fmt::format("{}", fmt::join(precisions, "+"));
  b.info.cuda_graphs = first.info.cuda_graphs;
  b.info.aliases = first.info.aliases;
  b.info.bundle_members = members.size();
  b.inputs = merged_descs(members, true);
  b.outputs = merged_descs(members, false);
  b.graph = first.graph;
  b.info.num_nodes = b.info.weight_bytes = b.info.tactics = 0;
  std::set<const void*> counted;  // equal weights share storage (TensorPool): count each once
  for (const auto& m : members) {
    b.info.num_nodes += m.info.num_nodes;
    b.info.tactics += m.info.tactics;
    for (const auto& [name, t] : m.graph->initializers)
      if (t.nbytes() && counted.insert(t.raw()).second) b.info.weight_bytes += t.nbytes();
  }
#ifdef KILN_WITH_CUDA
  if (b.info.backend == BackendKind::kCuda) {
    auto pool = std::make_shared<cuda::DeviceWeightPool>();
    for (auto& m : members) m.gpu_weights = std::make_shared<cuda::SharedDeviceWeights>(pool);
  }
#endif
  for (auto& m : members) b.members.push_back(std::make_shared<const EngineState>(std::move(m)));
  return Status();
}

}  // namespace kiln
