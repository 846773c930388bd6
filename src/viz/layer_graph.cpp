#include "viz/layer_graph.h"

#include <algorithm>

#include "ir/node_reads.h"

namespace kiln::viz {

namespace {

std::string join_outputs(const ir::Graph& g, const ir::Node& n, bool dtype) {
  std::string s;
  for (const auto& o : n.outputs) {
    if (o.empty()) continue;
    const ir::ValueInfo* v = g.value(o);
    if (!s.empty()) s += dtype ? "," : " ";
    if (dtype) s += v ? std::string(dtype_name(v->dtype)) : "?";
    else s += v ? v->shape.to_string() : "[?]";
  }
  return s;
}

std::string shape_of(const ir::Graph& g, const std::string& value) {
  const ir::ValueInfo* v = g.value(value);
  return v ? v->shape.to_string() : "[?]";
}

}  // namespace

std::map<std::string, size_t> LayerGraph::by_name() const {
  std::map<std::string, size_t> m;
  for (size_t i = 0; i < entries.size(); ++i)
    if (entries[i].kind == EntryKind::kLayer) m.emplace(entries[i].name, i);
  return m;
}

LayerGraph layer_graph(const ir::Graph& g) {
  LayerGraph lg;
  std::map<std::string, size_t> producer;  // value -> entry that makes it
  for (const auto& name : g.inputs) {
    const ir::ValueInfo* v = g.value(name);
    producer[name] = lg.entries.size();
    lg.entries.push_back({EntryKind::kInput, name, "input", v ? std::string(dtype_name(v->dtype)) : "?",
                          shape_of(g, name), "", -1});
  }
  for (const auto& n : g.nodes) {
    const size_t self = lg.entries.size();
    lg.entries.push_back({EntryKind::kLayer, n.name, n.op_type, join_outputs(g, n, true), join_outputs(g, n, false),
                          "", -1});
    // One edge per distinct value read (a node reading x twice, as Mul(x, x), gets one arrow).
    std::vector<std::string> seen;
    for (const auto& in : ir::node_reads(n)) {
      if (in.empty() || g.is_constant(in)) continue;
      auto it = producer.find(in);
      if (it == producer.end() || std::find(seen.begin(), seen.end(), in) != seen.end()) continue;
      seen.push_back(in);
      lg.edges.push_back({it->second, self, in, shape_of(g, in)});
    }
    for (const auto& o : n.outputs)
      if (!o.empty()) producer[o] = self;
  }
  for (const auto& name : g.outputs) {
    const ir::ValueInfo* v = g.value(name);
    const size_t self = lg.entries.size();
    lg.entries.push_back({EntryKind::kOutput, name, "output", v ? std::string(dtype_name(v->dtype)) : "?",
                          shape_of(g, name), "", -1});
    if (auto it = producer.find(name); it != producer.end()) lg.edges.push_back({it->second, self, name, shape_of(g, name)});
  }
  return lg;
}

size_t apply_times(LayerGraph& lg, const std::map<std::string, LayerTime>& times) {
  size_t n = 0;
  for (auto& e : lg.entries) {
    if (e.kind != EntryKind::kLayer) continue;
    auto it = times.find(e.name);
    if (it == times.end()) continue;
    e.ms = it->second.ms;
    if (e.tactic.empty()) e.tactic = it->second.tactic;
    ++n;
  }
  return n;
}

}  // namespace kiln::viz
