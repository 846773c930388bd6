// Checks of constant values: INT64 tensors outside int32's range, and (with --fp16) float constants f16
// cannot hold.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "lint/lint_context.h"
#include "onnx/tensor_proto.h"
#include "util/safe_text.h"

namespace kiln::lint {

namespace {

using S = LintSeverity;

constexpr double kF16Max = 65504.0;

struct Constant {
  std::string name;  // initializer name, or the Constant node's output
  std::string node;  // the Constant node, "" for an initializer
  const kiln_onnx::TensorProto* proto;
};

// The nodes that read each value (in any graph), with their op, for findings that name where a value is used.
std::map<std::string, std::vector<std::pair<std::string, std::string>>> readers_of(
    const kiln_onnx::GraphProto& root) {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> out;
  for_each_graph(root, [&](const kiln_onnx::GraphProto& g, int) {
    for (int i = 0; i < g.node_size(); ++i)
      for (const auto& in : g.node(i).input())
        if (!in.empty()) out[in].push_back({node_name(g.node(i), i), op_label(g.node(i))});
  });
  return out;
}

std::vector<Constant> constants_of(const kiln_onnx::GraphProto& root) {
  std::vector<Constant> out;
  for_each_graph(root, [&](const kiln_onnx::GraphProto& g, int) {
    for (const auto& t : g.initializer()) out.push_back({t.name(), "", &t});
    for (int i = 0; i < g.node_size(); ++i) {
      const auto& n = g.node(i);
      if (n.op_type() != "Constant" || n.output_size() < 1) continue;
      for (const auto& a : n.attribute())
        if (a.name() == "value" && a.has_t()) out.push_back({n.output(0), node_name(n, i), &a.t()});
    }
  });
  return out;
}

const std::vector<std::pair<std::string, std::string>>& reader_list(
    const std::map<std::string, std::vector<std::pair<std::string, std::string>>>& readers,
    const std::string& v) {
  static const std::vector<std::pair<std::string, std::string>> kNone;
  auto it = readers.find(v);
  return it != readers.end() ? it->second : kNone;
}

// INT64_MAX and INT64_MIN (+1) mean "to the end" in Slice starts/ends and similar: clamped, never used as is.
bool is_sentinel(int64_t v) {
  return v == std::numeric_limits<int64_t>::max() || v <= std::numeric_limits<int64_t>::min() + 1;
}

void check_int64(LintContext& ctx, const Constant& c, const Tensor& t) {
  const auto* p = t.data<int64_t>();
  const int64_t n = t.numel();
  int64_t count = 0, lo = 0, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t v = p[i];
    if (v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max()) continue;
    if (is_sentinel(v)) continue;
    if (count == 0 || v < lo) lo = v;
    if (count == 0 || v > hi) hi = v;
    ++count;
  }
  if (count == 0) return;
  ctx.add(S::kInfo, "int64-range", c.node, c.node.empty() ? "" : "Constant", c.name,
          fmt::format("INT64 {} '{}' {} holds {} value(s) outside int32's range (from {} to {})",
                      c.node.empty() ? "initializer" : "constant", printable(c.name),
                      dims_to_string(t.dims()), count, lo, hi),
          "nothing to do for kiln: its kernels, GPU ones included, compute INT64 tensors in 64 bits. "
          "Runtimes that "
          "narrow INT64 weights to INT32 (TensorRT does) would clamp these values and change the results, so "
          "keep "
          "them in range if the model must run there too");
}

// Values of a float constant beyond f16's range; `at(i)` reads element i as double.
template <class At>
void check_f16(LintContext& ctx, const Constant& c,
               const std::vector<std::pair<std::string, std::string>>& readers,
               const std::vector<int64_t>& dims, int64_t n, At at) {
  int64_t count = 0, positive = 0;
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = at(i);
    if (!std::isfinite(v) || std::fabs(v) <= kF16Max) continue;
    ++count;
    positive += v > 0;
    if (std::fabs(v) > std::fabs(worst)) worst = v;
  }
  if (count == 0) return;
  const std::string what = fmt::format(
      "{} '{}' {} holds {} value(s) beyond f16's range (±65504; largest {:g})",
      c.node.empty() ? "initializer" : "constant", printable(c.name), dims_to_string(dims), count, worst);
  std::vector<std::string> names;
  for (const auto& r : readers) names.push_back(r.first);
  const std::string node = readers.empty() ? c.node : readers.front().first;
  const std::string op = readers.empty() ? (c.node.empty() ? "" : "Constant") : readers.front().second;
  const std::string layers = names.empty() ? "NODE" : fmt::format("{}", fmt::join(names, ","));
  // Additive attention masks fill with a huge negative number (torch's finfo(float32).min): saturated to
  // -65504 they still mask, since softmax of -65504 + x is 0 in f16 as well.
  LintFinding* f;
  if (positive == 0)
    f = &ctx.add(
        S::kInfo, "f16-range", node, op, c.name,
        what +
            "; all are negative, like an additive attention mask's fill value. With --fp16 kiln "
            "saturates them to -65504, which still masks",
        "nothing to do if it is a mask; otherwise keep the nodes that read it in f32: kiln build --fp16 "
        "--fp32-layers " +
            layers);
  else
    f = &ctx.add(
        S::kWarning, "f16-range", node, op, c.name,
        what +
            ". With --fp16 kiln stores the constant in f16 for the nodes that compute in f16, saturated "
            "to ±65504, which changes what it means",
        "rescale it (and what it multiplies) into f16's range, or keep the nodes that read it in f32: kiln "
        "build --fp16 --fp32-layers " +
            layers);
  if (names.size() > 1) f->others.assign(names.begin() + 1, names.end());
}

}  // namespace

void check_values(LintContext& ctx) {
  int64_t external_not_read = 0;
  const auto readers = ctx.options.fp16
                           ? readers_of(ctx.model.graph())
                           : std::map<std::string, std::vector<std::pair<std::string, std::string>>>{};
  for (const auto& c : constants_of(ctx.model.graph())) {
    const int32_t type = c.proto->data_type();
    const bool int64 = type == static_cast<int32_t>(DType::kI64);
    const bool wide_float =
        type == static_cast<int32_t>(DType::kF32) || type == static_cast<int32_t>(DType::kF64);
    if (!int64 && !(ctx.options.fp16 && wide_float)) continue;
    const bool f32 = type == static_cast<int32_t>(DType::kF32);
    const std::vector<int64_t> dims(c.proto->dims().begin(), c.proto->dims().end());
    const size_t esize = f32 ? 4 : 8;
    // Weights stored inline are scanned where they are, without a copy of a large model's bytes.
    if (wide_float && c.proto->has_raw_data() &&
        c.proto->data_location() != kiln_onnx::TensorProto::EXTERNAL) {
      const std::string& raw = c.proto->raw_data();
      const int64_t n = static_cast<int64_t>(raw.size() / esize);
      check_f16(ctx, c, reader_list(readers, c.name), dims, n, [&](int64_t i) {
        if (f32) {
          float v;
          std::memcpy(&v, raw.data() + i * 4, 4);
          return static_cast<double>(v);
        }
        double v;
        std::memcpy(&v, raw.data() + i * 8, 8);
        return v;
      });
      continue;
    }
    // External weights can be tens of GB: lint checks their size (lint_graph.cpp), it does not read them.
    if (wide_float && c.proto->data_location() == kiln_onnx::TensorProto::EXTERNAL) {
      ++external_not_read;
      continue;
    }
    // Unreadable data (a missing external file) is the importer's finding, not this check's.
    auto t = onnx::tensor_from_proto(*c.proto, ctx.base_dir, "initializer '" + printable(c.name) + "'");
    if (!t.ok() || !t->defined()) continue;
    if (int64) {
      check_int64(ctx, c, *t);
    } else {
      const Tensor& v = *t;
      check_f16(ctx, c, reader_list(readers, c.name), dims, v.numel(), [&](int64_t i) {
        return f32 ? static_cast<double>(v.data<float>()[i]) : v.data<double>()[i];
      });
    }
  }
  if (external_not_read > 0)
    ctx.skip(
        fmt::format("f16-range: {} float initializer(s) kept in external data files were not scanned (lint "
                    "does not read external weights)",
                    external_not_read));
}

}  // namespace kiln::lint
