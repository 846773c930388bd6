#include "builder/cut_subgraph.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "ir/node_reads.h"
#include "passes/pass.h"
#include "util/error.h"
#include "util/nearest_names.h"
#include "util/safe_text.h"

namespace kiln {

namespace {

// The node whose body (at any depth) mentions v, for the message about a name that is not a main-graph value.
const ir::Node* body_mentioning(const ir::Graph& g, const std::string& v) {
  for (const auto& n : g.nodes)
    for (const auto& [key, a] : n.attrs) {
      if (!a.g) continue;
      const ir::Graph& body = *a.g;
      bool here = std::count(body.inputs.begin(), body.inputs.end(), v) || body.initializers.count(v) ||
                  std::count(body.outputs.begin(), body.outputs.end(), v);
      for (const auto& bn : body.nodes)
        here = here || std::count(bn.outputs.begin(), bn.outputs.end(), v);
      if (here || body_mentioning(body, v)) return &n;
    }
  return nullptr;
}

std::string describe_value(const ir::Graph& g, const std::string& v) {
  const ir::ValueInfo* info = g.value(v);
  if (!info || info->dtype == DType::kUndefined) return "";
  return fmt::format(" {}{}", dtype_name(info->dtype), info->shape.to_string());
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::vector<std::string> q;
  for (const auto& n : names) q.push_back("'" + printable(n) + "'");
  return fmt::format("{}", fmt::join(q, ", "));
}

// Every name must be a value of the main graph; each unknown one is listed with the nearest names.
void check_names(const ir::Graph& g, const std::vector<std::string>& names, const char* flag,
                 const std::set<std::string>& known, std::vector<std::string>& problems) {
  for (const auto& name : names) {
    if (known.count(name)) continue;
    if (const ir::Node* n = body_mentioning(g, name)) {
      problems.push_back(fmt::format("{} '{}' is a value inside the body of {}; a cut is made on the main graph's "
                                     "values (cut at that node's inputs or outputs)",
                                     flag, printable(name), n->label()));
      continue;
    }
    const std::vector<std::string> nearest = nearest_names(name, known);
    problems.push_back(nearest.empty()
                           ? fmt::format("{} '{}' is not a value of the model, which has no values", flag,
                                         printable(name))
                           : fmt::format("{} '{}' is not a value of the model; nearest value names: {}", flag,
                                         printable(name), quoted_list(nearest)));
  }
}

}  // namespace

Result<ir::Graph> cut_subgraph(ir::Graph g, const std::vector<std::string>& inputs,
                               const std::vector<std::string>& outputs, CutReport* report) {
  CutReport local;
  CutReport& rep = report ? *report : local;
  if (outputs.empty()) return invalid_argument("a cut needs at least one output value (--outputs)");
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& o : g.nodes[i].outputs)
      if (!o.empty()) producer[o] = i;
  std::set<std::string> known(g.inputs.begin(), g.inputs.end());
  for (const auto& [name, t] : g.initializers) known.insert(name);
  for (const auto& [name, i] : producer) known.insert(name);
  std::vector<std::string> problems;
  check_names(g, inputs, "--inputs", known, problems);
  check_names(g, outputs, "--outputs", known, problems);
  if (!problems.empty())
    return invalid_argument("{} (`kiln extract MODEL --list-values` lists every value with its producer)",
                            fmt::join(problems, "; "));
  const std::set<std::string> stop(inputs.begin(), inputs.end());
  std::set<std::string> seen_out;
  for (const auto& o : outputs) {
    if (!seen_out.insert(o).second) return invalid_argument("--outputs names '{}' twice", printable(o));
    if (stop.count(o))
      return invalid_argument("'{}' is in both --inputs and --outputs; a part's output must be computed by its nodes",
                              printable(o));
    if (g.is_constant(o))
      return invalid_argument("--outputs '{}' is an initializer (a constant), not computed by any node; name a value "
                              "a node produces",
                              printable(o));
  }
  if (stop.size() != inputs.size()) return invalid_argument("--inputs names a value twice: {}", quoted_list(inputs));

  // The shapes the part declares: the model's own declarations, refined by inference where it succeeds.
  ir::Graph inferred = g;
  if (Status s = passes::infer_shapes(inferred); s.ok())
    g.values = inferred.values;
  else
    rep.inference_note = s.message();

  // Walk back from the outputs. Each item remembers the node that reads it (kNone: an output itself) and each
  // needed node the item that made it needed, so a leak can be shown on its way to an output.
  constexpr size_t kNone = static_cast<size_t>(-1);
  struct Item {
    std::string value;
    size_t reader;
    bool in_body;
  };
  std::vector<bool> needed(g.nodes.size(), false);
  std::vector<Item> why(g.nodes.size());
  std::set<std::string> needed_inits, used_inputs, visited;
  std::map<std::string, std::vector<Item>> leaks;  // graph input -> who reads it
  std::vector<Item> work;
  for (auto it = outputs.rbegin(); it != outputs.rend(); ++it) work.push_back({*it, kNone, false});
  while (!work.empty()) {
    Item item = work.back();
    work.pop_back();
    const std::string& v = item.value;
    if (stop.count(v)) {
      used_inputs.insert(v);
      continue;
    }
    if (!producer.count(v) && !g.is_constant(v)) {
      auto& readers = leaks[v];
      if (std::none_of(readers.begin(), readers.end(), [&](const Item& r) { return r.reader == item.reader; }))
        readers.push_back(item);
      continue;
    }
    if (!visited.insert(v).second) continue;
    if (g.is_constant(v)) {
      needed_inits.insert(v);
      continue;
    }
    const size_t i = producer.at(v);
    if (needed[i]) continue;
    needed[i] = true;
    why[i] = item;
    const ir::Node& n = g.nodes[i];
    for (const auto& in : n.inputs)
      if (!in.empty()) work.push_back({in, i, false});
    for (const auto& in : ir::outer_scope_reads(n)) work.push_back({in, i, true});
  }
  // "x -> node 'fc1' (MatMul) -> h -> node 'route' (If, in its body) -> out": from a leak to the output it feeds.
  auto path = [&](const Item& leak) {
    std::vector<std::string> steps{"'" + printable(leak.value) + "'"};
    bool in_body = leak.in_body;
    for (size_t r = leak.reader; r != kNone && steps.size() < 64; r = why[r].reader) {
      steps.push_back(g.nodes[r].label() + (in_body ? " in its body" : ""));
      steps.push_back("'" + printable(why[r].value) + "'");
      in_body = why[r].in_body;
    }
    if (steps.size() > 9) {
      steps.erase(steps.begin() + 4, steps.end() - 4);
      steps.insert(steps.begin() + 4, "…");
    }
    return fmt::format("{}", fmt::join(steps, " -> "));
  };
  if (!leaks.empty()) {
    std::vector<std::string> parts, names;
    for (const auto& [v, readers] : leaks) {
      names.push_back(v);
      std::vector<std::string> labels, paths;
      for (const auto& r : readers) {
        if (r.reader == kNone) {
          labels.push_back("--outputs");
          continue;
        }
        labels.push_back(g.nodes[r.reader].label() + (r.in_body ? " in its body" : ""));
        if (paths.empty()) paths.push_back(path(r));
      }
      parts.push_back(fmt::format("'{}'{} (a graph input of the model, read by {}{})", printable(v),
                                  describe_value(g, v), fmt::join(labels, ", "),
                                  paths.empty() ? "" : "; needed as " + paths[0]));
    }
    std::vector<std::string> suggested = inputs;
    suggested.insert(suggested.end(), names.begin(), names.end());
    std::vector<std::string> printed;
    for (const auto& s : suggested) printed.push_back(printable(s));
    return invalid_argument("the cut is not closed: computing the --outputs needs {} value(s) that are not in "
                            "--inputs: {}. Add them to --inputs (--inputs {}), or cut at values computed after "
                            "them",
                            leaks.size(), fmt::join(parts, "; "), fmt::join(printed, ","));
  }
  for (const auto& in : inputs)
    if (!used_inputs.count(in)) rep.unused_inputs.push_back(in);

  ir::Graph part;
  part.name = g.name;
  part.opset = g.opset;
  part.ir_version = g.ir_version;
  part.metadata = g.metadata;
  part.metadata.erase("producer");  // the importer's note of who wrote the source file; the part is kiln's
  auto carry_value = [&](const std::string& v) {
    if (const ir::ValueInfo* info = g.value(v)) part.values[v] = *info;
  };
  for (const auto& in : inputs) {
    carry_value(in);
    const ir::ValueInfo* info = part.value(in);
    if (!info || info->dtype == DType::kUndefined)
      return invalid_model("cannot tell the dtype of --inputs '{}': the model declares none and shape inference "
                           "failed before it{}; give the value a value_info in the model",
                           printable(in), rep.inference_note.empty() ? "" : " (" + rep.inference_note + ")");
    part.inputs.push_back(in);
  }
  for (const auto& name : needed_inits) {
    part.initializers[name] = g.initializers.at(name);
    carry_value(name);
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!needed[i]) continue;
    ir::Node n = g.nodes[i];
    for (auto& o : n.outputs) {
      if (o.empty()) continue;
      // A needed node that also writes one of the part's inputs (a Split cut between its halves): that output
      // gets a fresh name, since the input defines the original one.
      if (stop.count(o)) {
        std::string fresh = g.unique_name(o + "_unused");
        while (part.values.count(fresh)) fresh += "_";
        part.values[fresh] = part.values.count(o) ? part.values[o] : ir::ValueInfo{};
        o = fresh;
        continue;
      }
      carry_value(o);
    }
    part.nodes.push_back(std::move(n));
  }
  part.outputs = outputs;
  for (const auto& o : outputs)
    if (!part.values.count(o) || part.values[o].dtype == DType::kUndefined)
      return invalid_model("cannot tell the dtype of --outputs '{}': the model declares none and shape inference "
                           "failed before it{}",
                           printable(o), rep.inference_note.empty() ? "" : " (" + rep.inference_note + ")");
  return part;
}

Status expose_values(ir::Graph& g, const std::vector<std::string>& names) {
  for (const auto& n : names) {
    if (std::find(g.outputs.begin(), g.outputs.end(), n) != g.outputs.end()) continue;
    const ir::ValueInfo* info = g.value(n);
    if (!info || info->dtype == DType::kUndefined)
      return invalid_model("value '{}' has no known dtype, so it cannot be made a graph output", printable(n));
    g.outputs.push_back(n);
  }
  return Status();
}

}  // namespace kiln
