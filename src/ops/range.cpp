// Range: max(ceil((limit - start) / delta), 0) values start, start + delta, …; all three are scalars.
#include <cmath>

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_range(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  for (size_t i = 0; i < 3; ++i) {
    if (ctx.input_dtype(i) != dt)
      return ctx.error("start, limit and delta must have the same dtype; input {} is {} but start is {}", i,
                       dtype_name(ctx.input_dtype(i)), dtype_name(dt));
    const Shape& s = ctx.input_shape(i);
    if (s.has_rank() && !(s.rank() == 0 || (s.rank() == 1 && s[0].is_static() && s[0].value() == 1)))
      return ctx.error("input {} must be a scalar, got shape {}", i, s.to_string());
  }
  if (dt != DType::kF32 && dt != DType::kF64 && dt != DType::kI16 && dt != DType::kI32 && dt != DType::kI64)
    return ctx.unsupported("dtype {} is not supported (f32, f64, i16, i32, i64)", dtype_name(dt));
  const Tensor *start = ctx.input_value(0), *limit = ctx.input_value(1), *delta = ctx.input_value(2);
  if (!start || !limit || !delta) {
    ctx.set_output(0, dt, Shape(std::vector<Dim>{Dim::unknown()}));
    return Status();
  }
  int64_t n = 0;
  if (is_integer(dt)) {
    const int64_t s = start->get_as_int(0), l = limit->get_as_int(0), d = delta->get_as_int(0);
    if (d == 0) return ctx.error("delta is 0");
    // Ceiling division that rounds toward +inf for either sign.
    // In 128 bits: limit - start of two int64 values (and INT64_MIN / -1) can leave int64.
    const __int128 span = static_cast<__int128>(l) - s;
    const __int128 len = span / d + ((span % d != 0 && ((span < 0) == (d < 0))) ? 1 : 0);
    if (len > INT64_MAX)
      return ctx.error("start {}, limit {} and delta {} give {} values or more, past int64", s, l, d, INT64_MAX);
    n = static_cast<int64_t>(len);
  } else {
    const double s = start->get_as_double(0), l = limit->get_as_double(0), d = delta->get_as_double(0);
    if (d == 0) return ctx.error("delta is 0");
    const double c = std::ceil((l - s) / d);
    if (!std::isfinite(c)) return ctx.error("start {}, limit {} and delta {} give no finite length", s, l, d);
    // 2^63 as a double: a length at or past it has no int64 value (the cast would be undefined).
    if (c >= 9223372036854775808.0)
      return ctx.error("start {}, limit {} and delta {} give {} values, past int64", s, l, d, c);
    n = static_cast<int64_t>(c);
  }
  ctx.set_output(0, dt, Shape({std::max<int64_t>(n, 0)}));
  return Status();
}

}  // namespace

void register_range(OpRegistry& r) { r.add({"Range", 3, 3, 1, 1, infer_range}); }

}  // namespace kiln::ops
