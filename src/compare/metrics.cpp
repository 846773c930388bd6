// Error metrics of one engine tensor against its reference.
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "kiln/compare.h"

namespace kiln::compare {

Tolerance default_tolerance(const std::string& precision) {
  // Chosen so that correct engines pass with room to spare, measured against the CPU reference at batch 1..8
  // on an H200 (bench/results/toolkit.md): an f32 engine's cuDNN/cuBLAS summation order puts ResNet-50's logits
  // up to 3.7e-5 and GPT-2's 1.3e-5 from the reference, and f16 puts ResNet-50's up to 0.037. Reduced
  // precisions by their mantissa: 10 bits (f16, and TF32's matrix inputs with f32 accumulation), 8 (bf16).
  if (precision == "f16") return {5e-2, 1e-2, 0};
  if (precision == "bf16") return {1e-1, 5e-2, 0};
  if (precision == "tf32") return {1e-2, 1e-2, 0};
  return {1e-4, 1e-3, 0};
}

std::string describe_rule(const Tolerance& t) {
  std::string s = fmt::format("|engine - ref| <= {:g} + {:g} * |ref| for every element", t.atol, t.rtol);
  if (t.min_cosine > 0) s += fmt::format(", and cosine similarity >= {:g}", t.min_cosine);
  return s;
}

namespace {

std::vector<int64_t> unflatten(int64_t flat, const std::vector<int64_t>& dims) {
  std::vector<int64_t> idx(dims.size(), 0);
  for (size_t d = dims.size(); d-- > 0;) {
    if (dims[d] == 0) break;
    idx[d] = flat % dims[d];
    flat /= dims[d];
  }
  return idx;
}

// Equal non-finite values (NaN and NaN, +Inf and +Inf) agree; any other pair with a non-finite side does not.
bool nonfinite_agree(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  return std::isinf(a) && std::isinf(b) && std::signbit(a) == std::signbit(b);
}

}  // namespace

TensorComparison compare_tensors(const std::string& name, const Tensor& engine, const Tensor& reference,
                                 const Tolerance& tol) {
  TensorComparison c;
  c.name = name;
  c.dims = engine.dims();
  c.ref_dims = reference.dims();
  if (engine.dims() != reference.dims()) {
    c.error = fmt::format("shape differs: engine {} vs reference {}", dims_to_string(engine.dims()),
                          dims_to_string(reference.dims()));
    c.max_tolerance_ratio = std::numeric_limits<double>::infinity();
    c.pass = false;
    return c;
  }
  const int64_t n = engine.numel();
  c.elements = n;
  double sum_abs = 0, sum_rel = 0, dot = 0, norm_e = 0, norm_r = 0;
  int64_t finite = 0, rel_count = 0, worst = -1;
  double worst_excess = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    const double e = engine.get_as_double(i), r = reference.get_as_double(i);
    double excess;
    if (!std::isfinite(e) || !std::isfinite(r)) {
      if (nonfinite_agree(e, r)) continue;
      ++c.over_tolerance;
      if (!std::isfinite(e)) ++c.nonfinite;
      excess = std::numeric_limits<double>::infinity();
      c.max_tolerance_ratio = excess;
    } else {
      const double d = std::fabs(e - r);
      ++finite;
      sum_abs += d;
      c.max_abs = std::max(c.max_abs, d);
      if (r != 0) {
        const double rel = d / std::fabs(r);
        sum_rel += rel;
        ++rel_count;
        c.max_rel = std::max(c.max_rel, rel);
      }
      dot += e * r;
      norm_e += e * e;
      norm_r += r * r;
      const double allowed = tol.atol + tol.rtol * std::fabs(r);
      excess = d - allowed;
      if (excess > 0) ++c.over_tolerance;
      const double ratio = allowed > 0 ? d / allowed : (d > 0 ? std::numeric_limits<double>::infinity() : 0.0);
      c.max_tolerance_ratio = std::max(c.max_tolerance_ratio, ratio);
    }
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  c.mean_abs = finite ? sum_abs / static_cast<double>(finite) : 0;
  c.mean_rel = rel_count ? sum_rel / static_cast<double>(rel_count) : 0;
  // Two zero vectors are the same direction; one zero vector against another is none.
  if (norm_e == 0 && norm_r == 0) c.cosine = 1;
  else if (norm_e == 0 || norm_r == 0) c.cosine = 0;
  else c.cosine = dot / (std::sqrt(norm_e) * std::sqrt(norm_r));
  if (worst >= 0) {
    c.worst_index = unflatten(worst, c.dims);
    c.worst_value = engine.get_as_double(worst);
    c.worst_reference = reference.get_as_double(worst);
  }
  c.pass = c.over_tolerance == 0 && (tol.min_cosine <= 0 || c.cosine >= tol.min_cosine);
  return c;
}

}  // namespace kiln::compare
