// Where(condition, X, Y) with numpy broadcasting of all three; any dtype, moved by element width.
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/ew_common.cuh"

namespace kiln::cuda {

namespace {

using namespace ew;

// Every operand either full-size (contiguous, same as the output) or a single element.
template <int VEC, class U>
__global__ void __launch_bounds__(kThreads)
    where_flat_kernel(const uint8_t* __restrict__ c, const U* __restrict__ x, const U* __restrict__ y,
                      U* __restrict__ out, int64_t n, bool c_scalar, bool x_scalar, bool y_scalar) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const uint8_t c0 = c[0];  // n > 0: every operand has an element
  const U x0 = x[0], y0 = y[0];
  const int64_t nvec = n / VEC;
  for (int64_t v = t; v < nvec; v += stride) {
    Pack<uint8_t, VEC> pc;
    Pack<U, VEC> px, py, r;
    if (c_scalar) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) pc.v[k] = c0;
    } else {
      pc = reinterpret_cast<const Pack<uint8_t, VEC>*>(c)[v];
    }
    if (x_scalar) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) px.v[k] = x0;
    } else {
      px = reinterpret_cast<const Pack<U, VEC>*>(x)[v];
    }
    if (y_scalar) {
#pragma unroll
      for (int k = 0; k < VEC; ++k) py.v[k] = y0;
    } else {
      py = reinterpret_cast<const Pack<U, VEC>*>(y)[v];
    }
#pragma unroll
    for (int k = 0; k < VEC; ++k) r.v[k] = pc.v[k] ? px.v[k] : py.v[k];
    reinterpret_cast<Pack<U, VEC>*>(out)[v] = r;
  }
  for (int64_t i = nvec * VEC + t; i < n; i += stride) {
    const uint8_t ci = c_scalar ? c0 : c[i];
    out[i] = ci ? (x_scalar ? x0 : x[i]) : (y_scalar ? y0 : y[i]);
  }
}

// Broadcast with a vectorizable innermost dim (see binary_bcast_vec_kernel): innermost strides 0 or 1,
// dims[0] % VEC == 0, so each group of VEC outputs reads contiguous, aligned runs or repeats one element.
template <int VEC, class U>
__global__ void __launch_bounds__(kThreads)
    where_bcast_vec_kernel(const uint8_t* __restrict__ c, const U* __restrict__ x, const U* __restrict__ y,
                           U* __restrict__ out, uint32_t nvec, Indexer<3, uint32_t> ix, bool c_rep, bool x_rep,
                           bool y_rep) {
  const uint32_t stride = gridDim.x * blockDim.x;
  for (uint32_t v = blockIdx.x * blockDim.x + threadIdx.x; v < nvec; v += stride) {
    const uint32_t i = v * VEC;
    uint32_t off[3];
    ix.offsets(i, off);
    Pack<uint8_t, VEC> pc;
    Pack<U, VEC> px, py, r;
    if (c_rep) {
      const uint8_t s = c[off[0]];
#pragma unroll
      for (int k = 0; k < VEC; ++k) pc.v[k] = s;
    } else {
      pc = *reinterpret_cast<const Pack<uint8_t, VEC>*>(c + off[0]);
    }
    if (x_rep) {
      const U s = x[off[1]];
#pragma unroll
      for (int k = 0; k < VEC; ++k) px.v[k] = s;
    } else {
      px = *reinterpret_cast<const Pack<U, VEC>*>(x + off[1]);
    }
    if (y_rep) {
      const U s = y[off[2]];
#pragma unroll
      for (int k = 0; k < VEC; ++k) py.v[k] = s;
    } else {
      py = *reinterpret_cast<const Pack<U, VEC>*>(y + off[2]);
    }
#pragma unroll
    for (int k = 0; k < VEC; ++k) r.v[k] = pc.v[k] ? px.v[k] : py.v[k];
    *reinterpret_cast<Pack<U, VEC>*>(out + i) = r;
  }
}

template <class I, class U>
__global__ void __launch_bounds__(kThreads)
    where_bcast_kernel(const uint8_t* __restrict__ c, const U* __restrict__ x, const U* __restrict__ y,
                       U* __restrict__ out, I n, Indexer<3, I> ix) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    I off[3];
    ix.offsets(i, off);
    out[i] = c[off[0]] ? x[off[1]] : y[off[2]];
  }
}

template <class U>
Status launch_where(KernelContext& ctx) {
  const DeviceTensor& c = ctx.input(0);
  const DeviceTensor& x = ctx.input(1);
  const DeviceTensor& y = ctx.input(2);
  DeviceTensor& out = ctx.output(0);
  const int64_t n = out.numel();
  if (n <= 0) return Status();
  const Layout<3> L = make_layout<3>(out.dims, {&c.dims, &x.dims, &y.dims});
  if (!L.ok)
    return ctx.error("cannot broadcast {}, {} and {} to {} (or more than {} dims after merging)",
                     dims_to_string(c.dims), dims_to_string(x.dims), dims_to_string(y.dims), dims_to_string(out.dims),
                     kMaxRank);
  const uint8_t* pc = static_cast<const uint8_t*>(c.data);
  const U* px = static_cast<const U*>(x.data);
  const U* py = static_cast<const U*>(y.data);
  U* po = static_cast<U*>(out.data);
  cudaStream_t s = ctx.stream();
  constexpr int VEC = static_cast<int>(16 / sizeof(U));
  if (L.rank == 1) {
    const bool cs = L.strides[0][0] == 0, xs = L.strides[1][0] == 0, ys = L.strides[2][0] == 0;
    const bool vec_ok = (cs || aligned_to(pc, VEC)) && (xs || aligned_to(px, VEC * sizeof(U))) &&
                        (ys || aligned_to(py, VEC * sizeof(U))) && aligned_to(po, VEC * sizeof(U));
    if (vec_ok) {
      where_flat_kernel<VEC, U><<<blocks_for((n + VEC - 1) / VEC), kThreads, 0, s>>>(pc, px, py, po, n, cs, xs, ys);
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    }
  }
  if (L.rank >= 2 && L.dims[0] % VEC == 0 && L.fits32) {
    const bool cr = L.strides[0][0] == 0, xr = L.strides[1][0] == 0, yr = L.strides[2][0] == 0;
    const bool vec_ok = (cr || aligned_to(pc, VEC)) && (xr || aligned_to(px, VEC * sizeof(U))) &&
                        (yr || aligned_to(py, VEC * sizeof(U))) && aligned_to(po, VEC * sizeof(U));
    if (vec_ok) {
      const int64_t nvec = n / VEC;
      where_bcast_vec_kernel<VEC, U><<<blocks_for(nvec), kThreads, 0, s>>>(
          pc, px, py, po, static_cast<uint32_t>(nvec), make_indexer<3, uint32_t>(L), cr, xr, yr);
      KILN_CUDA_CHECK_LAUNCH();
      return Status();
    }
  }
  if (L.fits32) {
    where_bcast_kernel<uint32_t, U>
        <<<blocks_for(n), kThreads, 0, s>>>(pc, px, py, po, static_cast<uint32_t>(n), make_indexer<3, uint32_t>(L));
  } else {
    where_bcast_kernel<uint64_t, U>
        <<<blocks_for(n), kThreads, 0, s>>>(pc, px, py, po, static_cast<uint64_t>(n), make_indexer<3, uint64_t>(L));
  }
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

Status run_where(KernelContext& ctx) {
  std::optional<Status> st = dispatch_bytes(dtype_size(ctx.input(1).dtype), [&](auto tag) {
    using U = typename decltype(tag)::type;
    return launch_where<U>(ctx);
  });
  return st ? std::move(*st) : ctx.error("dtype {} is not supported", dtype_name(ctx.input(1).dtype));
}

bool where_dtypes(const ir::Node&, const std::vector<DType>& d) {
  if (d.size() != 3 || d[0] != DType::kBool || d[1] != d[2]) return false;
  const size_t sz = dtype_size(d[1]);
  return sz == 1 || sz == 2 || sz == 4 || sz == 8;
}

}  // namespace

void register_cuda_where(KernelTable& t) { t.add({"Where", run_where, where_dtypes}); }

}  // namespace kiln::cuda
