// The ONNX opset-23 Attention op on the CPU reference, against a naive loop written here from the spec: 4-D
// and 3-D inputs, head counts 1/2/3, grouped-query heads, odd sequence lengths (1, 3, 7), causal with Sq !=
// Sk and with a past KV cache (present outputs too), bool and additive masks broadcast, softcap, explicit
// scale, every qk_matmul_output_mode, fully masked rows, f16 and mixed Q/V dtypes; and inference errors that
// name the node and the shapes.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/executor.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Spec {
  int64_t b = 1, hq = 1, hkv = 1, sq = 1, skv = 1, past = 0, d = 4, dv = 4;
  bool three_d = false, causal = false, present = false;
  std::optional<float> scale;
  float softcap = 0;
  std::vector<int64_t> mask;  // dims; empty: none
  DType mask_dt = DType::kBool;
  int mode = -1;  // qk_matmul_output_mode; -1: no qk_matmul_output
  DType dt = DType::kF32, vdt = DType::kF32;
  int64_t opset = 23;
};

std::vector<std::string> sd(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (auto x : d) s.push_back(std::to_string(x));
  return s;
}

std::vector<int64_t> q_dims(const Spec& s) {
  return s.three_d ? std::vector<int64_t>{s.b, s.sq, s.hq * s.d} : std::vector<int64_t>{s.b, s.hq, s.sq, s.d};
}
std::vector<int64_t> kv_dims(const Spec& s, int64_t x) {
  return s.three_d ? std::vector<int64_t>{s.b, s.skv, s.hkv * x} : std::vector<int64_t>{s.b, s.hkv, s.skv, x};
}

ModelBuilder model(const Spec& s) {
  ModelBuilder m(s.opset);
  m.input("q", s.dt, sd(q_dims(s)))
      .input("k", s.dt, sd(kv_dims(s, s.d)))
      .input("v", s.vdt, sd(kv_dims(s, s.dv)));
  std::vector<std::string> ins = {"q", "k", "v", s.mask.empty() ? "" : "mask"};
  if (!s.mask.empty()) m.input("mask", s.mask_dt, sd(s.mask));
  if (s.past > 0) {
    m.input("past_key", s.dt, sd({s.b, s.hkv, s.past, s.d}))
        .input("past_value", s.vdt, sd({s.b, s.hkv, s.past, s.dv}));
    ins.push_back("past_key");
    ins.push_back("past_value");
  }
  while (ins.back().empty()) ins.pop_back();
  std::vector<std::string> outs = {"y", s.present ? "present_key" : "", s.present ? "present_value" : "",
                                   s.mode >= 0 ? "qk" : ""};
  while (outs.back().empty()) outs.pop_back();
  m.node("Attention", ins, outs, "att");
  if (s.three_d) m.attr("q_num_heads", s.hq).attr("kv_num_heads", s.hkv);
  if (s.causal) m.attr("is_causal", int64_t{1});
  if (s.scale) m.attr("scale", *s.scale);
  if (s.softcap != 0) m.attr("softcap", s.softcap);
  if (s.mode >= 0) m.attr("qk_matmul_output_mode", int64_t{s.mode});
  for (const auto& o : outs)
    if (!o.empty()) m.output(o);
  return m;
}

Tensor random_of(DType dt, const std::vector<int64_t>& dims, uint64_t seed) {
  Tensor f = testing::random_f32(dims, seed);
  return dt == DType::kF32 ? f : cpu::convert_tensor(f, dt);
}

std::map<std::string, Tensor> inputs(const Spec& s, uint64_t seed) {
  std::map<std::string, Tensor> in = {{"q", random_of(s.dt, q_dims(s), seed)},
                                      {"k", random_of(s.dt, kv_dims(s, s.d), seed + 1)},
                                      {"v", random_of(s.vdt, kv_dims(s, s.dv), seed + 2)}};
  if (s.past > 0) {
    in["past_key"] = random_of(s.dt, {s.b, s.hkv, s.past, s.d}, seed + 3);
    in["past_value"] = random_of(s.vdt, {s.b, s.hkv, s.past, s.dv}, seed + 4);
  }
  if (!s.mask.empty()) {
    Tensor r = testing::random_f32(s.mask, seed + 5);
    Tensor m(s.mask_dt, s.mask);
    for (int64_t i = 0; i < m.numel(); ++i) {
      const float x = r.data<float>()[i];
      if (s.mask_dt == DType::kBool)
        m.data<uint8_t>()[i] = x > -0.5f;
      else
        m.data<float>()[i] = x < -0.7f ? -std::numeric_limits<float>::infinity() : 2 * x;
    }
    in["mask"] = m;
  }
  return in;
}

Result<std::map<std::string, Tensor>> run(const ModelBuilder& m, const std::map<std::string, Tensor>& in) {
  auto g = onnx::import_model_bytes(m.bytes(), ".", "test");
  if (!g.ok()) return g.status();
  KILN_RETURN_IF_ERROR(passes::infer_shapes(*g));
  cpu::GraphExecutor ex(std::make_shared<const ir::Graph>(std::move(*g)));
  return ex.run(in);
}

// ---- The naive reference: the spec's steps one by one on full [B, H, S, X] arrays of doubles --------------

struct Arr4 {
  int64_t n0 = 0, n1 = 0, n2 = 0, n3 = 0;
  std::vector<double> v;
  Arr4(int64_t a, int64_t b, int64_t c, int64_t d) : n0(a), n1(b), n2(c), n3(d), v(a * b * c * d, 0.0) {}
  double& at(int64_t a, int64_t b, int64_t c, int64_t d) { return v[((a * n1 + b) * n2 + c) * n3 + d]; }
  double at(int64_t a, int64_t b, int64_t c, int64_t d) const { return v[((a * n1 + b) * n2 + c) * n3 + d]; }
};

// A Q/K/V input as [B, H, S, X]: 3-D [B, S, H*X] is split into heads and transposed.
Arr4 heads_first(const Tensor& t, bool three_d, int64_t heads) {
  if (!three_d) {
    Arr4 a(t.dim(0), t.dim(1), t.dim(2), t.dim(3));
    for (int64_t i = 0; i < t.numel(); ++i) a.v[i] = t.get_as_double(i);
    return a;
  }
  const int64_t x = t.dim(2) / heads;
  Arr4 a(t.dim(0), heads, t.dim(1), x);
  for (int64_t b = 0; b < t.dim(0); ++b)
    for (int64_t s = 0; s < t.dim(1); ++s)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t e = 0; e < x; ++e)
          a.at(b, h, s, e) = t.get_as_double((b * t.dim(1) + s) * t.dim(2) + h * x + e);
  return a;
}

// Concatenation on the sequence axis (the KV cache update).
Arr4 concat_seq(const Arr4* past, const Arr4& cur) {
  const int64_t p = past ? past->n2 : 0;
  Arr4 out(cur.n0, cur.n1, p + cur.n2, cur.n3);
  for (int64_t b = 0; b < out.n0; ++b)
    for (int64_t h = 0; h < out.n1; ++h)
      for (int64_t s = 0; s < out.n2; ++s)
        for (int64_t e = 0; e < out.n3; ++e)
          out.at(b, h, s, e) = s < p ? past->at(b, h, s, e) : cur.at(b, h, s - p, e);
  return out;
}

// Value of a mask broadcast (numpy rules, right-aligned) to [B, H, Sq, T] at (b, h, i, j), as a bias.
double mask_bias(const Tensor& m, int64_t b, int64_t h, int64_t i, int64_t j) {
  const int64_t idx4[4] = {b, h, i, j};
  int64_t flat = 0;
  const size_t r = m.rank();
  for (size_t a = 0; a < r; ++a) {
    const int64_t n = m.dim(a);
    flat = flat * n + (n == 1 ? 0 : idx4[4 - r + a]);
  }
  const double x = m.get_as_double(flat);
  return m.dtype() == DType::kBool ? (x != 0 ? 0.0 : -kInf) : x;
}

struct Expected {
  Tensor y, present_key, present_value, qk;
};

Expected naive(const Spec& s, const std::map<std::string, Tensor>& in) {
  Arr4 q = heads_first(in.at("q"), s.three_d, s.hq);
  Arr4 k = heads_first(in.at("k"), s.three_d, s.hkv);
  Arr4 v = heads_first(in.at("v"), s.three_d, s.hkv);
  std::optional<Arr4> pk, pv;
  if (s.past > 0) {
    pk = heads_first(in.at("past_key"), false, s.hkv);
    pv = heads_first(in.at("past_value"), false, s.hkv);
  }
  Arr4 kt = concat_seq(pk ? &*pk : nullptr, k), vt = concat_seq(pv ? &*pv : nullptr, v);
  const int64_t T = kt.n2;
  const double scale = s.scale ? *s.scale : 1.0 / std::sqrt(static_cast<double>(s.d));
  const int64_t group = s.hq / s.hkv;
  Arr4 y(s.b, s.hq, s.sq, s.dv), stage0(s.b, s.hq, s.sq, T), stage1 = stage0, stage2 = stage0,
                                                             stage3 = stage0;
  for (int64_t b = 0; b < s.b; ++b)
    for (int64_t h = 0; h < s.hq; ++h)
      for (int64_t i = 0; i < s.sq; ++i) {
        for (int64_t j = 0; j < T; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < s.d; ++e) dot += q.at(b, h, i, e) * kt.at(b, h / group, j, e);
          stage0.at(b, h, i, j) = dot * scale;
          stage1.at(b, h, i, j) =
              s.softcap != 0 ? s.softcap * std::tanh(dot * scale / s.softcap) : dot * scale;
          double bias = s.mask.empty() ? 0.0 : mask_bias(in.at("mask"), b, h, i, j);
          if (s.causal && j - s.past > i) bias += -kInf;
          stage2.at(b, h, i, j) = stage1.at(b, h, i, j) + bias;
        }
        double mx = -kInf, sum = 0;
        for (int64_t j = 0; j < T; ++j) mx = std::max(mx, stage2.at(b, h, i, j));
        for (int64_t j = 0; j < T; ++j) sum += std::exp(stage2.at(b, h, i, j) - mx);
        for (int64_t j = 0; j < T; ++j) stage3.at(b, h, i, j) = std::exp(stage2.at(b, h, i, j) - mx) / sum;
        for (int64_t e = 0; e < s.dv; ++e)
          for (int64_t j = 0; j < T; ++j)
            y.at(b, h, i, e) += stage3.at(b, h, i, j) * vt.at(b, h / group, j, e);
      }
  auto to_tensor = [](Arr4& a, DType dt, bool merge_heads) {
    if (!merge_heads) {
      Tensor t(DType::kF64, {a.n0, a.n1, a.n2, a.n3});
      for (size_t i = 0; i < a.v.size(); ++i) t.data<double>()[i] = a.v[i];
      return dt == DType::kF64 ? t : cpu::convert_tensor(t, dt);
    }
    Tensor t(DType::kF64, {a.n0, a.n2, a.n1 * a.n3});  // [B, H, S, X] -> [B, S, H*X]
    for (int64_t b = 0; b < a.n0; ++b)
      for (int64_t h = 0; h < a.n1; ++h)
        for (int64_t s = 0; s < a.n2; ++s)
          for (int64_t e = 0; e < a.n3; ++e)
            t.data<double>()[(b * a.n2 + s) * a.n1 * a.n3 + h * a.n3 + e] = a.at(b, h, s, e);
    return dt == DType::kF64 ? t : cpu::convert_tensor(t, dt);
  };
  Arr4* stages[4] = {&stage0, &stage1, &stage2, &stage3};
  Expected e;
  e.y = to_tensor(y, s.dt, s.three_d);
  e.present_key = to_tensor(kt, s.dt, false);
  e.present_value = to_tensor(vt, s.vdt, false);
  if (s.mode >= 0) e.qk = to_tensor(*stages[s.mode], s.dt, false);
  return e;
}

// Same dims and dtype; values within rtol*(1+|want|), NaN where the naive loop has NaN. Returns the NaN
// count.
int64_t expect_close(const Tensor& got, const Tensor& want, double rtol, const std::string& what) {
  EXPECT_EQ(got.dtype(), want.dtype()) << what;
  EXPECT_EQ(got.dims(), want.dims()) << what;
  if (got.dims() != want.dims()) return 0;
  int64_t bad = 0, nans = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.get_as_double(i), e = want.get_as_double(i);
    nans += std::isnan(e);
    if (a == e || (std::isnan(a) && std::isnan(e))) continue;
    if (!(std::fabs(a - e) <= rtol * (1 + std::fabs(e))) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << a << ", want " << e;
  }
  EXPECT_EQ(bad, 0) << what;
  return nans;
}

// Runs the op and checks every output it was asked for against the naive loop; returns Y's NaN count.
int64_t check(const Spec& s, uint64_t seed, double rtol = 1e-5) {
  const auto in = inputs(s, seed);
  auto got = run(model(s), in);
  EXPECT_TRUE(got.ok()) << got.status().to_string();
  if (!got.ok()) return 0;
  const Expected want = naive(s, in);
  const int64_t nans = expect_close(got->at("y"), want.y, rtol, "y");
  if (s.present) {
    expect_close(got->at("present_key"), want.present_key, 0, "present_key");
    expect_close(got->at("present_value"), want.present_value, 0, "present_value");
  }
  if (s.mode >= 0) expect_close(got->at("qk"), want.qk, rtol, "qk_matmul_output");
  return nans;
}

std::string label(const Spec& s) {
  return fmt::format("{}-D b{} hq{} hkv{} sq{} skv{} past{} d{} dv{}{}", s.three_d ? 3 : 4, s.b, s.hq, s.hkv,
                     s.sq, s.skv, s.past, s.d, s.dv, s.causal ? " causal" : "");
}

TEST(AttentionOp, OddSequenceLengthsAndHeadCounts4D) {
  uint64_t seed = 1;
  for (int64_t heads : {1, 2, 3})
    for (auto [sq, skv] : {std::pair<int64_t, int64_t>{1, 1}, {3, 3}, {7, 7}, {3, 7}, {7, 1}}) {
      Spec s;
      s.b = 2, s.hq = s.hkv = heads, s.sq = sq, s.skv = skv, s.d = 5, s.dv = 3;
      SCOPED_TRACE(label(s));
      check(s, seed++);
    }
}

TEST(AttentionOp, ThreeDInputsSplitAndMergeHeads) {
  uint64_t seed = 100;
  for (int64_t heads : {1, 2, 3})
    for (int64_t seq : {1, 3, 7}) {
      Spec s;
      s.three_d = true, s.b = 2, s.hq = s.hkv = heads, s.sq = seq, s.skv = seq + 2, s.d = 4, s.dv = 6;
      SCOPED_TRACE(label(s));
      check(s, seed++);
    }
}

TEST(AttentionOp, GroupedQueryHeads) {
  for (bool three_d : {false, true}) {
    Spec s;
    s.three_d = three_d, s.b = 2, s.hq = 4, s.hkv = 2, s.sq = 3, s.skv = 7, s.d = 8, s.dv = 5;
    SCOPED_TRACE(label(s));
    check(s, 200 + three_d);
    s.hkv = 1;  // multi-query
    check(s, 210 + three_d);
  }
}

TEST(AttentionOp, CausalRectangularIsTopLeftWithoutPast) {
  for (auto [sq, skv] : {std::pair<int64_t, int64_t>{3, 7}, {7, 3}, {1, 7}, {7, 7}}) {
    Spec s;
    s.hq = 2, s.hkv = 2, s.sq = sq, s.skv = skv, s.causal = true;
    SCOPED_TRACE(label(s));
    check(s, 300 + sq);
  }
  // Query 0 sees key 0 only: its output is exactly V's row 0 (a check independent of the naive loop).
  Spec s;
  s.sq = 3, s.skv = 7, s.causal = true, s.d = 4, s.dv = 4;
  const auto in = inputs(s, 310);
  auto got = run(model(s), in);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  for (int64_t e = 0; e < 4; ++e) EXPECT_FLOAT_EQ(got->at("y").data<float>()[e], in.at("v").data<float>()[e]);
}

TEST(AttentionOp, PastKeyValueConcatAndCausalOffset) {
  for (bool three_d : {false, true})
    for (int64_t sq : {1, 3}) {
      Spec s;
      s.three_d = three_d, s.b = 2, s.hq = 4, s.hkv = 2, s.sq = sq, s.skv = sq, s.past = 4, s.d = 3, s.dv = 5;
      s.causal = true, s.present = true;
      SCOPED_TRACE(label(s));
      check(s, 400 + sq + 10 * three_d);
    }
  // Decoding one token with a past: causal must let it see every past key (offset by P), so the result equals
  // the non-causal one.
  Spec s;
  s.hq = s.hkv = 2, s.sq = 1, s.skv = 1, s.past = 5, s.present = true;
  const auto in = inputs(s, 420);
  auto plain = run(model(s), in);
  s.causal = true;
  auto causal = run(model(s), in);
  ASSERT_TRUE(plain.ok() && causal.ok());
  expect_close(causal->at("y"), plain->at("y"), 0, "decode step");
  EXPECT_EQ(causal->at("present_key").dims(), (std::vector<int64_t>{1, 2, 6, 4}));
}

TEST(AttentionOp, BoolAndFloatMasksBroadcast) {
  uint64_t seed = 500;
  for (DType mdt : {DType::kBool, DType::kF32})
    for (const auto& mdims : {std::vector<int64_t>{3, 7}, std::vector<int64_t>{2, 1, 3, 7},
                              std::vector<int64_t>{1, 3, 1, 7}, std::vector<int64_t>{7}})
      for (bool causal : {false, true}) {
        Spec s;
        s.b = 2, s.hq = 3, s.hkv = 3, s.sq = 3, s.skv = 7, s.mask = mdims, s.mask_dt = mdt, s.causal = causal;
        SCOPED_TRACE(label(s) + " mask " + std::string(dtype_name(mdt)) + dims_to_string(mdims));
        check(s, seed++);
      }
  // A mask over the total length with a past, on 3-D inputs.
  Spec s;
  s.three_d = true, s.hq = 2, s.hkv = 1, s.sq = 3, s.skv = 3, s.past = 2, s.mask = {3, 5},
  s.mask_dt = DType::kF32;
  check(s, seed++);
}

TEST(AttentionOp, FullyMaskedRowIsNaN) {
  Spec s;
  s.sq = 3, s.skv = 4, s.mask = {3, 4};
  auto in = inputs(s, 600);
  for (int64_t j = 0; j < 4; ++j) in["mask"].data<uint8_t>()[4 + j] = 0;  // row 1 keeps nothing
  in["mask"].data<uint8_t>()[0] = 1;  // rows 0 and 2 keep at least one key
  in["mask"].data<uint8_t>()[8] = 1;
  auto got = run(model(s), in);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  const Tensor& y = got->at("y");
  for (int64_t e = 0; e < 4; ++e) {
    EXPECT_TRUE(std::isnan(y.data<float>()[4 + e])) << e;
    EXPECT_FALSE(std::isnan(y.data<float>()[e])) << e;
  }
  const Expected want = naive(s, in);
  EXPECT_EQ(expect_close(y, want.y, 1e-5, "y"), 4);
}

TEST(AttentionOp, ScaleSoftcapAndEveryQkOutputMode) {
  for (int mode : {0, 1, 2, 3})
    for (float softcap : {0.f, 0.7f}) {
      Spec s;
      s.b = 2, s.hq = 2, s.hkv = 1, s.sq = 3, s.skv = 7, s.d = 6, s.dv = 2, s.scale = 0.9f,
      s.softcap = softcap;
      s.mask = {2, 1, 3, 7}, s.mask_dt = DType::kF32, s.mode = mode, s.causal = mode == 2;
      SCOPED_TRACE(label(s) + " mode " + std::to_string(mode) + " softcap " + std::to_string(softcap));
      check(s, 700 + mode);
    }
  // Softcap bounds the scores: with a large scale, mode 1 stays within (-softcap, softcap), mode 0 does not.
  Spec s;
  s.sq = 3, s.skv = 3, s.scale = 50.f, s.softcap = 2.f;
  double max0 = 0, max1 = 0;
  for (int mode : {0, 1}) {
    s.mode = mode;
    auto got = run(model(s), inputs(s, 720));
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    const Tensor& qk = got->at("qk");
    for (int64_t i = 0; i < qk.numel(); ++i)
      (mode == 0 ? max0 : max1) = std::max(mode == 0 ? max0 : max1, std::fabs(qk.get_as_double(i)));
  }
  EXPECT_GT(max0, 2.0);
  EXPECT_LE(max1, 2.0);
}

TEST(AttentionOp, HalfAndMixedDtypes) {
  Spec s;
  s.three_d = true, s.b = 2, s.hq = 4, s.hkv = 2, s.sq = 7, s.skv = 3, s.d = 8, s.dv = 8, s.causal = true;
  s.dt = s.vdt = DType::kF16, s.mask = {1, 1, 7, 3}, s.mask_dt = DType::kBool, s.present = true;
  check(s, 800, 2e-3);
  Spec m;  // V may have its own float type (T2); Y and present_key follow Q
  m.hq = m.hkv = 2, m.sq = 3, m.skv = 3, m.past = 2, m.present = true, m.vdt = DType::kF64;
  check(m, 801);
}

TEST(AttentionOp, EmptyQueriesAndNoKeys) {
  Spec s;
  s.hq = s.hkv = 2, s.sq = 0, s.skv = 3;
  check(s, 900);
  Spec n;  // no keys at all: Y is an empty sum
  n.hq = n.hkv = 2, n.sq = 3, n.skv = 0, n.present = true;
  auto got = run(model(n), inputs(n, 901));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(got->at("y").dims(), (std::vector<int64_t>{1, 2, 3, 4}));
  for (int64_t i = 0; i < got->at("y").numel(); ++i) EXPECT_EQ(got->at("y").data<float>()[i], 0.f);
  EXPECT_EQ(got->at("present_key").dims(), (std::vector<int64_t>{1, 2, 0, 4}));
}

// ---- Errors
// ------------------------------------------------------------------------------------------------

void expect_error(const ModelBuilder& m, const std::map<std::string, Tensor>& in, const std::string& text) {
  auto r = run(m, in);
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << text;
  EXPECT_NE(r.status().message().find("node 'att' (Attention)"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(text), std::string::npos) << r.status().message();
}

TEST(AttentionOp, BadShapesAndAttributesNameTheNode) {
  Spec base;
  base.hq = base.hkv = 2, base.sq = 3, base.skv = 5, base.d = 4, base.dv = 4;
  const auto in = inputs(base, 1000);
  {  // head sizes differ
    ModelBuilder m(23);
    m.input("q", DType::kF32, {"1", "2", "3", "4"}).input("k", DType::kF32, {"1", "2", "5", "6"});
    m.input("v", DType::kF32, {"1", "2", "5", "4"})
        .node("Attention", {"q", "k", "v"}, {"y"}, "att")
        .output("y");
    expect_error(m, {}, "[1,2,3,4] and K [1,2,5,6] have different head sizes");
  }
  {  // K/V sequence lengths differ
    ModelBuilder m(23);
    m.input("q", DType::kF32, {"1", "2", "3", "4"}).input("k", DType::kF32, {"1", "2", "5", "4"});
    m.input("v", DType::kF32, {"1", "2", "6", "4"})
        .node("Attention", {"q", "k", "v"}, {"y"}, "att")
        .output("y");
    expect_error(m, {}, "different sequence lengths");
  }
  {  // 3 query heads cannot share 2 KV heads
    ModelBuilder m(23);
    m.input("q", DType::kF32, {"1", "3", "3", "4"}).input("k", DType::kF32, {"1", "2", "5", "4"});
    m.input("v", DType::kF32, {"1", "2", "5", "4"})
        .node("Attention", {"q", "k", "v"}, {"y"}, "att")
        .output("y");
    expect_error(m, {}, "3 query heads cannot share 2 key/value heads");
  }
  {  // 3-D without head counts, and with a hidden size the head count does not divide
    ModelBuilder m(23);
    m.input("q", DType::kF32, {"1", "3", "8"}).input("k", DType::kF32, {"1", "5", "8"});
    m.input("v", DType::kF32, {"1", "5", "8"}).node("Attention", {"q", "k", "v"}, {"y"}, "att").output("y");
    expect_error(m, {}, "need the q_num_heads and kv_num_heads attributes");
    m.attr("q_num_heads", int64_t{3}).attr("kv_num_heads", int64_t{2});
    expect_error(m, {}, "Q [1,3,8] has hidden size 8, not a multiple of q_num_heads=3");
  }
  {  // mixed ranks
    ModelBuilder m(23);
    m.input("q", DType::kF32, {"1", "2", "3", "4"}).input("k", DType::kF32, {"1", "5", "8"});
    m.input("v", DType::kF32, {"1", "5", "8"}).node("Attention", {"q", "k", "v"}, {"y"}, "att").output("y");
    expect_error(m, {}, "must all be 4-D");
  }
  {  // a mask that does not broadcast to the scores, naming both
    Spec s = base;
    s.mask = {3, 4};
    expect_error(model(s), {},
                 "attn_mask [3,4] does not broadcast to the scores [batch, q_heads, q_seq, "
                 "total_seq] = [1,2,3,5]");
  }
  {  // past_key without past_value, and a past with the wrong head count
    ModelBuilder m(23);
    m.input("q", DType::kF32, {"1", "2", "3", "4"}).input("k", DType::kF32, {"1", "2", "5", "4"});
    m.input("v", DType::kF32, {"1", "2", "5", "4"}).input("pk", DType::kF32, {"1", "2", "2", "4"});
    m.node("Attention", {"q", "k", "v", "", "pk"}, {"y"}, "att").output("y");
    expect_error(m, {}, "past_key and past_value must be given together");
    ModelBuilder w(23);
    w.input("q", DType::kF32, {"1", "2", "3", "4"}).input("k", DType::kF32, {"1", "2", "5", "4"});
    w.input("v", DType::kF32, {"1", "2", "5", "4"}).input("pk", DType::kF32, {"1", "3", "2", "4"});
    w.input("pv", DType::kF32, {"1", "2", "2", "4"});
    w.node("Attention", {"q", "k", "v", "", "pk", "pv"}, {"y"}, "att").output("y");
    expect_error(w, {}, "past_key [1,3,2,4] and past_value [1,2,2,4] do not match");
  }
  {  // attributes and opset
    Spec s = base;
    ModelBuilder m = model(s);
    m.attr("is_causal", int64_t{2});
    expect_error(m, in, "is_causal must be 0 or 1, got 2");
    ModelBuilder q = model(s);
    q.attr("qk_matmul_output_mode", int64_t{4});
    expect_error(q, in, "qk_matmul_output_mode must be 0, 1, 2 or 3, got 4");
    ModelBuilder c = model(s);
    c.attr("scale", -1.f);
    expect_error(c, in, "scale must be a finite value > 0");
    ModelBuilder p = model(s);
    p.attr("softmax_precision", int64_t{7});
    expect_error(p, in, "softmax_precision must be a float type");
    s.opset = 22;
    expect_error(model(s), in, "Attention is an opset-23 op but the model imports opset 22");
  }
}

TEST(AttentionOp, ExplicitSoftmaxPrecisionRuns) {
  Spec s;
  s.hq = s.hkv = 2, s.sq = 3, s.skv = 3, s.dt = s.vdt = DType::kF16;
  ModelBuilder m = model(s);
  m.attr("softmax_precision", int64_t{1});
  const auto in = inputs(s, 1100);
  auto got = run(m, in);
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  expect_close(got->at("y"), naive(s, in).y, 2e-3, "y");
}

}  // namespace
}  // namespace kiln
