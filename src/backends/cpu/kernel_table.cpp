#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

const KernelDef* KernelTable::find(std::string_view op_type) const {
  auto it = defs_.find(op_type);
  return it == defs_.end() ? nullptr : &it->second;
}

std::vector<std::string> KernelTable::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : defs_) out.push_back(k);
  return out;
}

const KernelTable& kernel_table() {
  static const KernelTable table = [] {
    KernelTable t;
#define KILN_CALL_CPU_FILE(name) register_cpu_##name(t);
    KILN_CPU_KERNEL_FILES(KILN_CALL_CPU_FILE)
#undef KILN_CALL_CPU_FILE
    return t;
  }();
  return table;
}

}  // namespace kiln::cpu
