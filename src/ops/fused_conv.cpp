// FusedConv: act(Conv(X, W) + B + Z), see fused_conv.h. Inference runs Conv's own inference on the
// channels-first view of the inputs, so the two ops cannot disagree on any window, pad or group rule.
#include "ops/fused_conv.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "ops/op_table.h"

namespace kiln::ops {

namespace {

Shape permuted(const Shape& s, const std::vector<size_t>& perm) {
  if (!s.has_rank() || s.rank() != perm.size()) return s;
  std::vector<Dim> out;
  for (size_t p : perm) out.push_back(s[p]);
  return Shape(out);
}

// Conv's errors say "node 'n' (Conv): ..."; say FusedConv, which is the node the user will look up.
Status relabel(const Status& s, const ir::Node& conv, const ir::Node& fused) {
  if (s.ok()) return s;
  std::string msg = s.message();
  const std::string from = conv.label();
  if (msg.rfind(from, 0) == 0) msg = fused.label() + msg.substr(from.size());
  return Status(s.code(), msg);
}

Status infer_fused_conv(InferContext& ctx) {
  const ir::Node& node = ctx.node();
  KILN_ASSIGN_OR_RETURN(ConvActivation act, read_conv_activation(node));
  (void)act;
  KILN_RETURN_IF_ERROR(read_conv_clip(node).status());
  KILN_ASSIGN_OR_RETURN(ConvLayout layout, read_conv_layout(node));
  const bool nhwc = layout == ConvLayout::kNHWC;

  const size_t rank = ctx.input_shape(kFusedConvX).has_rank()   ? ctx.input_shape(kFusedConvX).rank()
                      : ctx.input_shape(kFusedConvW).has_rank() ? ctx.input_shape(kFusedConvW).rank()
                                                                : 0;
  if (nhwc && rank != 0 && rank < 3)
    return ctx.error("input X must be at least 3-D [N, spatial..., C] in layout NHWC, got {}",
                     ctx.input_shape(kFusedConvX).to_string());

  // Conv's inference on the channels-first view (identity for NCHW).
  ir::Node conv = conv_node_of(node);
  std::vector<ir::ValueInfo> infos(3);
  std::vector<const ir::ValueInfo*> ptrs(3, nullptr);
  for (size_t i = 0; i < 3; ++i) {
    if (!ctx.has_input(i)) continue;
    infos[i].dtype = ctx.input_dtype(i);
    infos[i].shape = ctx.input_shape(i);
    if (nhwc && i < 2 && rank >= 3) infos[i].shape = permuted(infos[i].shape, to_channels_first(rank));
    ptrs[i] = &infos[i];
  }
  if (!ctx.has_input(kFusedConvB)) {
    ptrs.resize(2);
    infos.resize(2);
  }
  InferContext cctx(conv, ctx.opset(), ptrs, std::vector<const Tensor*>(ptrs.size(), nullptr));
  KILN_RETURN_IF_ERROR(relabel(infer_node(conv, ctx.opset(), cctx), conv, node));
  ir::ValueInfo y = cctx.outputs()[0];
  if (nhwc && y.shape.has_rank()) y.shape = permuted(y.shape, to_channels_last(y.shape.rank()));

  if (ctx.has_input(kFusedConvZ)) {
    if (ctx.input_dtype(kFusedConvZ) != y.dtype)
      return ctx.error("residual Z is {} but the convolution gives {}",
                       dtype_name(ctx.input_dtype(kFusedConvZ)), dtype_name(y.dtype));
    // Z is added elementwise without broadcasting: it must have Y's shape wherever both are known.
    const Shape& z = ctx.input_shape(kFusedConvZ);
    if (z.has_rank() && y.shape.has_rank()) {
      bool same = z.rank() == y.shape.rank();
      for (size_t d = 0; same && d < z.rank(); ++d)
        if (z[d].is_static() && y.shape[d].is_static() && z[d].value() != y.shape[d].value()) same = false;
      if (!same)
        return ctx.error("residual Z {} must have the convolution's output shape {}", z.to_string(),
                         y.shape.to_string());
      // Z may know dims the window arithmetic lost (e.g. a symbolic size through a strided conv).
      for (size_t d = 0; d < z.rank(); ++d)
        if (y.shape[d].is_unknown()) y.shape[d] = z[d];
    } else if (!y.shape.has_rank()) {
      y.shape = z;
    }
  }
  ctx.set_output(0, y.dtype, y.shape);
  return Status();
}

}  // namespace

Result<ConvActivation> read_conv_activation(const ir::Node& node) {
  const std::string a = node.attr_string("activation", "none");
  if (a == "none") return ConvActivation::kNone;
  if (a == "relu") return ConvActivation::kRelu;
  if (a == "sigmoid") return ConvActivation::kSigmoid;
  if (a == "silu") return ConvActivation::kSilu;
  if (a == "clip") return ConvActivation::kClip;
  if (a == "hardswish") return ConvActivation::kHardSwish;
  return Status(StatusCode::kInvalidModel, node.label() + ": activation '" + a +
                                               "' is not one of none, relu, sigmoid, silu, clip, hardswish");
}

Result<ConvClip> read_conv_clip(const ir::Node& node) {
  const float inf = std::numeric_limits<float>::infinity();
  ConvClip c{node.has_attr("clip_min") ? node.attr_float("clip_min", -inf) : -inf,
             node.has_attr("clip_max") ? node.attr_float("clip_max", inf) : inf};
  if (std::isnan(c.lo) || std::isnan(c.hi) || c.lo > c.hi)
    return Status(StatusCode::kInvalidModel,
                  fmt::format("{}: clip bounds [{}, {}] are not an interval", node.label(), c.lo, c.hi));
  return c;
}

Result<ConvLayout> read_conv_layout(const ir::Node& node) {
  const std::string l = node.attr_string("layout", "NCHW");
  if (l == "NCHW") return ConvLayout::kNCHW;
  if (l == "NHWC") return ConvLayout::kNHWC;
  return Status(StatusCode::kInvalidModel, node.label() + ": layout '" + l + "' is not one of NCHW, NHWC");
}

const char* conv_activation_name(ConvActivation a) {
  switch (a) {
    case ConvActivation::kNone:
      return "none";
    case ConvActivation::kRelu:
      return "relu";
    case ConvActivation::kSigmoid:
      return "sigmoid";
    case ConvActivation::kSilu:
      return "silu";
    case ConvActivation::kClip:
      return "clip";
    case ConvActivation::kHardSwish:
      return "hardswish";
  }
  return "?";
}

ir::Node conv_node_of(const ir::Node& fused) {
  ir::Node conv;
  conv.name = fused.name;
  conv.op_type = "Conv";
  conv.attrs = fused.attrs;
  conv.attrs.erase("activation");
  conv.attrs.erase("layout");
  conv.inputs.assign(fused.inputs.begin(), fused.inputs.begin() + std::min<size_t>(fused.inputs.size(), 3));
  while (!conv.inputs.empty() && conv.inputs.back().empty()) conv.inputs.pop_back();
  conv.outputs = {fused.outputs.empty() ? std::string() : fused.outputs[0]};
  return conv;
}

std::vector<size_t> to_channels_first(size_t rank) {
  std::vector<size_t> p{0, rank - 1};
  for (size_t i = 1; i + 1 < rank; ++i) p.push_back(i);
  return p;
}

std::vector<size_t> to_channels_last(size_t rank) {
  std::vector<size_t> p{0};
  for (size_t i = 2; i < rank; ++i) p.push_back(i);
  p.push_back(1);
  return p;
}

void register_fused_conv(OpRegistry& r) {
  r.add({"FusedConv", 2, 4, 1, 1, infer_fused_conv, kKilnDomain});
}

}  // namespace kiln::ops
