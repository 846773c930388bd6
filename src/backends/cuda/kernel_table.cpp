#include "backends/cuda/kernel_list.h"

namespace kiln::cuda {

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
#define KILN_CALL_CUDA_FILE(name) register_cuda_##name(t);
    KILN_CUDA_KERNEL_FILES(KILN_CALL_CUDA_FILE)
#undef KILN_CALL_CUDA_FILE
    return t;
  }();
  return table;
}

bool floats_only(const ir::Node&, const std::vector<DType>& dts) {
  for (DType d : dts)
    if (d != DType::kUndefined && d != DType::kF32 && d != DType::kF16 && d != DType::kBF16) return false;
  return true;
}

}  // namespace kiln::cuda
