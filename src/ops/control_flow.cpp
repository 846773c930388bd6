// If, Loop and Scan on tensors. Bodies are subgraphs that may read enclosing values by name. Output types come
// from the bodies' declared outputs; shapes that may change per run or per iteration are left unknown.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

const ir::Graph* body_of(const InferContext& ctx, const char* key) {
  const ir::Attribute* a = ctx.node().attr(key);
  return a && a->kind == ir::Attribute::Kind::kGraph ? a->g.get() : nullptr;
}

ir::ValueInfo declared(const ir::Graph& g, const std::string& name) {
  const ir::ValueInfo* v = g.value(name);
  return v ? *v : ir::ValueInfo{};
}

Shape merge_shapes(const Shape& a, const Shape& b) {
  if (!a.has_rank() || !b.has_rank() || a.rank() != b.rank()) return Shape::unknown_rank();
  std::vector<Dim> out;
  for (size_t i = 0; i < a.rank(); ++i) out.push_back(a[i].same_as(b[i]) ? a[i] : Dim::unknown());
  return Shape(out);
}

Status infer_if(InferContext& ctx) {
  const ir::Graph* then_g = body_of(ctx, "then_branch");
  const ir::Graph* else_g = body_of(ctx, "else_branch");
  if (!then_g || !else_g) return ctx.error("needs graph attributes 'then_branch' and 'else_branch'");
  if (then_g->outputs.size() != ctx.num_outputs() || else_g->outputs.size() != ctx.num_outputs())
    return ctx.error("has {} outputs but the branches produce {} and {}", ctx.num_outputs(), then_g->outputs.size(),
                     else_g->outputs.size());
  const Shape& c = ctx.input_shape(0);
  if (c.is_static() && num_elements(c.static_dims()) != 1)
    return ctx.error("condition must hold exactly one element, got shape {}", c.to_string());
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    auto t = declared(*then_g, then_g->outputs[i]);
    auto e = declared(*else_g, else_g->outputs[i]);
    DType dt = t.dtype != DType::kUndefined ? t.dtype : e.dtype;
    if (t.dtype != DType::kUndefined && e.dtype != DType::kUndefined && t.dtype != e.dtype)
      return ctx.error("output {} is {} in then_branch but {} in else_branch", i, dtype_name(t.dtype), dtype_name(e.dtype));
    ctx.set_output(i, dt, merge_shapes(t.shape, e.shape));
  }
  return Status();
}

Status infer_loop(InferContext& ctx) {
  const ir::Graph* body = body_of(ctx, "body");
  if (!body) return ctx.error("needs a graph attribute 'body'");
  const size_t n_carried = ctx.num_inputs() >= 2 ? ctx.num_inputs() - 2 : 0;
  if (body->inputs.size() != n_carried + 2)
    return ctx.error("body takes {} inputs but the Loop passes iteration, condition and {} carried values",
                     body->inputs.size(), n_carried);
  if (body->outputs.size() < n_carried + 1)
    return ctx.error("body returns {} outputs, needs at least condition + {} carried", body->outputs.size(), n_carried);
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    auto out = declared(*body, body->outputs[i + 1]);
    if (i < n_carried) {
      DType dt = ctx.has_input(i + 2) ? ctx.input_dtype(i + 2) : out.dtype;
      Shape s = ctx.has_input(i + 2) ? merge_shapes(ctx.input_shape(i + 2), out.shape) : Shape::unknown_rank();
      ctx.set_output(i, dt, s);
    } else {
      Shape s = Shape::unknown_rank();
      if (out.shape.has_rank()) {
        std::vector<Dim> dims{Dim::unknown()};
        dims.insert(dims.end(), out.shape.dims().begin(), out.shape.dims().end());
        s = Shape(dims);
      }
      ctx.set_output(i, out.dtype, s);
    }
  }
  return Status();
}

Status infer_scan(InferContext& ctx) {
  const ir::Graph* body = body_of(ctx, "body");
  if (!body) return ctx.error("needs a graph attribute 'body'");
  if (ctx.opset() < 9) {
    // Scan-8: sequence_lens, then the states and scan inputs the body takes.
    if (ctx.num_inputs() == 0 || body->inputs.size() != ctx.num_inputs() - 1)
      return ctx.error("body takes {} inputs but the Scan passes {} after sequence_lens", body->inputs.size(),
                       ctx.num_inputs() == 0 ? 0 : ctx.num_inputs() - 1);
    if (body->outputs.size() != ctx.num_outputs())
      return ctx.error("body returns {} outputs but the Scan has {}", body->outputs.size(), ctx.num_outputs());
    for (size_t i = 0; i < ctx.num_outputs(); ++i)
      ctx.set_output(i, declared(*body, body->outputs[i]).dtype, Shape::unknown_rank());
    return Status();
  }
  // Input 0 is optional only at opset 8 (sequence_lens); infer_node checked the others.
  if (!ctx.has_input(0)) return ctx.error("input 0 is required from opset 9 on, but the model leaves it empty ('')");
  if (body->inputs.size() != ctx.num_inputs())
    return ctx.error("body takes {} inputs but the Scan passes {}", body->inputs.size(), ctx.num_inputs());
  if (body->outputs.size() != ctx.num_outputs())
    return ctx.error("body returns {} outputs but the Scan has {}", body->outputs.size(), ctx.num_outputs());
  const int64_t m = ctx.node().attr_int("num_scan_inputs", -1);
  const int64_t n_states = static_cast<int64_t>(ctx.num_inputs()) - m;
  if (m < 1 || n_states < 0) return ctx.error("attribute 'num_scan_inputs' = {} does not fit {} inputs", m, ctx.num_inputs());
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    auto out = declared(*body, body->outputs[i]);
    if (static_cast<int64_t>(i) < n_states) ctx.set_output(i, ctx.input_dtype(i), ctx.input_shape(i));
    else ctx.set_output(i, out.dtype, Shape::unknown_rank());
  }
  return Status();
}

}  // namespace

void register_control_flow(OpRegistry& r) {
  r.add({"If", 1, 1, 1, -1, infer_if});
  r.add({"Loop", 2, -1, 1, -1, infer_loop, "", 0b11});  // M and cond may be left empty
  r.add({"Scan", 1, -1, 1, -1, infer_scan, "", 0b1});  // opset 8: sequence_lens may be left empty
}

}  // namespace kiln::ops
