// Checks shared by the normalization ops (LayerNormalization, RMSNormalization).
#pragma once
#include "ops/op.h"

namespace kiln::ops {

// `param` (input `index`) must broadcast one-way to `target` (the normalized trailing dims of X): each of its
// right-aligned dims equals the target's or is 1, and extra leading dims are 1.
inline Status check_broadcasts_to(const InferContext& ctx, size_t index, const char* what,
                                  const std::vector<Dim>& target) {
  const Shape& p = ctx.input_shape(index);
  if (!p.has_rank()) return Status();
  const size_t pr = p.rank(), tr = target.size();
  for (size_t i = 0; i < pr; ++i) {
    const Dim& d = p[pr - 1 - i];
    if (!d.is_static() || d.value() == 1) continue;
    if (i >= tr)
      return ctx.error("input '{}' has shape {} with more dims than the normalized shape {}", what,
                       p.to_string(), Shape(target).to_string());
    const Dim& t = target[tr - 1 - i];
    if (t.is_static() && t.value() != d.value())
      return ctx.error("input '{}' has shape {} which does not broadcast to the normalized shape {}", what,
                       p.to_string(), Shape(target).to_string());
  }
  return Status();
}

}  // namespace kiln::ops
