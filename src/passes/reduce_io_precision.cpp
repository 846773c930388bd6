// reduce_io_precision (kiln build --fp16/--bf16 --reduced-precision-io): the engine's f32 inputs and outputs
// take the compute dtype, so a caller that holds f16 data neither converts it nor pays for the Casts at the
// edges (GPT-2's f32 logits at batch 32 are 3.3 GB written by a Cast after the last matmul; in f16 they are
// 1.6 GB written by the matmul itself).
//   input x:  declared target; readers that were Cast(x, to=target) read x itself; other readers read one
//             new Cast(x, to=f32).
//   output y: if a Cast(v, to=f32) of a target-dtype v produces it, that Cast goes and v is renamed y;
//             otherwise y's producer writes a new f32 value and a Cast(to=target) writes y.
// Values that subgraph bodies read by name keep their dtype (renaming inside bodies is not worth it here).
#include <algorithm>
#include <set>

#include "passes/convert_precision.h"
#include "passes/pass.h"
#include "passes/pattern_util.h"
#include "util/error.h"

namespace kiln::passes {

namespace {

ir::Node cast_node(const std::string& from, const std::string& to, DType dt,
                   std::set<std::string>& taken) {
  ir::Node c;
  std::string base = "kiln_io_cast_" + to;
  c.name = base;
  for (int i = 1; taken.count(c.name); ++i) c.name = base + "_" + std::to_string(i);
  taken.insert(c.name);
  c.op_type = "Cast";
  c.inputs = {from};
  c.outputs = {to};
  c.attrs["to"] = ir::Attribute::of_int(static_cast<int64_t>(dt));
  return c;
}

bool is_cast_to(const ir::Node& n, DType dt) {
  return n.op_type == "Cast" && n.domain.empty() && n.inputs.size() == 1 && n.outputs.size() == 1 &&
         n.attr_int("to", -1) == static_cast<int64_t>(dt);
}

void rename_reads(ir::Graph& g, const std::string& from, const std::string& to) {
  for (auto& n : g.nodes)
    for (auto& in : n.inputs)
      if (in == from) in = to;
}

}  // namespace

Status reduce_io_precision(ir::Graph& g, DType target) {
  if (target != DType::kF16 && target != DType::kBF16)
    return invalid_argument("reduce_io_precision converts I/O to f16 or bf16, not {}", dtype_name(target));
  const std::set<std::string> in_bodies = subgraph_read_names(g);
  std::set<std::string> node_names;
  for (const auto& n : g.nodes) node_names.insert(n.name);
  const std::set<std::string> outputs(g.outputs.begin(), g.outputs.end());
  auto f32_value = [&](const std::string& v) {
    const ir::ValueInfo* vi = g.value(v);
    return vi && vi->dtype == DType::kF32 && !in_bodies.count(v);
  };

  std::vector<ir::Node> front;
  for (const auto& x : g.inputs) {
    if (!f32_value(x) || outputs.count(x)) continue;
    const Shape shape = g.values[x].shape;
    g.values[x].dtype = target;
    std::vector<size_t> readers;  // before any renaming: later renames make other nodes read x too
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (std::find(g.nodes[i].inputs.begin(), g.nodes[i].inputs.end(), x) != g.nodes[i].inputs.end())
        readers.push_back(i);
    std::string wide;  // the f32 copy, made only if some reader needs it
    for (size_t i : readers) {
      ir::Node& n = g.nodes[i];
      if (is_cast_to(n, target) && !outputs.count(n.outputs[0]) && !in_bodies.count(n.outputs[0])) {
        const std::string narrowed = n.outputs[0];
        n.inputs.clear();  // dropped below
        rename_reads(g, narrowed, x);
        g.values.erase(narrowed);
        continue;
      }
      if (wide.empty()) {
        wide = g.unique_name(x + "_f32");
        g.values[wide] = {DType::kF32, shape};
        front.push_back(cast_node(x, wide, DType::kF32, node_names));
      }
      for (auto& in : n.inputs)
        if (in == x) in = wide;
    }
  }
  std::erase_if(g.nodes, [](const ir::Node& n) { return n.op_type == "Cast" && n.inputs.empty(); });
  g.nodes.insert(g.nodes.begin(), std::make_move_iterator(front.begin()), std::make_move_iterator(front.end()));

  std::vector<ir::Node> back;
  for (const auto& y : g.outputs) {
    if (!f32_value(y)) continue;
    if (std::find(g.inputs.begin(), g.inputs.end(), y) != g.inputs.end()) continue;
    auto producer = std::find_if(g.nodes.begin(), g.nodes.end(), [&](const ir::Node& n) {
      return std::find(n.outputs.begin(), n.outputs.end(), y) != n.outputs.end();
    });
    if (producer == g.nodes.end()) continue;  // an initializer output: left as it is
    const Shape shape = g.values[y].shape;
    if (is_cast_to(*producer, DType::kF32)) {
      const std::string v = producer->inputs[0];
      const ir::ValueInfo* vi = g.value(v);
      const bool narrow_source = vi && vi->dtype == target && !g.is_constant(v) && !outputs.count(v) &&
                                 !in_bodies.count(v) &&
                                 std::find(g.inputs.begin(), g.inputs.end(), v) == g.inputs.end();
      if (narrow_source) {
        g.nodes.erase(producer);
        for (auto& n : g.nodes)
          for (auto& o : n.outputs)
            if (o == v) o = y;
        rename_reads(g, v, y);
        g.values.erase(v);
        g.values[y].dtype = target;
        continue;
      }
    }
    const std::string wide = g.unique_name(y + "_f32");
    g.values[wide] = {DType::kF32, shape};
    for (auto& o : producer->outputs)
      if (o == y) o = wide;
    rename_reads(g, y, wide);
    g.values[y].dtype = target;
    back.push_back(cast_node(wide, y, target, node_names));
  }
  for (auto& c : back) g.nodes.push_back(std::move(c));
  return infer_shapes(g);
}

}  // namespace kiln::passes
