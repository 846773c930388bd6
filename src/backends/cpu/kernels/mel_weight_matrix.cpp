// MelWeightMatrix: num_mel_bins + 2 points evenly spaced on the mel scale, mapped to DFT bins; filter i rises
// from point i to point i+1 and falls to point i+2, peaking at 1.
#include <cmath>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

double hz_to_mel(double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); }
double mel_to_hz(double mel) { return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0); }

Status run_mel_weight_matrix(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const int64_t bins, ctx.scalar_int(0));
  KILN_ASSIGN_OR_RETURN(const int64_t dft, ctx.scalar_int(1));
  KILN_ASSIGN_OR_RETURN(const int64_t rate, ctx.scalar_int(2));
  KILN_ASSIGN_OR_RETURN(const double lower, ctx.scalar_double(3));
  KILN_ASSIGN_OR_RETURN(const double upper, ctx.scalar_double(4));
  if (bins <= 0 || dft <= 0 || rate <= 0)
    return ctx.error("num_mel_bins {}, dft_length {} and sample_rate {} must be positive", bins, dft, rate);
  const int64_t spec = dft / 2 + 1;
  const double lo = hz_to_mel(lower), hi = hz_to_mel(upper);
  // The spacing divides by the number of points (bins + 2), as the ONNX reference does.
  const double step = (hi - lo) / static_cast<double>(bins + 2);
  std::vector<int64_t> point(static_cast<size_t>(bins + 2));
  for (int64_t i = 0; i < bins + 2; ++i)
    point[i] = static_cast<int64_t>(std::floor(static_cast<double>(dft + 1) * mel_to_hz(i * step + lo) /
                                               static_cast<double>(rate)));
  std::vector<double> w(static_cast<size_t>(spec * bins), 0.0);
  // Points past the last DFT bin (upper edge above Nyquist) have no bin to weight.
  auto set = [&](int64_t j, int64_t i, double v) {
    if (j >= 0 && j < spec) w[j * bins + i] = v;
  };
  for (int64_t i = 0; i < bins; ++i) {
    const int64_t left = point[i], center = point[i + 1], right = point[i + 2];
    if (center == left) {
      set(center, i, 1.0);
    } else {
      for (int64_t j = left; j <= center; ++j)
        set(j, i, static_cast<double>(j - left) / static_cast<double>(center - left));
    }
    for (int64_t j = center; j < right; ++j)
      set(j, i, static_cast<double>(right - j) / static_cast<double>(right - center));
  }
  Tensor& y = ctx.output(0);
  bool ok = dispatch_all(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (size_t k = 0; k < w.size(); ++k) y.data<T>()[k] = static_cast<T>(w[k]);
  });
  return ok ? Status() : ctx.unsupported("output dtype {} is not supported", dtype_name(y.dtype()));
}

}  // namespace

void register_cpu_mel_weight_matrix(KernelTable& t) { t.add({"MelWeightMatrix", run_mel_weight_matrix}); }

}  // namespace kiln::cpu
