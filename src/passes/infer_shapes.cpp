#include "ops/op.h"
#include "passes/pass.h"
#include "util/error.h"

namespace kiln::passes {

Status infer_shapes(ir::Graph& g) {
  for (const auto& n : g.nodes) {
    std::vector<const ir::ValueInfo*> infos(n.inputs.size(), nullptr);
    std::vector<const Tensor*> values(n.inputs.size(), nullptr);
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (n.inputs[i].empty()) continue;
      auto it = g.values.find(n.inputs[i]);
      if (it == g.values.end()) return internal_error("{}: input '{}' has no value info", n.label(), n.inputs[i]);
      infos[i] = &it->second;
      if (auto c = g.initializers.find(n.inputs[i]); c != g.initializers.end()) values[i] = &c->second;
    }
    ops::InferContext ctx(n, g.opset, infos, values);
    KILN_RETURN_IF_ERROR(ops::infer_node(n, g.opset, ctx));
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      if (n.outputs[i].empty()) continue;
      const auto& inferred = ctx.outputs()[i];
      auto& slot = g.values[n.outputs[i]];
      if (slot.dtype != DType::kUndefined && inferred.dtype != DType::kUndefined && slot.dtype != inferred.dtype)
        return invalid_model("{}: output '{}' is declared {} in the model but the op produces {} (dtype mismatch)",
                             n.label(), n.outputs[i], dtype_name(slot.dtype), dtype_name(inferred.dtype));
      // Prefer inferred facts; keep declared symbolic dims where inference knows less.
      ir::ValueInfo merged = inferred;
      if (merged.dtype == DType::kUndefined) merged.dtype = slot.dtype;
      if (!merged.shape.has_rank()) {
        merged.shape = slot.shape;
      } else if (slot.shape.has_rank() && slot.shape.rank() == merged.shape.rank()) {
        for (size_t d = 0; d < merged.shape.rank(); ++d) {
          const Dim& decl = slot.shape[d];
          Dim& inf = merged.shape[d];
          if (inf.is_static() && decl.is_static() && inf.value() != decl.value())
            return invalid_model("{}: output '{}' is declared {} but inference gives {} (dim {} mismatch)", n.label(),
                                 n.outputs[i], slot.shape.to_string(), merged.shape.to_string(), d);
          if (!inf.is_static() && !decl.is_unknown()) inf = decl;
        }
      }
      slot = merged;
    }
  }
  return Status();
}

}  // namespace kiln::passes
