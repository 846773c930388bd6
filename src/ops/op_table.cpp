#include "ops/op_table.h"

namespace kiln::ops {

void register_all_ops(OpRegistry& r) {
#define KILN_CALL_OP_FILE(name) register_##name(r);
  KILN_OP_FILES(KILN_CALL_OP_FILE)
#undef KILN_CALL_OP_FILE
}

}  // namespace kiln::ops
