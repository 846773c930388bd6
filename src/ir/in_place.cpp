#include "ir/in_place.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "ir/node_reads.h"
#include "util/error.h"
#include "util/safe_text.h"

namespace kiln::ir {

namespace {

bool is_scatter(const Node& n) {
  return n.domain.empty() && n.inputs.size() == 3 && !n.outputs.empty() &&
         (n.op_type == "ScatterND" || n.op_type == "ScatterElements" || n.op_type == "Scatter");
}

// Ops that read only a tensor's dims, never its bytes.
bool reads_dims_only(const Node& n) { return n.domain.empty() && (n.op_type == "Shape" || n.op_type == "Size"); }

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

bool is_view(const Node& n) {
  static const std::set<std::string> kViews = {"Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten"};
  return n.domain.empty() && !n.inputs.empty() && !n.inputs[0].empty() && !n.outputs.empty() &&
         kViews.count(n.op_type);
}

std::string describe_value(const Graph& g, const std::string& name) {
  const ValueInfo* v = g.value(name);
  return v ? fmt::format("{}{}", dtype_name(v->dtype), v->shape.to_string()) : std::string("?");
}

Status check_alias(const ir::Graph& g, const std::string& output, const std::string& input) {
  if (!contains(g.outputs, output))
    return invalid_argument("'{}' is not an output of the engine (outputs: {})", printable(output),
                            printable(fmt::format("{}", fmt::join(g.outputs, ", "))));
  if (!contains(g.inputs, input))
    return invalid_argument("'{}' is not an input of the engine (inputs: {})", printable(input),
                            printable(fmt::format("{}", fmt::join(g.inputs, ", "))));
  const ValueInfo* o = g.value(output);
  const ValueInfo* i = g.value(input);
  if (!o || !i || o->dtype != i->dtype || !o->shape.has_rank() || !(o->shape == i->shape))
    return invalid_argument(
        "output '{}' is {} but input '{}' is {}: an output written into an input's buffer needs the same dtype "
        "and shape (a cache that grows by concatenation cannot be updated in place; preallocate it at its maximum "
        "length and write at a position: docs/kv_cache.md)",
        printable(output), describe_value(g, output), printable(input), describe_value(g, input));
  return Status();
}

InPlaceVerdict in_place_verdict(const Graph& graph, const std::string& output, const std::string& input) {
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    for (const auto& o : graph.nodes[i].outputs)
      if (!o.empty()) producer[o] = i;

  // The output's producer, seen through views.
  std::string v = output;
  std::set<std::string> seen;
  while (seen.insert(v).second) {
    auto p = producer.find(v);
    if (p == producer.end() || !is_view(graph.nodes[p->second])) break;
    v = graph.nodes[p->second].inputs[0];
  }
  auto p = producer.find(v);
  if (p == producer.end()) return {false, fmt::format("no node computes '{}' (it is an input or a constant)", printable(v))};
  const size_t at = p->second;
  const Node& scatter = graph.nodes[at];
  if (!is_scatter(scatter))
    return {false, fmt::format("'{}' comes from {}, not from a scatter into '{}'", printable(output), scatter.label(),
                               printable(input))};

  // Every value that shares the input's bytes: the input and the views of it.
  std::set<std::string> shares = {input};
  for (const auto& n : graph.nodes)
    if (is_view(n) && shares.count(n.inputs[0])) shares.insert(n.outputs[0]);
  if (!shares.count(scatter.inputs[0]))
    return {false, fmt::format("{} scatters into '{}', not into '{}'", scatter.label(), printable(scatter.inputs[0]),
                               printable(input))};
  for (size_t k = 1; k < scatter.inputs.size(); ++k)
    if (shares.count(scatter.inputs[k]))
      return {false, fmt::format("{} reads its updates or indices from '{}' itself", scatter.label(), printable(input))};
  for (const auto& o : graph.outputs)
    if (o != output && shares.count(o))
      return {false, fmt::format("graph output '{}' is '{}' itself (a view of it)", printable(o), printable(input))};

  // Nodes run in order on one stream: readers before the scatter are done when it writes.
  for (size_t i = at + 1; i < graph.nodes.size(); ++i) {
    const Node& n = graph.nodes[i];
    if (is_view(n) || reads_dims_only(n)) continue;
    const auto reads = node_reads(n);
    auto hit = std::find_if(reads.begin(), reads.end(), [&](const std::string& r) { return shares.count(r) > 0; });
    if (hit != reads.end())
      return {false, fmt::format("{} reads '{}' after {} updates it", n.label(), printable(*hit), scatter.label())};
  }
  return {true, ""};
}

}  // namespace kiln::ir
