// Kernels' shape limits (can_implement): what a CUDA kernel that takes a node's op, attributes and dtypes
// (KernelDef::supports) still cannot take of its input dims. Placement asks them with the one rule the build and
// the executor share: the build at every profile's min, opt and max, so a shape a kernel cannot take is a planned
// CPU fallback named at build (an error under --no-cpu-fallback), and the executor at each run's shapes, so no
// run meets such a shape inside the kernel.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "kiln/dtype.h"

namespace kiln::cuda {

// What placement knows of one input of a node.
struct InputFact {
  bool present = false;
  DType dtype = DType::kUndefined;
  int64_t elements = 0;  // -1: unknown
  bool on_host = false;  // a host copy exists (constants, shape math, values already downloaded)
  bool dims_known = false;
  std::vector<int64_t> dims;  // when dims_known
};

// Empty when the kernel takes these inputs (asked only when every present input's dims are known), else what
// it cannot take, e.g. "head dims D=640 Dv=640 (at most 512)".
using ShapeLimitFn = std::string (*)(const ir::Node& node, const std::vector<InputFact>& inputs);

// The shape limit of op_type's CUDA kernel; null when it has none.
ShapeLimitFn shape_limit_of(std::string_view op_type);

// Defined beside their kernels, which state the same limits when they run.
std::string attention_shape_limit(const ir::Node& node, const std::vector<InputFact>& inputs);  // FusedAttention
std::string conv_spatial_limit(const ir::Node& node, const std::vector<InputFact>& inputs);  // Conv, FusedConv, pools
std::string resize_shape_limit(const ir::Node& node, const std::vector<InputFact>& inputs);  // Resize, Upsample

}  // namespace kiln::cuda
