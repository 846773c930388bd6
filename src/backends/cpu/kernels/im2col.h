// N-D im2col / col2im for Conv and ConvTranspose: they turn a convolution into one GEMM per (batch, group).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "backends/cpu/dispatch.h"
#include "ops/conv_pool_attrs.h"

namespace kiln::cpu {

// Geometry of one convolution: input and output spatial sizes plus the resolved window.
struct ConvGeometry {
  std::vector<int64_t> in, out;  // spatial dims
  ops::Window win;
  int64_t in_size() const { return num_elements(in); }
  int64_t out_size() const { return num_elements(out); }
  int64_t kernel_size() const { return num_elements(win.kernel); }
};

// Visits every (kernel offset, output row) pair of one channel: fn(kernel_flat, out_row_flat, in_offset, ok)
// where ok tells whether every non-last input coordinate is inside the input; the last axis is left to fn.
// `out`/`in` are the sizes of the side that is strided (the conv output) and the side that is indexed.
template <class Fn>
void for_each_window_row(const std::vector<int64_t>& in, const std::vector<int64_t>& out, const ops::Window& w,
                         Fn&& fn) {
  const size_t n = in.size();
  const auto in_strides = strides_of(in);
  std::vector<int64_t> kidx(n, 0);
  std::vector<int64_t> outer(out.begin(), out.end() - 1);
  const int64_t n_outer = num_elements(outer);
  const int64_t ksize = num_elements(w.kernel);
  for (int64_t kf = 0; kf < ksize; ++kf) {
    std::vector<int64_t> oidx(n - 1, 0);
    for (int64_t o = 0; o < n_outer; ++o) {
      int64_t off = 0;
      bool ok = true;
      for (size_t d = 0; d + 1 < n; ++d) {
        const int64_t pos = oidx[d] * w.strides[d] - w.pad_begin[d] + kidx[d] * w.dilations[d];
        if (pos < 0 || pos >= in[d]) ok = false;
        off += pos * in_strides[d];
      }
      fn(kf, o, off, ok, kidx[n - 1]);
      ops::next_index(oidx, outer);
    }
    ops::next_index(kidx, w.kernel);
  }
}

// col[(c * K + kf) * out_size + o] = x[c, input position of (o, kf)] or 0 in the padding.
template <class T>
void im2col(const T* x, int64_t channels, const ConvGeometry& g, T* col) {
  const size_t n = g.in.size();
  const int64_t in_size = g.in_size(), out_size = g.out_size(), ksize = g.kernel_size();
  const int64_t ow = g.out[n - 1], iw = g.in[n - 1];
  const int64_t s = g.win.strides[n - 1], p = g.win.pad_begin[n - 1], dl = g.win.dilations[n - 1];
  for (int64_t c = 0; c < channels; ++c) {
    const T* xc = x + c * in_size;
    T* colc = col + c * ksize * out_size;
    for_each_window_row(g.in, g.out, g.win, [&](int64_t kf, int64_t o, int64_t off, bool ok, int64_t kl) {
      T* row = colc + kf * out_size + o * ow;
      if (!ok) {
        std::fill(row, row + ow, T(0));
        return;
      }
      const T* src = xc + off;
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t pos = j * s - p + kl * dl;
        row[j] = pos >= 0 && pos < iw ? src[pos] : T(0);
      }
    });
  }
}

// The adjoint of im2col: y[c, position of (o, kf)] += col[(c * K + kf) * out_size + o]. Here the "output" of
// the window is the ConvTranspose input and `in` its (larger) output.
template <class T>
void col2im(const T* col, int64_t channels, const ConvGeometry& g, T* y) {
  const size_t n = g.in.size();
  const int64_t in_size = g.in_size(), out_size = g.out_size(), ksize = g.kernel_size();
  const int64_t ow = g.out[n - 1], iw = g.in[n - 1];
  const int64_t s = g.win.strides[n - 1], p = g.win.pad_begin[n - 1], dl = g.win.dilations[n - 1];
  for (int64_t c = 0; c < channels; ++c) {
    T* yc = y + c * in_size;
    const T* colc = col + c * ksize * out_size;
    for_each_window_row(g.in, g.out, g.win, [&](int64_t kf, int64_t o, int64_t off, bool ok, int64_t kl) {
      if (!ok) return;
      const T* row = colc + kf * out_size + o * ow;
      T* dst = yc + off;
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t pos = j * s - p + kl * dl;
        if (pos >= 0 && pos < iw) dst[pos] += row[j];
      }
    });
  }
}

}  // namespace kiln::cpu
