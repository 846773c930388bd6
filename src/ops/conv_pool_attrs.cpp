#include "ops/conv_pool_attrs.h"

#include "util/error.h"

namespace kiln::ops {

Result<Window> read_window(const ir::Node& node, size_t spatial, const std::vector<int64_t>& weight_kernel) {
  Window w;
  const size_t n = spatial;
  w.kernel = node.attr_ints("kernel_shape");
  if (w.kernel.empty()) {
    if (weight_kernel.empty()) return invalid_model("{}: attribute 'kernel_shape' is required", node.label());
    w.kernel = weight_kernel;
  } else if (!weight_kernel.empty() && w.kernel != weight_kernel) {
    return invalid_model("{}: kernel_shape {} does not match the weight's spatial dims {}", node.label(),
                         dims_to_string(w.kernel), dims_to_string(weight_kernel));
  }
  if (w.kernel.size() != n)
    return invalid_model("{}: kernel_shape {} has {} dims but the input has {} spatial dims", node.label(),
                         dims_to_string(w.kernel), w.kernel.size(), n);
  w.strides = node.attr_ints("strides", std::vector<int64_t>(n, 1));
  w.dilations = node.attr_ints("dilations", std::vector<int64_t>(n, 1));
  std::vector<int64_t> pads = node.attr_ints("pads", std::vector<int64_t>(2 * n, 0));
  if (w.strides.size() != n)
    return invalid_model("{}: strides {} must have {} values", node.label(), dims_to_string(w.strides), n);
  if (w.dilations.size() != n)
    return invalid_model("{}: dilations {} must have {} values", node.label(), dims_to_string(w.dilations), n);
  if (pads.size() != 2 * n)
    return invalid_model("{}: pads {} must have {} values (begin and end per spatial axis)", node.label(),
                         dims_to_string(pads), 2 * n);
  for (size_t i = 0; i < n; ++i) {
    if (w.kernel[i] <= 0)
      return invalid_model("{}: kernel_shape {} must be positive", node.label(), dims_to_string(w.kernel));
    if (w.strides[i] <= 0)
      return invalid_model("{}: strides {} must be positive", node.label(), dims_to_string(w.strides));
    if (w.dilations[i] <= 0)
      return invalid_model("{}: dilations {} must be positive", node.label(), dims_to_string(w.dilations));
    if (pads[i] < 0 || pads[n + i] < 0)
      return invalid_model("{}: pads {} must not be negative", node.label(), dims_to_string(pads));
    // Bounded so the window arithmetic below ((kernel-1)*dilation, in+pads, stride*(in-1)) cannot overflow int64
    // for any input dim that fits in memory; no real window comes near 2^31.
    // A kernel may be far larger than its input (a fuzzed 2^40 window is valid ONNX); only its dilated extent
    // must stay below 2^62.
    for (const auto& [what, v] : {std::pair{"strides", w.strides[i]}, std::pair{"dilations", w.dilations[i]},
                                  std::pair{"pads", pads[i]}, std::pair{"pads", pads[n + i]}})
      if (v > kMaxWindowAttr)
        return invalid_model("{}: {} value {} is too large (kiln accepts up to {})", node.label(), what, v,
                             kMaxWindowAttr);
    const __int128 extent = static_cast<__int128>(w.kernel[i] - 1) * w.dilations[i] + 1;
    if (extent > (int64_t{1} << 62))
      return invalid_model("{}: kernel_shape {} with dilations {} spans {} positions, past 2^62", node.label(),
                           dims_to_string(w.kernel), dims_to_string(w.dilations), static_cast<int64_t>(
                               extent > INT64_MAX ? INT64_MAX : extent));
  }
  w.pad_begin.assign(pads.begin(), pads.begin() + n);
  w.pad_end.assign(pads.begin() + n, pads.end());
  w.auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (w.auto_pad.empty()) w.auto_pad = "NOTSET";
  if (w.auto_pad != "NOTSET" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER" && w.auto_pad != "VALID")
    return unsupported("{}: auto_pad '{}' is not supported", node.label(), w.auto_pad);
  if (w.auto_pad == "VALID") {
    w.pad_begin.assign(n, 0);
    w.pad_end.assign(n, 0);
  }
  w.ceil_mode = node.attr_int("ceil_mode", 0) != 0;
  return w;
}

int64_t window_output_size(Window& w, size_t i, int64_t in) {
  const int64_t k = w.effective_kernel(i), s = w.strides[i];
  if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") {
    const int64_t out = in / s + (in % s != 0);  // ceil without in + s - 1, which can wrap
    // (out - 1) * s < in, but adding a kernel of up to 2^62 to it may leave int64.
    const __int128 total128 = std::max<__int128>(0, static_cast<__int128>(out - 1) * s + k - in);
    if (total128 > INT64_MAX) return -1;
    const int64_t total = static_cast<int64_t>(total128);
    const int64_t small = total / 2, big = total - small;
    w.pad_begin[i] = w.auto_pad == "SAME_UPPER" ? small : big;
    w.pad_end[i] = w.auto_pad == "SAME_UPPER" ? big : small;
    return out;
  }
  // In 128 bits: a dim near INT64_MAX plus pads must not wrap into a small, plausible size.
  const __int128 span128 = static_cast<__int128>(in) + w.pad_begin[i] + w.pad_end[i] - k;
  if (span128 < 0 || span128 > INT64_MAX - s) return -1;
  const int64_t span = static_cast<int64_t>(span128);
  if (!w.ceil_mode) return span / s + 1;
  int64_t out = (span + s - 1) / s + 1;
  // A last window that would start inside the end padding is dropped.
  if ((out - 1) * s >= in + w.pad_begin[i]) --out;
  return out;
}

int64_t transpose_output_size(Window& w, size_t i, int64_t in, int64_t output_padding, int64_t output_shape) {
  const __int128 full128 = static_cast<__int128>(w.strides[i]) * (in - 1) + output_padding + w.effective_kernel(i);
  if (full128 > INT64_MAX || full128 < INT64_MIN / 2) return -1;
  const int64_t full = static_cast<int64_t>(full128);
  const bool same = w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER";
  if (output_shape < 0 && !same) return full - w.pad_begin[i] - w.pad_end[i];
  const __int128 out128 = output_shape >= 0 ? output_shape : static_cast<__int128>(in) * w.strides[i];
  if (out128 > INT64_MAX) return -1;
  const int64_t out = static_cast<int64_t>(out128);
  const int64_t total = full - out;
  // Floor division: a negative total (output_shape past the full size) pads the end, as the ONNX tests expect.
  const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
  w.pad_begin[i] = w.auto_pad == "SAME_UPPER" ? half : total - half;
  w.pad_end[i] = total - w.pad_begin[i];
  return out;
}

Dim window_output_dim(Window w, size_t i, const Dim& in) {
  if (in.is_static()) {
    int64_t out = window_output_size(w, i, in.value());
    return out < 0 ? Dim::unknown() : Dim(out);
  }
  if (w.strides[i] != 1) return Dim::unknown();
  if (w.auto_pad == "SAME_UPPER" || w.auto_pad == "SAME_LOWER") return in;
  if (w.pad_begin[i] + w.pad_end[i] == w.effective_kernel(i) - 1) return in;  // e.g. 3x3 with pads 1
  return Dim::unknown();
}

}  // namespace kiln::ops
