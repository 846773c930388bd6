// MatMul and Gemm through cuBLASLt. Row-major C = A·B is computed as column-major Cᵀ = Bᵀ·Aᵀ, so no data moves.
// f32 runs with TF32 off unless the engine allows it; f16/bf16 accumulate in f32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/lt_matmul.h"

namespace kiln::cuda {

namespace {

// Row-major C[m,n] = alpha * op(A) * op(B) + beta * C (+ bias[n]), C updated in place; the cuBLASLt plan (descriptors,
// algorithm) is cached per shape by lt_matmul.
Status matmul_in_place(KernelContext& ctx, DType dt, LtMatmul d, const void* a, const void* b, void* c) {
  d.dtype = dt;
  return lt_matmul(ctx, d, a, b, nullptr, c);
}

bool supports_matmul(const ir::Node& n, const std::vector<DType>& dts) {
  return floats_only(n, dts) && dts.size() >= 2 && dts[0] == dts[1];
}

Status run_matmul(KernelContext& ctx) {
  const DeviceTensor& A = ctx.input(0);
  const DeviceTensor& B = ctx.input(1);
  DeviceTensor& C = ctx.output(0);
  std::vector<int64_t> a = A.dims, b = B.dims;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  LtMatmul d;
  d.m = a[a.size() - 2];
  d.k = a.back();
  d.n = b.back();
  const int64_t batch_a = num_elements({a.begin(), a.end() - 2});
  const int64_t batch_b = num_elements({b.begin(), b.end() - 2});
  const int64_t batch_c = C.numel() / std::max<int64_t>(d.m * d.n, 1);
  if (C.numel() == 0) return Status();
  if (d.k == 0) return ctx.error("K = 0 matmuls are not supported on the GPU");
  const size_t es = dtype_size(A.dtype);
  // Equal batches, or one side shared by all: one strided-batched call (stride 0 repeats a matrix).
  if ((batch_a == batch_c || batch_a == 1) && (batch_b == batch_c || batch_b == 1)) {
    d.batch = batch_c;
    d.stride_a = batch_a == 1 ? 0 : d.m * d.k;
    d.stride_b = batch_b == 1 ? 0 : d.k * d.n;
    d.stride_c = d.m * d.n;
    // A shared B with a batched A is one tall matmul: [batch*m, k]·[k, n].
    if (batch_b == 1 && batch_a == batch_c && d.batch > 1) {
      d.m *= d.batch;
      d.batch = 1;
    }
    return matmul_in_place(ctx, A.dtype, d, A.data, B.data, C.data);
  }
  // General broadcasting of batch dims: one call per output matrix.
  std::vector<int64_t> ba(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  std::vector<int64_t> bc(C.dims.begin(), C.dims.end() - (A.dims.size() == 1 ? 0 : 1) - (B.dims.size() == 1 ? 0 : 1));
  const size_t r = bc.size();
  ba.insert(ba.begin(), r - ba.size(), 1);
  bb.insert(bb.begin(), r - bb.size(), 1);
  for (int64_t i = 0; i < batch_c; ++i) {
    int64_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
    for (int64_t dim = static_cast<int64_t>(r) - 1; dim >= 0; --dim) {
      int64_t idx = rem % bc[dim];
      rem /= bc[dim];
      ia += (ba[dim] == 1 ? 0 : idx) * sa;
      ib += (bb[dim] == 1 ? 0 : idx) * sb;
      sa *= ba[dim];
      sb *= bb[dim];
    }
    LtMatmul one = d;
    KILN_RETURN_IF_ERROR(matmul_in_place(ctx, A.dtype, one, static_cast<const char*>(A.data) + ia * d.m * d.k * es,
                                   static_cast<const char*>(B.data) + ib * d.k * d.n * es,
                                   static_cast<char*>(C.data) + i * d.m * d.n * es));
  }
  return Status();
}

template <class T>
__global__ void broadcast_2d(const T* c, int64_t cm, int64_t cn, T* y, int64_t m, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < m * n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t row = i / n, col = i % n;
    y[i] = c[(cm == 1 ? 0 : row) * cn + (cn == 1 ? 0 : col)];
  }
}

Status run_gemm(KernelContext& ctx) {
  const DeviceTensor& A = ctx.input(0);
  const DeviceTensor& B = ctx.input(1);
  DeviceTensor& Y = ctx.output(0);
  const ir::Node& node = ctx.node();
  LtMatmul d;
  d.trans_a = node.attr_int("transA", 0) != 0;
  d.trans_b = node.attr_int("transB", 0) != 0;
  d.m = d.trans_a ? A.dims[1] : A.dims[0];
  d.k = d.trans_a ? A.dims[0] : A.dims[1];
  d.n = d.trans_b ? B.dims[0] : B.dims[1];
  d.alpha = node.attr_float("alpha", 1.f);
  const float beta = node.attr_float("beta", 1.f);
  if (Y.numel() == 0) return Status();
  const bool has_c = ctx.has_input(2) && beta != 0.f;
  if (has_c) {
    const DeviceTensor& C = ctx.input(2);
    const bool row_bias = C.numel() == d.n && (C.rank() == 1 || (C.rank() == 2 && C.dims[0] == 1));
    if (row_bias && beta == 1.f && d.k > 0) {
      d.bias = C.data;  // fused epilogue
    } else {
      int64_t cm = C.rank() == 2 ? C.dims[0] : 1;
      int64_t cn = C.rank() >= 1 ? C.dims.back() : 1;
      const int threads = 256;
      const int blocks = static_cast<int>(std::min<int64_t>((d.m * d.n + threads - 1) / threads, 65535));
      if (A.dtype == DType::kF16)
        broadcast_2d<<<blocks, threads, 0, ctx.stream()>>>(C.ptr<__half>(), cm, cn, Y.ptr<__half>(), d.m, d.n);
      else if (A.dtype == DType::kBF16)
        broadcast_2d<<<blocks, threads, 0, ctx.stream()>>>(C.ptr<__nv_bfloat16>(), cm, cn, Y.ptr<__nv_bfloat16>(), d.m, d.n);
      else
        broadcast_2d<<<blocks, threads, 0, ctx.stream()>>>(C.ptr<float>(), cm, cn, Y.ptr<float>(), d.m, d.n);
      KILN_CUDA_CHECK_LAUNCH();
      d.beta = beta;
    }
  }
  if (d.k == 0) {
    if (!has_c) KILN_CUDA_CHECK(cudaMemsetAsync(Y.data, 0, Y.nbytes(), ctx.stream()));
    return Status();
  }
  return matmul_in_place(ctx, A.dtype, d, A.data, B.data, Y.data);
}

bool supports_gemm(const ir::Node& n, const std::vector<DType>& dts) {
  if (!floats_only(n, dts)) return false;
  for (DType d : dts)
    if (d != DType::kUndefined && d != dts[0]) return false;
  // Gemm with beta scaling a non-broadcast C is fine; the old opset-6 broadcast attribute is not handled here.
  return n.attr_int("broadcast", 1) == 1 || dts.size() < 3;
}

}  // namespace

void register_cuda_matmul(KernelTable& t) {
  t.add({"MatMul", run_matmul, supports_matmul});
  t.add({"Gemm", run_gemm, supports_gemm});
}

}  // namespace kiln::cuda
