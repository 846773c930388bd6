// DepthToSpace and SpaceToDepth: move blocksize x blocksize blocks between channels and space (NCHW).
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status check_common(InferContext& ctx, int64_t& b) {
  b = ctx.node().attr_int("blocksize", 0);
  if (b <= 0) return ctx.error("attribute 'blocksize' must be positive, got {}", b);
  // blocksize^2 must fit in int64 (it divides the channel count).
  if (b > 3037000499) return ctx.error("attribute 'blocksize' {} is too large", b);
  const Shape& in = ctx.input_shape(0);
  if (in.has_rank() && in.rank() != 4) return ctx.error("input must be 4-D (NCHW), got {}", in.to_string());
  return Status();
}

Status infer_depth_to_space(InferContext& ctx) {
  int64_t b;
  KILN_RETURN_IF_ERROR(check_common(ctx, b));
  const std::string mode = ctx.node().attr_string("mode", "DCR");
  if (mode != "DCR" && mode != "CRD") return ctx.unsupported("mode '{}' is not supported (DCR, CRD)", mode);
  const Shape& in = ctx.input_shape(0);
  if (!in.has_rank()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape(std::vector<Dim>(4, Dim::unknown())));
    return Status();
  }
  Dim c = Dim::unknown();
  if (in[1].is_static()) {
    if (in[1].value() % (b * b) != 0)
      return ctx.error("the input {} has {} channels, not a multiple of blocksize^2 = {}", in.to_string(),
                       in[1].value(), b * b);
    c = Dim(in[1].value() / (b * b));
  }
  KILN_ASSIGN_OR_RETURN(Dim h, ctx.mul_dims(in[2], Dim(b)));
  KILN_ASSIGN_OR_RETURN(Dim w, ctx.mul_dims(in[3], Dim(b)));
  ctx.set_output(0, ctx.input_dtype(0), Shape(std::vector<Dim>{in[0], c, h, w}));
  return Status();
}

Status infer_space_to_depth(InferContext& ctx) {
  int64_t b;
  KILN_RETURN_IF_ERROR(check_common(ctx, b));
  const Shape& in = ctx.input_shape(0);
  if (!in.has_rank()) {
    ctx.set_output(0, ctx.input_dtype(0), Shape(std::vector<Dim>(4, Dim::unknown())));
    return Status();
  }
  KILN_ASSIGN_OR_RETURN(Dim c, ctx.mul_dims(in[1], Dim(b * b)));
  std::vector<Dim> out{in[0], c, Dim::unknown(), Dim::unknown()};
  for (size_t i = 2; i < 4; ++i) {
    if (!in[i].is_static()) continue;
    if (in[i].value() % b != 0)
      return ctx.error("dim {} of the input {} is {}, not a multiple of blocksize {}", i, in.to_string(),
                       in[i].value(), b);
    out[i] = Dim(in[i].value() / b);
  }
  ctx.set_output(0, ctx.input_dtype(0), Shape(out));
  return Status();
}

}  // namespace

void register_depth_to_space(OpRegistry& r) {
  r.add({"DepthToSpace", 1, 1, 1, 1, infer_depth_to_space});
  r.add({"SpaceToDepth", 1, 1, 1, 1, infer_space_to_depth});
}

}  // namespace kiln::ops
