#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/copy_util.h"

namespace kiln::cpu {

namespace {

// Visits (space index, depth index) pairs: space is [N, C, H*b, W*b], depth is [N, C*b*b, H, W], where the
// depth channel of block offset (i, j) is (i*b + j)*C + c (DCR) or c*b*b + i*b + j (CRD).
template <class Fn>
void for_each_block(int64_t n, int64_t c, int64_t h, int64_t w, int64_t b, bool crd, Fn&& fn) {
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ic = 0; ic < c; ++ic)
      for (int64_t y = 0; y < h * b; ++y)
        for (int64_t x = 0; x < w * b; ++x) {
          const int64_t i = y % b, j = x % b;
          const int64_t dc = crd ? ic * b * b + i * b + j : (i * b + j) * c + ic;
          const int64_t space = ((in * c + ic) * h * b + y) * w * b + x;
          const int64_t depth = ((in * c * b * b + dc) * h + y / b) * w + x / b;
          fn(space, depth);
        }
}

Status run_depth_to_space(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const int64_t b = ctx.node().attr_int("blocksize", 1);
  const bool crd = ctx.node().attr_string("mode", "DCR") == "CRD";
  bool ok = dispatch_bytes(elem_size(in), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = in.data<U>();
    U* dst = out.data<U>();
    for_each_block(in.dim(0), in.dim(1) / (b * b), in.dim(2), in.dim(3), b, crd,
                   [&](int64_t space, int64_t depth) { dst[space] = src[depth]; });
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(in.dtype()));
}

Status run_space_to_depth(KernelContext& ctx) {
  const Tensor& in = ctx.input(0);
  Tensor& out = ctx.output(0);
  const int64_t b = ctx.node().attr_int("blocksize", 1);
  bool ok = dispatch_bytes(elem_size(in), [&](auto tag) {
    using U = typename decltype(tag)::type;
    const U* src = in.data<U>();
    U* dst = out.data<U>();
    for_each_block(in.dim(0), in.dim(1), in.dim(2) / b, in.dim(3) / b, b, false,
                   [&](int64_t space, int64_t depth) { dst[depth] = src[space]; });
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(in.dtype()));
}

}  // namespace

void register_cpu_depth_to_space(KernelTable& t) {
  t.add({"DepthToSpace", run_depth_to_space, false});
  t.add({"SpaceToDepth", run_space_to_depth, false});
}

}  // namespace kiln::cpu
