#include "backends/cpu/dispatch.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

Status run_matmul(KernelContext& ctx) {
  std::vector<int64_t> a = ctx.input(0).dims(), b = ctx.input(1).dims();
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  const int64_t m = a[a.size() - 2], k = a.back(), n = b.back();
  std::vector<int64_t> ba(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  const size_t brank = std::max(ba.size(), bb.size());
  std::vector<int64_t> batch(brank, 1);
  for (size_t i = 0; i < brank; ++i) {
    int64_t da = i + ba.size() >= brank ? ba[i + ba.size() - brank] : 1;
    int64_t db = i + bb.size() >= brank ? bb[i + bb.size() - brank] : 1;
    batch[i] = std::max(da, db);
  }
  const auto sa = broadcast_strides(ba, batch), sb = broadcast_strides(bb, batch);
  const int64_t nb = num_elements(batch);
  Tensor& out = ctx.output(0);
  std::vector<int64_t> idx(brank, 0);
  bool ok = dispatch_all(ctx.input(0).dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = ctx.input(0).data<T>();
    const T* pb = ctx.input(1).data<T>();
    T* po = out.data<T>();
    for (int64_t bi = 0; bi < nb; ++bi) {
      int64_t oa = 0, ob = 0, rem = bi;
      for (int64_t d = static_cast<int64_t>(brank) - 1; d >= 0; --d) {
        int64_t id = rem % batch[d];
        rem /= batch[d];
        oa += id * sa[d];
        ob += id * sb[d];
      }
      const T* ma = pa + oa * m * k;
      const T* mb = pb + ob * k * n;
      T* mc = po + bi * m * n;
      if constexpr (std::is_same_v<T, float>) {
        gemm_f32(false, false, m, n, k, 1.f, ma, k, mb, n, 0.f, mc, n);
      } else {
        gemm_naive<T>(false, false, m, n, k, 1.0, ma, k, mb, n, 0.0, mc, n);
      }
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(ctx.input(0).dtype()));
}

}  // namespace

void register_cpu_matmul(KernelTable& t) { t.add({"MatMul", run_matmul}); }

}  // namespace kiln::cpu
