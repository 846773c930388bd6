#include "ops/op.h"

#include "ops/op_table.h"
#include "util/checked_math.h"
#include "util/safe_text.h"

namespace kiln::ops {

InferContext::InferContext(const ir::Node& node, int64_t opset, std::vector<const ir::ValueInfo*> inputs,
                           std::vector<const Tensor*> values)
    : node_(node), opset_(opset), inputs_(std::move(inputs)), values_(std::move(values)) {
  outputs_.resize(node.outputs.size());
}

const Shape& InferContext::absent_shape() {
  static const Shape unknown = Shape::unknown_rank();
  return unknown;
}

void InferContext::set_output(size_t i, DType dtype, Shape shape) {
  if (i >= outputs_.size()) return;
  outputs_[i].dtype = dtype;
  outputs_[i].shape = std::move(shape);
}

static Result<Dim> name_node(const ir::Node& node, Result<Dim> r) {
  if (r.ok()) return r;
  return Status(r.status().code(), node.label() + ": " + r.status().message() +
                                       "; the model's dims or shape values are too large to be real");
}

Result<Dim> InferContext::add_dims(const Dim& a, const Dim& b) const { return name_node(node_, dim_add(a, b)); }
Result<Dim> InferContext::mul_dims(const Dim& a, const Dim& b) const { return name_node(node_, dim_mul(a, b)); }

const OpDef* OpRegistry::find(std::string_view op_type) const {
  auto it = defs_.find(op_type);
  return it == defs_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : defs_) out.push_back(k);
  return out;
}

const OpRegistry& op_registry() {
  static const OpRegistry registry = [] {
    OpRegistry r;
    register_all_ops(r);
    return r;
  }();
  return registry;
}

// The one check behind every op's own arithmetic: no output may have more bytes than int64 counts, whatever
// dims an infer function derived (at build time from the model, at run time from real values).
static Status check_output_sizes(const InferContext& ctx) {
  const auto& outs = ctx.outputs();
  for (size_t i = 0; i < outs.size(); ++i) {
    if (!outs[i].shape.has_rank()) continue;
    std::vector<int64_t> known;
    for (const Dim& d : outs[i].shape.dims())
      if (d.is_static()) known.push_back(d.value());
    const DType dt = outs[i].dtype == DType::kUndefined ? DType::kU8 : outs[i].dtype;
    if (!checked_nbytes(dt == DType::kString ? DType::kU8 : dt, known))
      return ctx.error("output {} ('{}') would be {}{}, whose size overflows a 64-bit byte count; the model's dims or "
                       "shape values are too large to be real",
                       i, printable(i < ctx.node().outputs.size() ? ctx.node().outputs[i] : std::string()),
                       dtype_name(outs[i].dtype), outs[i].shape.to_string());
  }
  return Status();
}

Status infer_node(const ir::Node& node, int64_t opset, InferContext& ctx) {
  const OpDef* def = op_registry().find(node.op_type);
  if (!def)
    return Status(StatusCode::kUnsupported, node.label() + ": kiln has no op '" + printable(node.op_type) + "'");
  int n_in = static_cast<int>(node.inputs.size());
  while (n_in > 0 && node.inputs[n_in - 1].empty()) --n_in;
  if (n_in < def->min_inputs || (def->max_inputs >= 0 && n_in > def->max_inputs))
    return ctx.error("takes {} to {} inputs, the model gives {}", def->min_inputs,
                     def->max_inputs < 0 ? std::string("any number of") : std::to_string(def->max_inputs), n_in);
  // Required inputs, and every input of an ONNX op's variadic tail (Concat's, Loop's carried values), must be
  // named; a trailing '' in a variadic tail is no optional input either.
  const int listed = static_cast<int>(node.inputs.size());
  const int named_up_to = def->max_inputs < 0 && def->domain.empty() ? listed : def->min_inputs;
  for (int i = 0; i < named_up_to && i < listed; ++i)
    if (node.inputs[i].empty() && !(i < 32 && (def->optional_inputs >> i & 1u)))
      return ctx.error("input {} is required, but the model leaves it empty ('')", i);
  int n_out = static_cast<int>(node.outputs.size());
  if (n_out < def->min_outputs || (def->max_outputs >= 0 && n_out > def->max_outputs))
    return ctx.error("has {} to {} outputs, the model gives {}", def->min_outputs, def->max_outputs, n_out);
  for (size_t i = 0; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i) && ctx.input_dtype(i) == DType::kUndefined)
      return ctx.error("input {} ('{}') has no known dtype", i, printable(node.inputs[i]));
  KILN_RETURN_IF_ERROR(def->infer(ctx));
  return check_output_sizes(ctx);
}

}  // namespace kiln::ops
