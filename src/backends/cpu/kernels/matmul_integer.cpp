// MatMulInteger and QLinearMatMul: zero points are subtracted up front, then an int32 batched matmul.
#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "backends/cpu/kernels/quant_common.h"

namespace kiln::cpu {

namespace {

// Operand dims with 1-D operands promoted to matrices, and the broadcast batch dims.
struct MatmulDims {
  std::vector<int64_t> a, b, batch, stride_a, stride_b;
  int64_t m = 0, k = 0, n = 0;
};

MatmulDims matmul_dims(std::vector<int64_t> a, std::vector<int64_t> b) {
  MatmulDims md;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  md.m = a[a.size() - 2];
  md.k = a.back();
  md.n = b.back();
  std::vector<int64_t> ba(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  const size_t rank = std::max(ba.size(), bb.size());
  md.batch.assign(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i + ba.size() >= rank ? ba[i + ba.size() - rank] : 1;
    const int64_t db = i + bb.size() >= rank ? bb[i + bb.size() - rank] : 1;
    md.batch[i] = std::max(da, db);
  }
  md.stride_a = broadcast_strides(ba, md.batch);
  md.stride_b = broadcast_strides(bb, md.batch);
  md.a = std::move(a);
  md.b = std::move(b);
  return md;
}

// Calls fn(out_batch, a_batch, b_batch) for every output matrix with the broadcast operand matrices.
template <class Fn>
void for_each_batch(const MatmulDims& md, Fn&& fn) {
  const int64_t nb = num_elements(md.batch);
  for (int64_t bi = 0; bi < nb; ++bi) {
    int64_t oa = 0, ob = 0, rem = bi;
    for (int64_t d = static_cast<int64_t>(md.batch.size()) - 1; d >= 0; --d) {
      const int64_t id = rem % md.batch[d];
      rem /= md.batch[d];
      oa += id * md.stride_a[d];
      ob += id * md.stride_b[d];
    }
    fn(bi, oa, ob);
  }
}

// Per-row parameters of A come as [M] and mean [M, 1]; others broadcast as given.
std::vector<int64_t> row_param_dims(const Tensor* p) {
  if (!p) return {};
  if (p->rank() == 1 && p->numel() > 1) return {p->numel(), 1};
  return p->dims();
}

std::vector<int64_t> param_dims(const Tensor* p) { return p ? p->dims() : std::vector<int64_t>{}; }

// acc[bi, i, j] = sum_k a[i, k] * b[k, j] over int32 operands that already had their zero points removed.
std::vector<int32_t> int_matmul(const MatmulDims& md, const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const int64_t m = md.m, k = md.k, n = md.n;
  std::vector<int32_t> acc(static_cast<size_t>(num_elements(md.batch) * m * n), 0);
  for_each_batch(md, [&](int64_t bi, int64_t oa, int64_t ob) {
    const int32_t* pa = a.data() + oa * m * k;
    const int32_t* pb = b.data() + ob * k * n;
    int32_t* pc = acc.data() + bi * m * n;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t p = 0; p < k; ++p) {
        const int32_t av = pa[i * k + p];
        for (int64_t j = 0; j < n; ++j) pc[i * n + j] += av * pb[p * n + j];
      }
  });
  return acc;
}

Status run_matmul_integer(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  const Tensor* azp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* bzp = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  const MatmulDims md = matmul_dims(a.dims(), b.dims());
  const auto av = subtract_zero_point(a, azp, row_param_dims(azp));
  const auto bv = subtract_zero_point(b, bzp, param_dims(bzp));
  const auto acc = int_matmul(md, av, bv);
  std::copy(acc.begin(), acc.end(), ctx.output(0).data<int32_t>());
  return Status();
}

Status run_qlinear_matmul(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(3);
  const MatmulDims md = matmul_dims(a.dims(), b.dims());
  const auto av = subtract_zero_point(a, &ctx.input(2), row_param_dims(&ctx.input(2)));
  const auto bv = subtract_zero_point(b, &ctx.input(5), param_dims(&ctx.input(5)));
  const auto acc = int_matmul(md, av, bv);
  // Scales expanded over the (promoted) operands; a row's scale is read at its k = 0 element.
  const auto a_scale = expand_param(&ctx.input(1), row_param_dims(&ctx.input(1)), md.a);
  const auto b_scale = expand_param(&ctx.input(4), param_dims(&ctx.input(4)), md.b);
  const double y_scale = ctx.input(6).get_as_double(0);
  const double y_zp = ctx.input(7).get_as_double(0);
  const int64_t m = md.m, k = md.k, n = md.n;
  Tensor& y = ctx.output(0);
  dispatch_all(y.dtype(), [&](auto tag) {
    using Q = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<Q>) {
      Q* py = y.data<Q>();
      for_each_batch(md, [&](int64_t bi, int64_t oa, int64_t ob) {
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = 0; j < n; ++j) {
            const double sa = k > 0 ? a_scale[(oa * m + i) * k] : 1.0;
            const double sb = k > 0 ? b_scale[ob * k * n + j] : 1.0;
            const int64_t o = (bi * m + i) * n + j;
            py[o] = saturate_round<Q>(acc[o] * sa * sb / y_scale + y_zp);
          }
      });
    }
  });
  return Status();
}

}  // namespace

void register_cpu_matmul_integer(KernelTable& t) {
  t.add({"MatMulInteger", run_matmul_integer});
  t.add({"QLinearMatMul", run_qlinear_matmul});
}

}  // namespace kiln::cpu
