// Reduce* ops: axes from the attribute (old opsets) or an optional input, keepdims, noop_with_empty_axes.
#include "ops/reduce.h"

#include "ops/op_table.h"
#include "ops/shape_utils.h"
#include "util/error.h"

namespace kiln::ops {

namespace {

constexpr const char* kReduceOps[] = {"ReduceSum",       "ReduceMean",     "ReduceMax", "ReduceMin",
                                      "ReduceProd",      "ReduceL1",       "ReduceL2",  "ReduceLogSum",
                                      "ReduceLogSumExp", "ReduceSumSquare"};

// ReduceSum moved axes to an input at opset 13, the rest at 18.
bool axes_from_input(const ir::Node& node, int64_t opset) {
  return opset >= (node.op_type == "ReduceSum" ? 13 : 18);
}

}  // namespace

Result<ReduceSpec> reduce_spec(const ir::Node& node, int64_t opset, int64_t rank, const Tensor* axes,
                               bool axes_given) {
  ReduceSpec spec;
  spec.keepdims = node.attr_int("keepdims", 1) != 0;
  std::vector<int64_t> list;
  if (axes_from_input(node, opset) && axes_given) {
    if (!axes) {
      spec.axes_known = false;
      return spec;
    }
    if (axes->rank() > 1)
      return invalid_model("{}: input 'axes' must be 1-D, got {}", node.label(),
                           dims_to_string(axes->dims()));
    list = axes->to_int_vector();
  } else {
    // Old opsets, and models that keep the attribute past the switch (tolerated: unambiguous).
    list = node.attr_ints("axes");
  }
  spec.reduced.assign(rank, false);
  if (list.empty()) {
    // noop_with_empty_axes only exists in the input form; with the attribute, empty means all axes.
    if (axes_from_input(node, opset) && node.attr_int("noop_with_empty_axes", 0) != 0)
      spec.noop = true;
    else
      spec.reduced.assign(rank, true);
    return spec;
  }
  for (int64_t a : list) {
    if (a < -rank || a >= rank)
      return invalid_model("{}: axis {} in axes {} is out of range for an input of rank {}", node.label(), a,
                           dims_to_string(list), rank);
    int64_t k = a < 0 ? a + rank : a;
    if (spec.reduced[k])
      return invalid_model("{}: axes {} names axis {} twice", node.label(), dims_to_string(list), k);
    spec.reduced[k] = true;
  }
  return spec;
}

namespace {

Status infer_reduce(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (dt == DType::kString) return ctx.unsupported("string tensors are not supported");
  const Shape& in = ctx.input_shape(0);
  if (ctx.has_input(1) && !axes_from_input(ctx.node(), ctx.opset()))
    return ctx.error(
        "takes axes as an attribute before opset {}, but the model (opset {}) gives an axes input",
        ctx.node().op_type == "ReduceSum" ? 13 : 18, ctx.opset());
  if (ctx.has_input(1) && is_float(ctx.input_dtype(1)))
    return ctx.error("input 'axes' must be int64, got {}", dtype_name(ctx.input_dtype(1)));
  if (!in.has_rank()) {
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  const int64_t rank = static_cast<int64_t>(in.rank());
  auto spec = reduce_spec(ctx.node(), ctx.opset(), rank, ctx.input_value(1), ctx.has_input(1));
  if (!spec.ok()) return spec.status();
  if (!spec->axes_known) {
    ctx.set_output(0, dt,
                   spec->keepdims ? Shape(std::vector<Dim>(rank, Dim::unknown())) : Shape::unknown_rank());
    return Status();
  }
  if (spec->noop) return infer_same_as_input0(ctx);
  std::vector<Dim> out;
  for (int64_t i = 0; i < rank; ++i) {
    if (!spec->reduced[i])
      out.push_back(in[i]);
    else if (spec->keepdims)
      out.push_back(Dim(1));
  }
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_reduce(OpRegistry& r) {
  for (const char* name : kReduceOps) r.add({name, 1, 2, 1, 1, infer_reduce});
}

}  // namespace kiln::ops
