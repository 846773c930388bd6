#include "passes/pass.h"

namespace kiln::passes {

Status fold_shapes(ir::Graph& g) {
  std::vector<ir::Node> kept;
  for (auto& n : g.nodes) {
    const ir::ValueInfo* in = (n.op_type == "Shape" || n.op_type == "Size") ? g.value(n.inputs[0]) : nullptr;
    if (!in || !in->shape.has_rank()) {
      kept.push_back(std::move(n));
      continue;
    }
    const auto& dims = in->shape.dims();
    const int64_t rank = static_cast<int64_t>(dims.size());
    if (n.op_type == "Size") {
      if (!in->shape.is_static()) {
        kept.push_back(std::move(n));
        continue;
      }
      g.initializers[n.outputs[0]] = Tensor::scalar_i64(num_elements(in->shape.static_dims()));
      g.values[n.outputs[0]] = {DType::kI64, Shape::scalar()};
      continue;
    }
    int64_t start = n.attr_int("start", 0), end = n.attr_int("end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    bool all_static = true;
    for (int64_t i = start; i < end; ++i) all_static &= dims[i].is_static();
    if (!all_static) {
      kept.push_back(std::move(n));
      continue;
    }
    Tensor t(DType::kI64, {end - start});
    for (int64_t i = start; i < end; ++i) t.data<int64_t>()[i - start] = dims[i].value();
    g.values[n.outputs[0]] = {DType::kI64, Shape({end - start})};
    g.initializers[n.outputs[0]] = std::move(t);
  }
  g.nodes = std::move(kept);
  return Status();
}

}  // namespace kiln::passes
