#include "runtime/tactic_map.h"

#include <fmt/format.h>

#include <array>
#include <optional>
#include <sstream>

namespace kiln {

namespace {

std::optional<std::vector<int64_t>> parse_ints(const std::string& s) {
  std::vector<int64_t> v;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      v.push_back(std::stoll(item, &used));
      if (used != item.size()) return std::nullopt;
    } catch (...) {
      return std::nullopt;
    }
  }
  return v;
}

std::string dtype_text(int64_t t) { return std::string(dtype_name(static_cast<DType>(t))); }

std::string joined(const std::vector<int64_t>& v, size_t from, size_t n) {
  std::string s;
  for (size_t i = from; i < from + n; ++i) s += (i > from ? "x" : "") + std::to_string(v[i]);
  return s;
}

// The fields FusedConv's key is made of (fused_conv_typed: device ordinal left out).
struct ConvKey {
  int64_t dtype, layout, act, bias, z, tf32, aligned, in_place, n, c, m, group;
  size_t rank;
  std::vector<int64_t> rest;  // in, k, stride, dil, pad_begin, pad_end; `rank` each
  std::vector<int64_t> part(size_t i) const { return {rest.begin() + i * rank, rest.begin() + (i + 1) * rank}; }
};

std::optional<ConvKey> parse_conv_key(const std::vector<int64_t>& v) {
  if (v.size() < 12 || (v.size() - 12) % 6 != 0) return std::nullopt;
  return ConvKey{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11],
                 (v.size() - 12) / 6, {v.begin() + 12, v.end()}};
}

std::string conv_choice(const std::string& value) {
  static constexpr std::array<const char*, 8> kAlgos = {
      "implicit_gemm", "implicit_precomp_gemm", "gemm", "direct", "fft", "fft_tiling", "winograd", "winograd_nonfused"};
  int path = -1, algo = -1, math = -1;
  unsigned long long ws = 0;
  if (std::sscanf(value.c_str(), "%d %d %d %llu", &path, &algo, &math, &ws) != 4) return value;
  const char* m = math == 1 || math == 2 ? "tensor_op" : "fma";
  const std::string a = algo >= 0 && algo < static_cast<int>(kAlgos.size()) ? kAlgos[algo] : std::to_string(algo);
  switch (path) {
    case 0: return fmt::format("cudnn conv_bias_act {} {} ws={}", a, m, ws);
    case 1: return fmt::format("cudnn conv+epilogue {} {} ws={}", a, m, ws);
    case 2: return "direct";
    case 3: return fmt::format("cudnn graph cfg {} ws={}", algo, ws);
    case 4: return "kiln depthwise nhwc";
    default: return value;
  }
}

// Whether a FusedConv node's static geometry is the key's.
bool conv_matches(const ir::Graph& g, const ir::Node& n, const ConvKey& k) {
  if (n.op_type != "FusedConv" || n.inputs.size() < 2) return false;
  auto w = g.initializers.find(n.inputs[1]);
  if (w == g.initializers.end() || w->second.dims().size() != k.rank + 2) return false;
  const std::vector<int64_t>& wd = w->second.dims();
  const bool nhwc = n.attr_string("layout", "NCHW") == "NHWC";
  if (k.layout != (nhwc ? 1 : 0)) return false;
  const std::vector<int64_t> kernel = nhwc ? std::vector<int64_t>(wd.begin() + 1, wd.end() - 1)
                                           : std::vector<int64_t>(wd.begin() + 2, wd.end());
  const int64_t c_per_group = nhwc ? wd.back() : wd[1];
  const int64_t group = n.attr_int("group", 1);
  if (wd[0] != k.m || group != k.group || c_per_group * group != k.c || kernel != k.part(1)) return false;
  const std::vector<int64_t> ones(k.rank, 1);
  if (n.attr_ints("strides", ones) != k.part(2) || n.attr_ints("dilations", ones) != k.part(3)) return false;
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    std::vector<int64_t> pads = n.attr_ints("pads", std::vector<int64_t>(2 * k.rank, 0));
    std::vector<int64_t> both = k.part(4);
    const std::vector<int64_t> end = k.part(5);
    both.insert(both.end(), end.begin(), end.end());
    if (pads != both) return false;
  }
  const bool has_bias = n.inputs.size() > 2 && !n.inputs[2].empty();
  const bool has_z = n.inputs.size() > 3 && !n.inputs[3].empty();
  if (has_bias != (k.bias != 0) || has_z != (k.z != 0)) return false;
  // Where X's dims are static they must be the key's; symbolic ones (batch) match any.
  if (const ir::ValueInfo* x = g.value(n.inputs[0]); x && x->shape.rank() == k.rank + 2) {
    const auto& d = x->shape.dims();
    const std::vector<int64_t> in = k.part(0);
    if (d[0].is_static() && d[0].value() != k.n) return false;
    for (size_t i = 0; i < k.rank; ++i) {
      const Dim& di = d[nhwc ? 1 + i : 2 + i];
      if (di.is_static() && di.value() != in[i]) return false;
    }
  }
  const ir::ValueInfo* y = g.value(n.outputs[0]);
  return !y || y->dtype == static_cast<DType>(k.dtype);
}

// A GEMM node's K and N when its weight is constant (FusedMatMul, MatMul, Gemm without transA).
std::optional<std::pair<int64_t, int64_t>> gemm_kn(const ir::Graph& g, const ir::Node& n) {
  if (n.op_type != "FusedMatMul" && n.op_type != "MatMul" && n.op_type != "Gemm") return std::nullopt;
  if (n.inputs.size() < 2) return std::nullopt;
  auto w = g.initializers.find(n.inputs[1]);
  if (w == g.initializers.end() || w->second.dims().size() != 2) return std::nullopt;
  const auto& d = w->second.dims();
  const bool trans = n.attr_int(n.op_type == "Gemm" ? "transB" : "trans_b", 0) != 0;
  return std::make_pair(trans ? d[1] : d[0], trans ? d[0] : d[1]);
}

void decode(const ir::Graph& g, DecodedTactic& t) {
  const size_t colon = t.key.find(':');
  if (colon == std::string::npos) return;
  const std::string kind = t.key.substr(0, colon);
  const std::string body = t.key.substr(colon + 1);
  if (kind == "attn") {
    t.kind = "attention";
    t.problem = body;  // dtype, head dim, vectorized, B, H, Sq, Sk, mask kind, causal
    t.choice = t.value == "1" ? "flash, 128 registers (4 blocks/SM)" : "flash";
    return;
  }
  const auto v = parse_ints(body);
  if (!v) return;
  if (kind == "FusedConv") {
    const auto k = parse_conv_key(*v);
    if (!k) return;
    t.kind = "conv";
    t.problem = fmt::format("{} {} n={} c={} m={} group={} in={} k={} stride={} dil={}", dtype_text(k->dtype),
                            k->layout ? "NHWC" : "NCHW", k->n, k->c, k->m, k->group, joined(k->rest, 0, k->rank),
                            joined(k->rest, k->rank, k->rank), joined(k->rest, 2 * k->rank, k->rank),
                            joined(k->rest, 3 * k->rank, k->rank));
    t.choice = conv_choice(t.value);
    for (const auto& n : g.nodes)
      if (conv_matches(g, n, *k)) t.layers.push_back(n.name);
  } else if ((kind == "cublasLt" || kind == "cublasLt-pad") && v->size() == 20) {
    // dtype, m, n, k, batch, strides a/b/c, lda, ldb, ldc, trans_a, trans_b, bias, tf32, act, aligns a/b/c/d
    const auto& f = *v;
    t.kind = kind == "cublasLt" ? "gemm" : "gemm-pad";
    t.problem = fmt::format("{} m={} n={} k={} batch={}{}{}", dtype_text(f[0]), f[1], f[2], f[3], f[4],
                            f[13] ? " +bias" : "", f[15] == 1 ? " relu" : f[15] == 2 ? " gelu" : "");
    if (kind == "cublasLt-pad") {
      t.choice = t.value;
    } else {
      unsigned act_fused = 0;
      unsigned long long ws = 0;
      char algo[160] = {};
      if (std::sscanf(t.value.c_str(), "%u %llu %159s", &act_fused, &ws, algo) == 3)
        t.choice = fmt::format("cublasLt algo {}… ws={}{}", std::string(algo).substr(0, 16), ws,
                               act_fused ? " epilogue fused" : "");
      else
        t.choice = t.value;
    }
    for (const auto& n : g.nodes)
      if (auto kn = gemm_kn(g, n); kn && kn->first == f[3] && kn->second == f[2] && f[4] == 1) t.layers.push_back(n.name);
  }
}

}  // namespace

TacticMap map_tactics(const ir::Graph& g, const std::map<std::string, std::string>& entries) {
  TacticMap m;
  for (const auto& [key, value] : entries) {
    DecodedTactic t{key, value, "", "", "", {}};
    decode(g, t);
    for (const auto& layer : t.layers) m.by_layer[layer].push_back(m.tactics.size());
    m.tactics.push_back(std::move(t));
  }
  return m;
}

}  // namespace kiln
