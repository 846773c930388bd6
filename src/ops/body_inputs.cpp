#include "ops/body_inputs.h"

#include <algorithm>

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

}  // namespace kiln::ops
