// FusedAttention on the GPU against the CPU reference: the flash (tensor-core) path for f16/bf16 with head
// dims 32/64/128 and odd ones (scalar tile loads), the CUDA-core path for f32 and head dims > 128, sequence
// lengths 1..512 that are not multiples of the 64-row tiles, causal, bool and additive masks broadcast over
// batch/head, fully masked rows (NaN, or 0 with nan_to_zero), GQA / batch broadcast, Sk == 0 and empty
// outputs; masks whose 64x64 tiles are fully masked / open / mixed (the tile-skipping classes: torch's causal
// mask as a tensor, padding masks with whole padded key blocks), and every [B, S, H, X] layout combination.
// Also the fused real-model skeletons on the CUDA engine, and benchmarks against the unfused graph and of the
// mask forms GPT-2 / BERT use.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>

#include "gpu/norm_reduce_test_util.h"
#include "kiln/kiln.h"
#include "util/tactic_cache.h"
#include "support/skeleton.h"

namespace kiln {
namespace {

using gputest::sdims;
using testing::ModelBuilder;

constexpr DType kFloats[] = {DType::kF32, DType::kF16, DType::kBF16};
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Attn {
  std::vector<int64_t> q, k, v;
  std::vector<int64_t> mask;  // empty: none
  bool bool_mask = true;
  bool causal = false, nan_to_zero = false;
  std::optional<float> scale;
  int bshd = 0;  // bits 0..3: Q, K, V, Y stored [B, S, H, X] (their dims above are then given that way)
};

ModelBuilder attn_model(const Attn& a, DType dt) {
  ModelBuilder b(18);
  b.input("q", dt, sdims(a.q)).input("k", dt, sdims(a.k)).input("v", dt, sdims(a.v));
  std::vector<std::string> ins = {"q", "k", "v"};
  if (!a.mask.empty()) {
    b.input("mask", a.bool_mask ? DType::kBool : dt, sdims(a.mask));
    ins.push_back("mask");
  }
  b.node("FusedAttention", ins, {"y"}).domain("kiln");
  if (a.scale) b.attr("scale", *a.scale);
  b.attr("causal", int64_t{a.causal}).attr("nan_to_zero", int64_t{a.nan_to_zero});
  const char* const kLayout[4] = {"q_bshd", "k_bshd", "v_bshd", "y_bshd"};
  for (int i = 0; i < 4; ++i)
    if (a.bshd & (1 << i)) b.attr(kLayout[i], int64_t{1});
  b.output("y");
  return b;
}

// Masks keep ~70% of the keys; row 0 of the mask (whatever it broadcasts to) drops all of them when
// `drop_first_row`.
Tensor make_mask(const Attn& a, DType dt, uint64_t seed, bool drop_first_row) {
  Tensor r = testing::random_f32(a.mask, seed);
  const int64_t sk = a.mask.back();
  auto value = [&](int64_t i) -> double {
    const float x = r.data<float>()[i];
    const bool drop = (drop_first_row && i < sk) || x < -0.4f;
    if (a.bool_mask) return drop ? 0.0 : 1.0;
    return drop ? -kInf : x * 2.0;
  };
  if (a.bool_mask) {
    Tensor m(DType::kBool, a.mask);
    for (int64_t i = 0; i < m.numel(); ++i) m.data<uint8_t>()[i] = value(i) != 0;
    return m;
  }
  return gputest::make_tensor(dt, a.mask, value);
}

std::map<std::string, Tensor> attn_inputs(const Attn& a, DType dt, uint64_t seed,
                                          bool drop_first_row = false) {
  // Values in [-2, 2) so scores spread enough for the softmax to be far from uniform.
  std::map<std::string, Tensor> in = {{"q", gputest::uniform_tensor(dt, a.q, seed, -2, 2)},
                                      {"k", gputest::uniform_tensor(dt, a.k, seed + 1, -2, 2)},
                                      {"v", gputest::uniform_tensor(dt, a.v, seed + 2, -1, 1)}};
  if (!a.mask.empty()) in["mask"] = make_mask(a, dt, seed + 3, drop_first_row);
  return in;
}

// f32 runs exact f32 math but sums in a different order than the double reference.
std::optional<gputest::Tolerance> tol_for(DType dt) {
  if (dt == DType::kF32) return gputest::Tolerance{2e-4, 5e-5};
  return std::nullopt;
}

void check(const Attn& a, DType dt, uint64_t seed, bool drop_first_row = false, int min_gpu_nodes = 1) {
  gputest::expect_on_device(attn_model(a, dt), attn_inputs(a, dt, seed, drop_first_row), min_gpu_nodes,
                            tol_for(dt));
}

TEST(GpuAttention, SequenceLengthsAndDtypes) {
  KILN_REQUIRE_GPU();
  const std::pair<int64_t, int64_t> lengths[] = {{1, 1},     {3, 7},   {7, 3},    {1, 129},  {127, 129},
                                                 {129, 127}, {64, 64}, {65, 200}, {512, 512}};
  for (DType dt : kFloats)
    for (auto [sq, sk] : lengths) {
      SCOPED_TRACE(gputest::dname(dt) + " Sq=" + std::to_string(sq) + " Sk=" + std::to_string(sk));
      check({{2, 3, sq, 64}, {2, 3, sk, 64}, {2, 3, sk, 64}}, dt, 100 + sq * 7 + sk);
    }
}

TEST(GpuAttention, HeadDims) {
  KILN_REQUIRE_GPU();
  // 16/32/64/128: vectorized tiles padded to 32/64/128; 7, 33, 100: scalar tile loads with zero padding;
  // Dv != D; 160 and 256: the CUDA-core path for every dtype.
  const std::pair<int64_t, int64_t> dims[] = {{16, 16},   {32, 32}, {64, 64}, {128, 128}, {7, 7},   {33, 20},
                                              {100, 128}, {64, 32}, {32, 96}, {160, 160}, {256, 64}};
  for (DType dt : kFloats)
    for (auto [d, dv] : dims) {
      SCOPED_TRACE(gputest::dname(dt) + " D=" + std::to_string(d) + " Dv=" + std::to_string(dv));
      check({{1, 2, 70, d}, {1, 2, 131, d}, {1, 2, 131, dv}}, dt, 200 + d + dv);
    }
}

TEST(GpuAttention, Causal) {
  KILN_REQUIRE_GPU();
  const std::pair<int64_t, int64_t> lengths[] = {{1, 1},     {3, 3},     {7, 7},     {127, 127},
                                                 {129, 129}, {200, 512}, {512, 512}, {65, 30}};
  for (DType dt : kFloats)
    for (auto [sq, sk] : lengths) {
      SCOPED_TRACE(gputest::dname(dt) + " Sq=" + std::to_string(sq) + " Sk=" + std::to_string(sk));
      Attn a{{2, 2, sq, 64}, {2, 2, sk, 64}, {2, 2, sk, 64}};
      a.causal = true;
      check(a, dt, 300 + sq + sk);
    }
}

TEST(GpuAttention, MasksBroadcastAndFullyMaskedRows) {
  KILN_REQUIRE_GPU();
  const std::vector<int64_t> masks[] = {{2, 1, 1, 129}, {70, 129}, {2, 3, 70, 129}, {1, 3, 1, 129}, {129}};
  for (DType dt : kFloats)
    for (bool bool_mask : {true, false})
      for (const auto& m : masks)
        for (bool guard : {false, true}) {
          SCOPED_TRACE(gputest::dname(dt) + (bool_mask ? " bool " : " additive ") + dims_to_string(m) +
                       (guard ? " nan_to_zero" : ""));
          Attn a{{2, 3, 70, 64}, {2, 3, 129, 64}, {2, 3, 129, 64}, m, bool_mask};
          a.nan_to_zero = guard;
          check(a, dt, 400, /*drop_first_row=*/true);
          a.causal = true;  // masks and causal together
          check(a, dt, 401, true);
        }
}

TEST(GpuAttention, GroupedQueryAndBatchBroadcast) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    SCOPED_TRACE(gputest::dname(dt));
    check({{2, 8, 33, 64}, {2, 2, 77, 64}, {2, 2, 77, 64}}, dt, 500);  // 4 query heads per kv head
    check({{2, 8, 33, 64}, {2, 1, 77, 64}, {2, 4, 77, 64}}, dt, 501);  // K multi-query, V grouped
    check({{3, 2, 33, 64}, {1, 2, 77, 64}, {1, 1, 77, 64}}, dt, 502);  // K/V shared by the batch
    Attn a{{2, 4, 33, 64}, {2, 2, 77, 64}, {2, 2, 77, 64}, {2, 1, 33, 77}};
    a.causal = true;
    check(a, dt, 503);
  }
}

TEST(GpuAttention, ExplicitScaleAndLargeLogits) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    SCOPED_TRACE(gputest::dname(dt));
    Attn a{{1, 2, 100, 64}, {1, 2, 150, 64}, {1, 2, 150, 64}};
    a.scale = 1.0f;  // scores up to ~256: the running max must keep exp2 in range
    check(a, dt, 600);
    a.scale = 0.01f;
    check(a, dt, 601);
  }
}

TEST(GpuAttention, EmptyAndKeylessShapes) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    SCOPED_TRACE(gputest::dname(dt));
    check({{2, 2, 5, 64}, {2, 2, 0, 64}, {2, 2, 0, 64}}, dt, 700);  // no keys: zeros
    // Empty outputs: nothing to launch (the executor may not count the node as a GPU one).
    check({{2, 2, 0, 64}, {2, 2, 5, 64}, {2, 2, 5, 64}}, dt, 701, false, 0);  // no queries
    check({{0, 2, 5, 64}, {0, 2, 5, 64}, {0, 2, 5, 64}}, dt, 702, false, 0);  // empty batch
  }
}

// A 4-D mask [mb, mh, mq, mk] from keep(b, h, i, j): bool, or additive 0 / -inf; with `bias`, kept additive
// scores get bias(b, h, i, j) instead of 0.
using KeepFn = std::function<bool(int64_t, int64_t, int64_t, int64_t)>;
using BiasFn = std::function<double(int64_t, int64_t, int64_t, int64_t)>;
Tensor mask_from(const std::vector<int64_t>& d, bool bool_mask, DType dt, const KeepFn& keep,
                 const BiasFn& bias = nullptr) {
  auto at = [&](int64_t i, auto&& f) {
    const int64_t j = i % d[3], q = i / d[3] % d[2], h = i / (d[3] * d[2]) % d[1],
                  b = i / (d[3] * d[2] * d[1]);
    return f(b, h, q, j);
  };
  if (bool_mask) {
    Tensor m(DType::kBool, d);
    for (int64_t i = 0; i < m.numel(); ++i) m.data<uint8_t>()[i] = at(i, keep) ? 1 : 0;
    return m;
  }
  return gputest::make_tensor(dt, d, [&](int64_t i) -> double {
    if (!at(i, keep)) return -kInf;
    return bias ? at(i, bias) : 0.0;
  });
}

void check_with_mask(const Attn& a, DType dt, uint64_t seed, const Tensor& mask) {
  auto in = attn_inputs(a, dt, seed);
  in["mask"] = mask;
  gputest::expect_on_device(attn_model(a, dt), in, 1, tol_for(dt));
}

// torch's causal mask arrives as a tensor [B, 1, S, S] (causal=0): tiles above the diagonal are all masked
// (skipped), diagonal tiles mixed, the rest open; S not a multiple of the 64-wide tiles too.
TEST(GpuAttentionMaskTiles, CausalMaskAsTensor) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats)
    for (bool bool_mask : {true, false})
      for (int64_t s : {1, 7, 64, 65, 127, 200, 512}) {
        SCOPED_TRACE(gputest::dname(dt) + (bool_mask ? " bool" : " additive") + " S=" + std::to_string(s));
        Attn a{{2, 3, s, 64}, {2, 3, s, 64}, {2, 3, s, 64}, {2, 1, s, s}, bool_mask};
        check_with_mask(
            a, dt, 800 + s,
            mask_from(a.mask, bool_mask, dt, [](int64_t, int64_t, int64_t i, int64_t j) { return j <= i; }));
      }
}

// A padding mask [B, 1, 1, Sk]: batch 0 keeps 70 keys (key tiles 2..4 wholly padded), batch 1 keeps 257 with
// a bias on some kept keys (mixed tiles), batch 2 keeps none (every row NaN, or 0 with nan_to_zero). The mask
// broadcasts over queries: one class per key tile, or per query tile too when causal.
TEST(GpuAttentionMaskTiles, PaddingMaskWithWholePaddedKeyBlocks) {
  KILN_REQUIRE_GPU();
  const int64_t kept[3] = {70, 257, 0};
  for (DType dt : kFloats)
    for (bool bool_mask : {true, false})
      for (bool causal : {false, true})
        for (bool guard : {false, true}) {
          SCOPED_TRACE(gputest::dname(dt) + (bool_mask ? " bool" : " additive") + (causal ? " causal" : "") +
                       (guard ? " nan_to_zero" : ""));
          Attn a{{3, 2, 100, 64}, {3, 2, 300, 64}, {3, 2, 300, 64}, {3, 1, 1, 300}, bool_mask};
          a.causal = causal;
          a.nan_to_zero = guard;
          const Tensor m = mask_from(
              a.mask, bool_mask, dt, [&](int64_t b, int64_t, int64_t, int64_t j) { return j < kept[b]; },
              [](int64_t b, int64_t, int64_t, int64_t j) { return b == 1 && j % 3 == 0 ? 0.75 : 0.0; });
          check_with_mask(a, dt, 900, m);
        }
}

// Per-(batch, head) masks whose 64x64 tiles are chosen all masked, all open or random, with a fully masked
// query row in every head and one head masked entirely; also broadcast over batch and heads, and with causal.
TEST(GpuAttentionMaskTiles, MixedTileClassesAndFullyMaskedRows) {
  KILN_REQUIRE_GPU();
  auto tile_kind = [](int64_t b, int64_t h, int64_t i, int64_t j) {
    return static_cast<int>((b * 7 + h * 5 + (i / 64) * 3 + (j / 64) * 11) %
                            3);  // 0 masked, 1 open, 2 random
  };
  auto keep = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
    if (i == 5 || (b == 1 && h == 2)) return false;
    const int kind = tile_kind(b, h, i, j);
    if (kind != 2) return kind == 1;
    return ((i * 131 + j * 71 + b * 13 + h) % 10) < 7;
  };
  auto bias = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
    return tile_kind(b, h, i, j) == 2 ? ((i + 2 * j) % 5 - 2) * 0.5 : 0.0;
  };
  const std::vector<int64_t> masks[] = {{2, 3, 200, 150}, {1, 1, 200, 150}, {2, 3, 1, 150}};
  for (DType dt : kFloats)
    for (bool bool_mask : {true, false})
      for (const auto& md : masks)
        for (bool causal : {false, true})
          for (bool guard : {false, true}) {
            SCOPED_TRACE(gputest::dname(dt) + (bool_mask ? " bool " : " additive ") + dims_to_string(md) +
                         (causal ? " causal" : "") + (guard ? " nan_to_zero" : ""));
            Attn a{{2, 3, 200, 64}, {2, 3, 150, 64}, {2, 3, 150, 64}, md, bool_mask};
            a.causal = causal;
            a.nan_to_zero = guard;
            check_with_mask(a, dt, 1000, mask_from(md, bool_mask, dt, keep, bias));
          }
}

// Q, K, V and Y each as [B, H, S, X] or [B, S, H, X] (all 16 combinations), with grouped K/V heads and a
// mask; head dims 64 (16-byte tile loads), 7 (scalar loads) and 160 (the CUDA-core path for every dtype).
TEST(GpuAttentionLayout, EveryBshdCombination) {
  KILN_REQUIRE_GPU();
  const int64_t B = 2, H = 4, Hk = 2, Sq = 70, Sk = 131;
  for (DType dt : kFloats)
    for (int64_t d : {64, 7, 160})
      for (int bits = 0; bits < 16; ++bits) {
        SCOPED_TRACE(gputest::dname(dt) + " D=" + std::to_string(d) + " bshd bits=" + std::to_string(bits));
        auto dims = [&](int bit, int64_t h, int64_t s) {
          return bits & (1 << bit) ? std::vector<int64_t>{B, s, h, d} : std::vector<int64_t>{B, h, s, d};
        };
        Attn a{dims(0, H, Sq), dims(1, Hk, Sk), dims(2, Hk, Sk), {B, 1, Sq, Sk}};
        a.bshd = bits;
        a.causal = bits % 3 == 0;
        check(a, dt, 1100 + bits, /*drop_first_row=*/true);
      }
}

// packed=1: Q, K and V read from one [B, S, W] tensor at row offsets (what pack_qkv makes of a QKV
// projection or GPT-2's Split). Offsets in Q, K, V and in other orders; rows exactly as wide as needed or
// wider, with a width or head dim that is not a multiple of 8 (scalar tile loads); grouped K/V; causal and a
// mask; head dim 160 for the CUDA-core path.
TEST(GpuAttentionLayout, PackedQkvRows) {
  KILN_REQUIRE_GPU();
  struct Packed {
    int64_t b, s, h, hk, d, pad;
    int order;  // 0: Q K V, 1: V Q K, 2: K V Q
    bool causal, mask;
  };
  const std::vector<Packed> cases = {{1, 1, 4, 2, 64, 0, 0, false, false}, {2, 7, 4, 2, 64, 0, 1, true, false},
                                     {3, 127, 2, 2, 64, 8, 2, false, true},  {2, 129, 4, 4, 64, 3, 0, true, true},
                                     {2, 70, 4, 2, 6, 0, 1, false, true},    {1, 65, 3, 1, 32, 5, 2, true, false},
                                     {2, 33, 2, 1, 160, 0, 0, false, false}};
  for (DType dt : kFloats)
    for (size_t i = 0; i < cases.size(); ++i) {
      const Packed& c = cases[i];
      SCOPED_TRACE(gputest::dname(dt) + " case " + std::to_string(i));
      const int64_t q = c.h * c.d, kv = c.hk * c.d;
      int64_t off[3];  // Q, K, V
      if (c.order == 0) off[0] = 0, off[1] = q, off[2] = q + kv;
      if (c.order == 1) off[2] = 0, off[0] = kv, off[1] = kv + q;
      if (c.order == 2) off[1] = 0, off[2] = kv, off[0] = 2 * kv;
      const int64_t w = q + 2 * kv + c.pad;
      ModelBuilder b(18);
      b.input("qkv", dt, sdims({c.b, c.s, w}));
      std::vector<std::string> ins = {"qkv", "", ""};
      std::map<std::string, Tensor> in = {{"qkv", gputest::uniform_tensor(dt, {c.b, c.s, w}, 1300 + i, -2, 2)}};
      if (c.mask) {
        Attn shape;
        shape.mask = {c.b, 1, c.s, c.s};
        b.input("mask", DType::kBool, sdims(shape.mask));
        ins.push_back("mask");
        in["mask"] = make_mask(shape, dt, 1350 + i, true);
      }
      b.node("FusedAttention", ins, {"y"})
          .domain("kiln")
          .attr("packed", int64_t{1})
          .attr("q_num_heads", c.h)
          .attr("kv_num_heads", c.hk)
          .attr("head_size", c.d)
          .attr("qkv_offsets", std::vector<int64_t>{off[0], off[1], off[2]})
          .attr("causal", int64_t{c.causal})
          .attr("nan_to_zero", int64_t{1})
          .attr("y_bshd", int64_t{static_cast<int64_t>(i % 2)})
          .output("y");
      gputest::expect_on_device(b, in, 1, tol_for(dt));
    }
}

// The flash kernel's two tactics (registers as ptxas likes, or capped at 128 for 4 blocks an SM): a context
// times them on first use and stores the winner in its tactic cache; each one, forced through the cache,
// matches the CPU reference, and the layer profile names the one that ran.
TEST(GpuAttention, BothFlashTacticsMatchCpu) {
  KILN_REQUIRE_GPU();
  struct TacticCase {
    Attn a;
    DType dt;
  };
  Attn causal{{2, 3, 200, 64}, {2, 3, 200, 64}, {2, 3, 200, 64}};
  causal.causal = true;
  Attn masked{{2, 4, 70, 32}, {2, 2, 131, 32}, {2, 2, 131, 32}, {2, 1, 70, 131}};
  const std::vector<TacticCase> cases = {{causal, DType::kF16}, {masked, DType::kBF16}};
  for (size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE(c);
    const ModelBuilder model = attn_model(cases[c].a, cases[c].dt);
    const auto inputs = attn_inputs(cases[c].a, cases[c].dt, 1400 + c, true);
    auto g = onnx::import_model_bytes(model.bytes(), ".", "tactics");
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE(passes::infer_shapes(*g).ok());
    auto graph = std::make_shared<const ir::Graph>(std::move(*g));
    cpu::GraphExecutor cpu_exec(graph);
    auto want = cpu_exec.run(inputs);
    ASSERT_TRUE(want.ok());
    // Timed on first use.
    cuda::ExecutorOptions timed;
    timed.tactics = std::make_shared<TacticCache>();
    auto first = cuda::GraphExecutor::create(graph, timed);
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE((*first)->run(inputs).ok());
    std::map<std::string, std::string> entries;
    for (const auto& [key, value] : timed.tactics->entries())
      if (key.rfind("attn:", 0) == 0) entries[key] = value;
    ASSERT_EQ(entries.size(), 1u) << "one attention problem, one stored choice";
    EXPECT_TRUE(entries.begin()->second == "0" || entries.begin()->second == "1") << entries.begin()->second;
    for (const char* forced : {"0", "1"}) {
      SCOPED_TRACE(std::string("tactic ") + forced);
      cuda::ExecutorOptions o;
      o.tactics = std::make_shared<TacticCache>();
      o.tactics->put(entries.begin()->first, forced);
      auto ex = cuda::GraphExecutor::create(graph, o);
      ASSERT_TRUE(ex.ok());
      auto got = (*ex)->run(inputs);
      ASSERT_TRUE(got.ok()) << got.status().to_string();
      gputest::compare_outputs(*want, *got, tol_for(cases[c].dt));
      std::map<std::string, cuda::DeviceTensor> din;
      std::vector<void*> buffers;
      for (const auto& [name, t] : inputs) {
        cuda::DeviceTensor d{t.dtype(), t.dims(), nullptr, nullptr};
        ASSERT_EQ(cudaMalloc(&d.data, t.nbytes()), cudaSuccess);
        buffers.push_back(d.data);
        cudaMemcpy(d.data, t.raw(), t.nbytes(), cudaMemcpyHostToDevice);
        din[name] = d;
      }
      auto layers = (*ex)->profile(din, nullptr);
      for (void* p : buffers) cudaFree(p);
      ASSERT_TRUE(layers.ok());
      bool capped = false;
      for (const auto& l : *layers) capped = capped || l.tactic.find("128 registers") != std::string::npos;
      EXPECT_EQ(capped, std::string(forced) == "1");
    }
  }
}

// The fused real models on the CUDA engine against the CPU engine (both f32, both fused).
TEST(GpuAttention, FusedSkeletonsMatchCpu) {
  KILN_REQUIRE_GPU();
  Tensor ids(DType::kI64, {2, 11}), mask(DType::kI64, {2, 11});
  for (int64_t i = 0; i < 22; ++i) {
    ids.data<int64_t>()[i] = (i * 271) % 30000;
    mask.data<int64_t>()[i] = i < 11 || i % 11 < 6 ? 1 : 0;
  }
  const std::vector<std::pair<std::string, std::map<std::string, Tensor>>> cases = {
      {"bert_base", {{"input_ids", ids}, {"attention_mask", mask}}},
      {"gpt2", {{"input_ids", ids}}},
      {"vit_b_16", {{"image", testing::random_f32({2, 3, 224, 224}, 3)}}}};
  for (const auto& [name, in] : cases) {
    SCOPED_TRACE(name);
    std::map<std::string, Tensor> outs[2];
    for (int gpu = 0; gpu < 2; ++gpu) {
      BuildConfig cfg;
      cfg.backend = gpu ? BackendKind::kCuda : BackendKind::kCpu;
      auto e = Builder::build_from_bytes(testing::load_skeleton(name), cfg);
      ASSERT_TRUE(e.ok()) << e.status().to_string();
      EXPECT_EQ(e->op_histogram()["FusedAttention"], 12);
      auto ctx = e->create_context();
      ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
      auto out = ctx->infer(in);
      ASSERT_TRUE(out.ok()) << out.status().to_string();
      outs[gpu] = *out;
    }
    for (const auto& [oname, w] : outs[0]) {
      const Tensor& g = outs[1].at(oname);
      ASSERT_EQ(g.dims(), w.dims());
      double max_err = 0, max_ref = 0;
      for (int64_t i = 0; i < w.numel(); ++i) {
        max_err = std::max(max_err, std::fabs(g.get_as_double(i) - w.get_as_double(i)));
        max_ref = std::max(max_ref, std::fabs(w.get_as_double(i)));
      }
      EXPECT_LE(max_err, 1e-3 * std::max(1.0, max_ref)) << oname << " max |gpu - cpu| = " << max_err;
    }
  }
}

// Microbenchmark: the fused kernel against the unfused graph (Transpose, MatMul, Mul, Softmax, MatMul on the
// GPU) for B=32, H=12, D=64, f16, S = 128 and 512. Prints both times; checks the two agree.
struct Timed {
  double us = 0;
  Tensor y;
};

Timed time_graph(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  Timed r;
  auto g = onnx::import_model_bytes(b.bytes(), ".", "perf");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  if (!g.ok()) return r;
  EXPECT_TRUE(passes::infer_shapes(*g).ok());
  auto graph = std::make_shared<const ir::Graph>(std::move(*g));
  auto ex = cuda::GraphExecutor::create(graph, false);
  EXPECT_TRUE(ex.ok());
  if (!ex.ok()) return r;
  std::map<std::string, cuda::DeviceTensor> din, dout;
  std::vector<void*> bufs;
  for (const auto& [name, t] : inputs) {
    cuda::DeviceTensor d;
    d.dtype = t.dtype();
    d.dims = t.dims();
    EXPECT_EQ(cudaMalloc(&d.data, t.nbytes()), cudaSuccess);
    bufs.push_back(d.data);
    cudaMemcpy(d.data, t.raw(), t.nbytes(), cudaMemcpyHostToDevice);
    din[name] = d;
  }
  const auto* info = graph->value(graph->outputs[0]);
  cuda::DeviceTensor y;
  y.dtype = info->dtype;
  y.dims = info->shape.static_dims();
  EXPECT_EQ(cudaMalloc(&y.data, y.nbytes()), cudaSuccess);
  bufs.push_back(y.data);
  dout[graph->outputs[0]] = y;
  // One warm-up run also sizes the loop (~200 ms, at most 20 runs), in case a node fell back to the CPU.
  auto w0 = std::chrono::steady_clock::now();
  EXPECT_TRUE((*ex)->run_device(din, dout, nullptr).ok());
  cudaDeviceSynchronize();
  const double warm_us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - w0).count();
  const int iters = static_cast<int>(std::clamp(2e5 / std::max(warm_us, 1.0), 1.0, 20.0));
  EXPECT_TRUE((*ex)->run_device(din, dout, nullptr).ok());
  cudaDeviceSynchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) (void)(*ex)->run_device(din, dout, nullptr);
  cudaDeviceSynchronize();
  r.us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
  r.y = Tensor(y.dtype, y.dims);
  cudaMemcpy(r.y.raw(), y.data, y.nbytes(), cudaMemcpyDeviceToHost);
  for (void* p : bufs) cudaFree(p);
  return r;
}

TEST(GpuAttentionPerf, FusedVsUnfusedF16) {
  KILN_REQUIRE_GPU();
  const DType dt = DType::kF16;
  for (int64_t s : {128, 512}) {
    const std::vector<int64_t> d = {32, 12, s, 64};
    const std::map<std::string, Tensor> in = {{"q", gputest::uniform_tensor(dt, d, 1, -2, 2)},
                                              {"k", gputest::uniform_tensor(dt, d, 2, -2, 2)},
                                              {"v", gputest::uniform_tensor(dt, d, 3, -1, 1)}};
    Attn a{d, d, d};
    a.scale = 0.125f;
    ModelBuilder unfused(18);
    unfused.input("q", dt, sdims(d)).input("k", dt, sdims(d)).input("v", dt, sdims(d));
    Tensor sc(dt, {});
    sc.data<uint16_t>()[0] = float_to_half(0.125f);
    unfused.initializer("scale", sc)
        .node("Transpose", {"k"}, {"kt"})
        .attr("perm", std::vector<int64_t>{0, 1, 3, 2})
        .node("MatMul", {"q", "kt"}, {"s0"})
        .node("Mul", {"s0", "scale"}, {"s1"})
        .node("Softmax", {"s1"}, {"p"})
        .attr("axis", int64_t{-1})
        .node("MatMul", {"p", "v"}, {"y"})
        .output("y");
    const Timed f = time_graph(attn_model(a, dt), in);
    const Timed u = time_graph(unfused, in);
    const double flops = 4.0 * 32 * 12 * s * s * 64;
    std::printf(
        "PERF attention f16 B=32 H=12 S=%lld D=64: fused %9.1f us (%6.1f TFLOP/s)  unfused %9.1f us\n",
        static_cast<long long>(s), f.us, flops / f.us * 1e-6, u.us);
    ASSERT_TRUE(f.y.defined() && u.y.defined());
    double max_err = 0;
    for (int64_t i = 0; i < f.y.numel(); ++i)
      max_err = std::max(max_err, std::fabs(f.y.get_as_double(i) - u.y.get_as_double(i)));
    EXPECT_LT(max_err, 1e-2) << "fused and unfused f16 results differ";
  }
}

// GPT-2's shape (B=32, H=12, S=512, D=64, f16) with torch's causal mask as a bool tensor [B, 1, S, S],
// against causal=1 and no mask; then BERT's padding mask [B, 1, 1, S] with half the keys padded. Prints the
// times (the tensor mask should cost about what causal=1 does, thanks to the tile classes) and checks the
// causal forms agree.
TEST(GpuAttentionPerf, MaskTensorsF16) {
  KILN_REQUIRE_GPU();
  const DType dt = DType::kF16;
  const int64_t B = 32, H = 12, S = 512, D = 64;
  const std::vector<int64_t> d = {B, H, S, D};
  std::map<std::string, Tensor> in = {{"q", gputest::uniform_tensor(dt, d, 1, -2, 2)},
                                      {"k", gputest::uniform_tensor(dt, d, 2, -2, 2)},
                                      {"v", gputest::uniform_tensor(dt, d, 3, -1, 1)}};
  Attn plain{d, d, d};
  Attn causal = plain;
  causal.causal = true;
  Attn tensor = plain;
  tensor.mask = {B, 1, S, S};
  Attn padding = plain;
  padding.mask = {B, 1, 1, S};
  const Timed t_plain = time_graph(attn_model(plain, dt), in);
  const Timed t_causal = time_graph(attn_model(causal, dt), in);
  auto with_mask = in;
  with_mask["mask"] =
      mask_from(tensor.mask, true, dt, [](int64_t, int64_t, int64_t i, int64_t j) { return j <= i; });
  const Timed t_tensor = time_graph(attn_model(tensor, dt), with_mask);
  with_mask["mask"] =
      mask_from(padding.mask, true, dt, [](int64_t, int64_t, int64_t, int64_t j) { return j < S / 2; });
  const Timed t_pad = time_graph(attn_model(padding, dt), with_mask);
  std::printf(
      "PERF attention f16 B=32 H=12 S=512 D=64: no mask %8.1f us  causal=1 %8.1f us  causal bool tensor "
      "%8.1f us  "
      "padding [B,1,1,S] half kept %8.1f us\n",
      t_plain.us, t_causal.us, t_tensor.us, t_pad.us);
  ASSERT_TRUE(t_causal.y.defined() && t_tensor.y.defined());
  double max_err = 0;
  for (int64_t i = 0; i < t_causal.y.numel(); ++i)
    max_err = std::max(max_err, std::fabs(t_causal.y.get_as_double(i) - t_tensor.y.get_as_double(i)));
  EXPECT_EQ(max_err, 0.0) << "causal=1 and the causal mask tensor should give identical results";
}

}  // namespace
}  // namespace kiln
