// Concat and Split: the tensor viewed as [outer, row] around the axis; each part owns a run of columns of
// every row. One launch moves up to kMaxSegs parts (more parts: several launches over disjoint columns), each
// thread one unit of the joined tensor, found by scanning the parts' column prefix. Units are the widest
// width (<= 16 bytes) that divides every part's run and aligns every pointer.
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/copy_common.cuh"

namespace kiln::cuda {

namespace {

using copy::DivOf;

constexpr int kMaxSegs = 16;

template <class U>
struct Segs {
  int count = 0;
  U* ptr[kMaxSegs] = {};              // each part's data (read by Concat, written by Split)
  int64_t width[kMaxSegs] = {};       // the part's units per row
  int64_t prefix[kMaxSegs + 1] = {};  // first column of each part within this launch's columns
};

// kConcat: joined[o * row + col0 + c] = part[o * width + c - prefix]; else the reverse (Split).
template <bool kConcat, class U, class I>
__global__ void __launch_bounds__(copy::kThreads)
    segments_kernel(U* __restrict__ joined, int64_t row, int64_t col0, Segs<U> segs, I n, DivOf<I> cols) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const I o = cols.div(i);
    const int64_t c = static_cast<int64_t>(i - o * static_cast<I>(cols.d));
    int k = 0;
    while (k + 1 < segs.count && c >= segs.prefix[k + 1]) ++k;
    U* part = segs.ptr[k] + static_cast<int64_t>(o) * segs.width[k] + (c - segs.prefix[k]);
    U* whole = joined + static_cast<int64_t>(o) * row + col0 + c;
    if constexpr (kConcat)
      *whole = *part;
    else
      *part = *whole;
  }
}

struct Part {
  void* data;
  int64_t width;  // elements per row
};

template <bool kConcat>
Status move_segments(void* joined, int64_t outer, int64_t row, const std::vector<Part>& parts, size_t es,
                     cudaStream_t stream) {
  std::vector<int64_t> lengths = {row};
  std::vector<const void*> ptrs = {joined};
  for (const Part& p : parts) lengths.push_back(p.width), ptrs.push_back(p.data);
  const size_t unit = copy::widest_unit(es, lengths, ptrs);
  const int64_t k = static_cast<int64_t>(unit / es);
  std::optional<Status> st = copy::dispatch_units(unit, [&](auto tag) -> Status {
    using U = typename decltype(tag)::type;
    int64_t col = 0;
    for (size_t first = 0; first < parts.size();) {
      Segs<U> segs;
      const int64_t col0 = col;
      for (; first < parts.size() && segs.count < kMaxSegs; ++first) {
        if (parts[first].width == 0) continue;
        segs.ptr[segs.count] = static_cast<U*>(parts[first].data);
        segs.width[segs.count] = parts[first].width / k;
        segs.prefix[segs.count + 1] = segs.prefix[segs.count] + parts[first].width / k;
        ++segs.count;
      }
      const int64_t cols = segs.prefix[segs.count];
      col += cols;
      const int64_t n = outer * cols;
      if (n == 0) continue;
      U* j = static_cast<U*>(joined);
      if (copy::fits32(n)) {
        segments_kernel<kConcat, U, uint32_t><<<copy::blocks_for(n), copy::kThreads, 0, stream>>>(
            j, row / k, col0, segs, static_cast<uint32_t>(n), ew::DivU32(static_cast<uint32_t>(cols)));
      } else {
        segments_kernel<kConcat, U, uint64_t><<<copy::blocks_for(n), copy::kThreads, 0, stream>>>(
            j, row / k, col0, segs, static_cast<uint64_t>(n), ew::DivU64(static_cast<uint64_t>(cols)));
      }
      KILN_CUDA_CHECK_LAUNCH();
    }
    return Status();
  });
  return st ? std::move(*st) : Status(StatusCode::kUnsupported, fmt::format("element size {}", es));
}

Status run_concat(KernelContext& ctx) {
  DeviceTensor& out = ctx.output(0);
  const int64_t rank = static_cast<int64_t>(out.rank());
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  const int64_t outer = copy::product(out.dims, 0, axis);
  const int64_t row = copy::product(out.dims, axis, rank);
  if (outer * row == 0) return Status();
  std::vector<Part> parts;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) continue;
    const DeviceTensor& in = ctx.input(i);
    parts.push_back({in.data, copy::product(in.dims, axis, in.rank())});
  }
  if (parts.size() == 1 && parts[0].width == row) {  // a single input: a plain copy
    KILN_CUDA_CHECK(
        cudaMemcpyAsync(out.data, parts[0].data, out.nbytes(), cudaMemcpyDeviceToDevice, ctx.stream()));
    return Status();
  }
  Status st = move_segments<true>(out.data, outer, row, parts, dtype_size(out.dtype), ctx.stream());
  return st.ok() ? st : ctx.error("{}", st.message());
}

Status run_split(KernelContext& ctx) {
  const DeviceTensor& in = ctx.input(0);
  const int64_t rank = static_cast<int64_t>(in.rank());
  int64_t axis = ctx.node().attr_int("axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return ctx.error("axis {} is out of range for rank {}", axis, rank);
  const int64_t outer = copy::product(in.dims, 0, axis);
  const int64_t inner = copy::product(in.dims, axis + 1, rank);
  std::vector<Part> parts;
  int64_t total = 0;
  for (size_t k = 0; k < ctx.num_outputs(); ++k) {
    DeviceTensor& o = ctx.output(k);
    parts.push_back({o.data, o.dims[axis] * inner});
    total += o.dims[axis];
  }
  if (total != in.dims[axis])
    return ctx.error("outputs take {} of the {} entries of axis {}", total, in.dims[axis], axis);
  if (outer * inner * total == 0) return Status();
  Status st = move_segments<false>(in.data, outer, total * inner, parts, dtype_size(in.dtype), ctx.stream());
  return st.ok() ? st : ctx.error("{}", st.message());
}

bool concat_dtypes(const ir::Node&, const std::vector<DType>& d) {
  for (DType t : d)
    if (t != DType::kUndefined && !copy::movable(t)) return false;
  return !d.empty();
}

// Every output must be named: the kernel sizes them from inference.
bool split_supported(const ir::Node& node, const std::vector<DType>& d) {
  for (const auto& o : node.outputs)
    if (o.empty()) return false;
  return copy::movable_first(node, d);
}

}  // namespace

void register_cuda_concat_split(KernelTable& t) {
  t.add({"Concat", run_concat, concat_dtypes});
  t.add({"Split", run_split, split_supported, 0b10});  // split sizes (opset 13+) on the host
}

}  // namespace kiln::cuda
