#include "builder/activation_estimate.h"

#include <fmt/format.h>

#include <set>

#include "ir/node_reads.h"
#include "passes/pass.h"
#include "util/arena_plan.h"
#include "util/checked_math.h"

namespace kiln {

Result<ActivationEstimate> estimate_activations(const ir::Graph& graph,
                                                const std::map<std::string, std::vector<int64_t>>& input_dims) {
  ir::Graph g = graph;
  for (const auto& name : g.inputs) {
    auto it = input_dims.find(name);
    if (it == input_dims.end())
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("input '{}' needs dims to estimate the activation memory", name));
    g.values[name].shape = Shape::from_dims(it->second);
  }
  // Shapes are inferred afresh at these dims (the stored ones are symbolic), and shape math on them folds to
  // constants as it would run on the host, so a Reshape to a computed shape gets its size.
  for (auto& [name, v] : g.values)
    if (!g.is_constant(name) && !input_dims.count(name)) v.shape = Shape();
  KILN_RETURN_IF_ERROR(passes::fold_shape_subgraphs(g));

  std::map<std::string, size_t> last_read;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& v : ir::node_reads(g.nodes[i])) last_read[v] = i;
  std::set<std::string> caller_owned(g.inputs.begin(), g.inputs.end());
  caller_owned.insert(g.outputs.begin(), g.outputs.end());

  ActivationEstimate est;
  std::vector<LifetimeBlock> blocks;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    for (const auto& name : g.nodes[i].outputs) {
      if (name.empty() || caller_owned.count(name) || g.is_constant(name)) continue;
      const ir::ValueInfo* v = g.value(name);
      if (!v || !v->shape.is_static() || dtype_size(v->dtype) == 0) {
        est.unsized.push_back(name);
        continue;
      }
      const std::vector<int64_t> dims = v->shape.static_dims();
      const std::optional<int64_t> nbytes = checked_nbytes(v->dtype, dims);
      if (!nbytes)
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("value '{}' ({} {}) has more bytes than int64 holds at these input dims", name,
                                  dtype_name(v->dtype), dims_to_string(dims)));
      const size_t bytes = static_cast<size_t>(*nbytes);
      auto lr = last_read.find(name);
      const size_t end = lr != last_read.end() && lr->second > i ? lr->second : i;
      blocks.push_back({bytes, static_cast<int64_t>(i), static_cast<int64_t>(end) + 1});
      est.total_bytes += bytes;
      ++est.values;
      if (bytes > est.largest_bytes) est.largest_bytes = bytes, est.largest = name;
    }
  }
  est.arena_bytes = pack_by_lifetime(blocks).total;
  return est;
}

}  // namespace kiln
