// The explicit table of op files. Each src/ops/<name>.cpp defines register_<name>(); add new ones here and in
// op_table.cpp (no static initialisers: the table is the one place that lists what kiln knows).
#pragma once
#include "ops/op.h"

namespace kiln::ops {

void register_all_ops(OpRegistry& r);

#define KILN_OP_FILES(X) \
  X(binary_elementwise)  \
  X(unary_elementwise)   \
  X(constant)            \
  X(identity)            \
  X(shape)               \
  X(reshape)             \
  X(cast)                \
  X(matmul)

#define KILN_DECLARE_OP_FILE(name) void register_##name(OpRegistry& r);
KILN_OP_FILES(KILN_DECLARE_OP_FILE)
#undef KILN_DECLARE_OP_FILE

}  // namespace kiln::ops
