// Transpose of any rank (dims merged first, so up to 8 dims remain): a strided copy by element width. The
// innermost output dim decides the path (copy_common.cuh): contiguous in the source (e.g. perm [0,2,1,3] of
// attention heads, [1,0,2]) -> row copies in units of up to 16 bytes; the source's contiguous dim moved
// outward (last-two-dims swap [0,2,1], NCHW<->NHWC) -> 32x32 tiles through shared memory, both sides
// coalesced.
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"

namespace kiln::cuda {

namespace {

Status run_transpose(KernelContext& ctx) {
  const DeviceTensor& in = ctx.input(0);
  DeviceTensor& out = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(in.rank());
  std::vector<int64_t> perm = ctx.node().attr_ints("perm");
  if (!ctx.node().has_attr("perm"))
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
  if (static_cast<int64_t>(perm.size()) != rank)
    return ctx.error("perm {} does not match the rank of the input {}", dims_to_string(perm),
                     dims_to_string(in.dims));
  const std::vector<int64_t> in_strides = copy::strides_of(in.dims);
  std::vector<int64_t> strides(rank);
  for (int64_t i = 0; i < rank; ++i) {
    const int64_t p = perm[i] < 0 ? perm[i] + rank : perm[i];
    if (p < 0 || p >= rank)
      return ctx.error("perm {} is out of range for rank {}", dims_to_string(perm), rank);
    strides[i] = in_strides[p];
  }
  Status st = copy::strided_copy(in.data, 0, out.dims, strides, dtype_size(in.dtype), out.data, ctx.stream());
  if (!st.ok()) return ctx.error("{} (input {})", st.message(), dims_to_string(in.dims));
  return Status();
}

}  // namespace

void register_cuda_transpose(KernelTable& t) {
  t.add({"Transpose", run_transpose, copy::movable_first});
}

}  // namespace kiln::cuda
