// DFT and STFT by the plain O(n^2) sum in double: y[k] = sum_n x[n] e^(∓2πi kn/L), scaled by 1/L when
// inverse. Shape inference has already validated the axis, lengths and the real/complex last dim.
#include <cmath>
#include <complex>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

using Complex = std::complex<double>;

// The twiddles e^(∓2πi m/L) for one length, so each term reads an exact table entry instead of a cos/sin of a
// growing angle.
class DftPlan {
 public:
  DftPlan(int64_t length, bool inverse) : length_(length), inverse_(inverse), twiddle_(length) {
    const double sign = inverse ? 1.0 : -1.0;
    for (int64_t m = 0; m < length; ++m)
      twiddle_[m] = std::polar(1.0, sign * 2.0 * M_PI * static_cast<double>(m) / static_cast<double>(length));
  }

  // x holds `length` samples; writes the first `bins` coefficients to y.
  void run(const Complex* x, int64_t bins, Complex* y) const {
    for (int64_t k = 0; k < bins; ++k) {
      Complex acc = 0.0;
      for (int64_t n = 0; n < length_; ++n) acc += x[n] * twiddle_[(k * n) % length_];
      y[k] = inverse_ ? acc / static_cast<double>(length_) : acc;
    }
  }

 private:
  int64_t length_;
  bool inverse_;
  std::vector<Complex> twiddle_;
};

int64_t product(const std::vector<int64_t>& dims, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= dims[i];
  return p;
}

Status run_dft(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const auto& dims = x.dims();
  const int64_t r = static_cast<int64_t>(dims.size());
  const int64_t parts = dims.back();  // 1: real, 2: complex
  const bool inverse = ctx.node().attr_int("inverse", 0) != 0;
  int64_t axis = ctx.opset() >= 20 ? -2 : ctx.node().attr_int("axis", 1);
  if (ctx.opset() >= 20 && ctx.has_input(2)) {
    KILN_ASSIGN_OR_RETURN(axis, ctx.scalar_int(2));
  }
  if (axis < 0) axis += r;
  const int64_t n = dims[axis];
  int64_t length = n;
  if (ctx.has_input(1)) {
    KILN_ASSIGN_OR_RETURN(length, ctx.scalar_int(1));
  }
  Tensor& y = ctx.output(0);
  const int64_t bins = y.dims()[axis];
  const int64_t outer = product(dims, 0, axis), inner = product(dims, axis + 1, r - 1);
  const DftPlan plan(length, inverse);
  bool ok = dispatch_float(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    std::vector<Complex> signal(length), spectrum(bins);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < inner; ++j) {
        // Truncated to, or zero-padded up to, dft_length.
        for (int64_t i = 0; i < length; ++i) {
          if (i >= n) {
            signal[i] = 0.0;
            continue;
          }
          const T* v = px + ((o * n + i) * inner + j) * parts;
          signal[i] = Complex(v[0], parts == 2 ? static_cast<double>(v[1]) : 0.0);
        }
        plan.run(signal.data(), bins, spectrum.data());
        for (int64_t k = 0; k < bins; ++k) {
          T* out = py + ((o * bins + k) * inner + j) * 2;
          out[0] = static_cast<T>(spectrum[k].real());
          out[1] = static_cast<T>(spectrum[k].imag());
        }
      }
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

Status run_stft(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const int64_t batch = x.dim(0), n = x.dim(1), parts = x.dim(2);
  KILN_ASSIGN_OR_RETURN(const int64_t step, ctx.scalar_int(1));
  const Tensor* window = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  int64_t frame = window ? window->dim(0) : n;
  if (ctx.has_input(3)) {
    KILN_ASSIGN_OR_RETURN(frame, ctx.scalar_int(3));
  }
  Tensor& y = ctx.output(0);
  const int64_t frames = y.dim(1), bins = y.dim(2);
  const DftPlan plan(frame, false);
  bool ok = dispatch_float(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    const T* pw = window ? window->data<T>() : nullptr;
    T* py = y.data<T>();
    std::vector<Complex> signal(frame), spectrum(bins);
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t f = 0; f < frames; ++f) {
        for (int64_t i = 0; i < frame; ++i) {
          const T* v = px + (b * n + f * step + i) * parts;
          const double w = pw ? static_cast<double>(pw[i]) : 1.0;
          signal[i] = w * Complex(v[0], parts == 2 ? static_cast<double>(v[1]) : 0.0);
        }
        plan.run(signal.data(), bins, spectrum.data());
        for (int64_t k = 0; k < bins; ++k) {
          T* out = py + ((b * frames + f) * bins + k) * 2;
          out[0] = static_cast<T>(spectrum[k].real());
          out[1] = static_cast<T>(spectrum[k].imag());
        }
      }
    }
  });
  return ok ? Status() : ctx.unsupported("dtype {} is not supported", dtype_name(x.dtype()));
}

}  // namespace

void register_cpu_dft(KernelTable& t) {
  t.add({"DFT", run_dft});
  t.add({"STFT", run_stft});
}

}  // namespace kiln::cpu
