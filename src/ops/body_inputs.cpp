#include "ops/body_inputs.h"

#include <algorithm>

#include "ops/op.h"

namespace kiln::ops {

std::map<std::string, ir::ValueInfo> body_input_types(const ir::Node& node, const ir::Graph& body,
                                                      const std::vector<const ir::ValueInfo*>& inputs) {
  std::vector<ir::ValueInfo> from_node(body.inputs.size());
  if (node.op_type == "Loop") {
    if (!from_node.empty()) from_node[0] = {DType::kI64, Shape::from_dims({})};
    if (from_node.size() > 1) from_node[1] = {DType::kBool, Shape::from_dims({})};
    for (size_t j = 2; j < from_node.size() && j < inputs.size(); ++j)
      if (inputs[j]) from_node[j] = *inputs[j];
  } else if (node.op_type == "Scan") {
    const size_t m = static_cast<size_t>(std::max<int64_t>(node.attr_int("num_scan_inputs", 0), 0));
    const size_t n_states = inputs.size() >= m ? inputs.size() - m : 0;
    for (size_t j = 0; j < from_node.size() && j < inputs.size(); ++j)
      if (inputs[j]) from_node[j] = j < n_states ? *inputs[j] : ir::ValueInfo{inputs[j]->dtype, Shape::unknown_rank()};
  }
  std::map<std::string, ir::ValueInfo> out;
  for (size_t j = 0; j < body.inputs.size(); ++j) {
    const ir::ValueInfo* declared = body.value(body.inputs[j]);
    if ((!declared || declared->dtype == DType::kUndefined) && from_node[j].dtype != DType::kUndefined)
      out[body.inputs[j]] = from_node[j];
  }
  return out;
}

std::optional<std::vector<ir::ValueInfo>> infer_outputs(
    const ir::Node& node, int64_t opset, const std::function<const ir::ValueInfo*(const std::string&)>& info,
    const std::function<const Tensor*(const std::string&)>& constant) {
  std::vector<ir::ValueInfo> infos(node.inputs.size());
  std::vector<const ir::ValueInfo*> info_ptrs(node.inputs.size(), nullptr);
  std::vector<const Tensor*> values(node.inputs.size(), nullptr);
  for (size_t k = 0; k < node.inputs.size(); ++k) {
    if (node.inputs[k].empty()) continue;
    if (const ir::ValueInfo* v = info(node.inputs[k])) infos[k] = *v;
    info_ptrs[k] = &infos[k];
    values[k] = constant(node.inputs[k]);
  }
  InferContext ctx(node, opset, info_ptrs, values);
  if (!infer_node(node, opset, ctx).ok()) return std::nullopt;
  return ctx.outputs();
}

}  // namespace kiln::ops
