// FusedAttention on the GPU (op semantics: src/ops/fused_attention.cpp). Never writes the [Sq, Sk] scores:
//  - f16/bf16 with head dims <= 128: a flash-attention-2 style forward. A block of 4 warps takes 64 query
//    rows (16 a warp) of one (batch, head); K/V tiles of 64 keys stream through shared memory (cp.async,
//    double buffered; rows padded by 16 bytes so ldmatrix is conflict-free). S = Q K^T and O += P V run on
//    tensor cores (mma.sync m16n8k16, f32 accumulation); the softmax is online in f32 (exp2 with log2(e)
//    folded into the scale), P goes to the second MMA from registers. Head dims are padded to 32/64/128.
//    With a mask tensor, a small kernel first sorts every 64x64 tile of the mask (per mask batch/head) into
//    0: all masked, 1: mixed, 2: nothing masked; flags in the context's workspace (allocated before any
//    capture). The flash kernel skips class-0 tiles (no K/V load, no MMA: torch's causal mask given as a
//    tensor costs what causal=1 does), adds nothing on class-2 tiles, and stages class-1 mask tiles in shared
//    memory with coalesced loads instead of reading an element per score.
//  - f32 (exact f32 math, as TF32 is off by default) and head dims 129..512 of any dtype (attention_simt.cuh;
//    what both kernels share is in attention_common.cuh): the same online softmax on CUDA cores, 16 query rows a block, 32-key chunks in shared memory, a lane per key then a lane
//    per output column; it reads the mask per score.
// Both skip key blocks above the diagonal when causal, give NaN for rows with no unmasked key (0 with
// nan_to_zero), and zeros when Sk == 0, like the CPU reference. Q, K, V and Y each come as [B, H, S, X] or,
// with the op's *_bshd attributes, [B, S, H, X] (the fold_attention_layout pass removes the head transposes
// that way): the kernels address rows through a per-tensor row stride.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/kernel_list.h"
#include "backends/cuda/shape_limits.h"
#include "backends/cuda/kernels/attention_common.cuh"
#include "backends/cuda/kernels/attention_simt.cuh"
#include "ops/fused_attention.h"
#include "util/tactic_cache.h"

namespace kiln::cuda {

namespace {

template <class T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                 uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
// 16 bytes global -> shared; zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Rows [row0, row0 + ROWS) x cols [0, DP) of a [rows, cols] matrix with row stride ld into shared memory (row
// stride DP + 8), zeros outside it. VEC: 16-byte cp.async (cols and ld multiples of 8, 16-byte aligned base);
// else plain loads.
template <class T, int ROWS, int DP, bool VEC>
__device__ __forceinline__ void load_tile(T* s, const T* g, int row0, int rows, int cols, int64_t ld,
                                          int tid) {
  constexpr int LDS = DP + 8;
  if constexpr (VEC) {
    constexpr int kChunks = DP / 8;
#pragma unroll
    for (int c = tid; c < ROWS * kChunks; c += kThreads) {
      const int r = c / kChunks, col = (c % kChunks) * 8, gr = row0 + r;
      const bool valid = gr < rows && col < cols;
      cp_async16(s + r * LDS + col, valid ? g + gr * ld + col : g, valid);
    }
  } else {
    for (int e = tid; e < ROWS * DP; e += kThreads) {
      const int r = e / DP, col = e % DP, gr = row0 + r;
      s[r * LDS + col] = gr < rows && col < cols ? g[gr * ld + col] : from_f<T>(0.f);
    }
  }
}

// Tile classes of the mask (AttnParams::tiles).
constexpr uint8_t kTileMasked = 0, kTileMixed = 1, kTileOpen = 2;
constexpr int kTile = 64;           // query rows and keys per tile, as the flash kernel's blocks
constexpr int kMaskLd = kTile + 8;  // shared-memory row stride of a staged mask tile (conflict-free)
constexpr int kClassifyThreads = 256;

// One block per mask tile: grid.x walks (mask batch, mask head, query tile, key tile), key tile fastest.
// An element counts as masked when causal hides it or the mask does (bool false, additive -inf); a tile
// is open when the mask changes no score that causal leaves (bool true, additive exactly 0) — the causal
// part is the flash kernel's own edge handling. q_rows is 1 when the mask broadcasts over queries and
// causal is off (then one row stands for the whole tile column).
template <class T>
__global__ void __launch_bounds__(kClassifyThreads)
    classify_mask_tiles_kernel(const AttnParams p, uint8_t* tiles, int MH, int QT, int KT, int q_rows) {
  int64_t t = blockIdx.x;
  const int kt = static_cast<int>(t % KT);
  t /= KT;
  const int qt = static_cast<int>(t % QT);
  t /= QT;
  const int mh = static_cast<int>(t % MH), mb = static_cast<int>(t / MH);
  const int64_t base = mb * p.m_sb + mh * p.m_sh;
  const int rows = q_rows == 1 ? 1 : min(kTile, p.Sq - qt * kTile);
  const int cols = min(kTile, p.Sk - kt * kTile);
  bool live = false, effect = false;
  for (int e = threadIdx.x; e < rows * kTile; e += kClassifyThreads) {
    const int r = e / kTile, c = e % kTile;
    if (c >= cols) continue;
    const int row = qt * kTile + r, col = kt * kTile + c;
    if (p.causal && col > row) continue;  // masked whatever the mask says
    const int64_t mi = base + row * p.m_sq + col * p.m_sk;
    if (p.mask_kind == 1) {
      const bool keep = static_cast<const uint8_t*>(p.mask)[mi] != 0;
      live |= keep;
      effect |= !keep;
    } else {
      const float x = to_f<T>(static_cast<const T*>(p.mask)[mi]);
      live |= x != -INFINITY;
      effect |= x != 0.f;
    }
  }
  live = __syncthreads_or(live);
  effect = __syncthreads_or(effect);
  if (threadIdx.x == 0) tiles[blockIdx.x] = !live ? kTileMasked : effect ? kTileMixed : kTileOpen;
}

// The mask values of tile (m0, n0) into shared memory as additive T (bool: 0 or -inf), zeros outside the
// scores; consecutive threads read consecutive keys.
template <class T>
__device__ __forceinline__ void load_mask_tile(T* sM, const AttnParams& p, int b, int h, int m0, int n0,
                                               int tid) {
  const int64_t base = b * p.m_sb + h * p.m_sh;
  for (int e = tid; e < kTile * kTile; e += kThreads) {
    const int r = e / kTile, c = e % kTile, row = m0 + r, col = n0 + c;
    T x = from_f<T>(0.f);
    if (row < p.Sq && col < p.Sk) {
      const int64_t mi = base + row * p.m_sq + col * p.m_sk;
      if (p.mask_kind == 1)
        x = from_f<T>(static_cast<const uint8_t*>(p.mask)[mi] ? 0.f : -INFINITY);
      else
        x = static_cast<const T*>(p.mask)[mi];
    }
    sM[r * kMaskLd + c] = x;
  }
}

// kMinBlocks 4 caps registers at 128 (4 blocks, 16 warps an SM); 1 lets ptxas use what it likes (185 for
// head dim 64: 2 blocks an SM). Which is faster depends on the shape, so both compete as tactics.
template <class T, int DP, bool VEC, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) flash_attention_kernel(const AttnParams p) {
  constexpr int BM = kTile, BN = kTile, LDS = DP + 8, KSTEPS = DP / 16, NT = BN / 8, OT = DP / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + BM * LDS;      // two stages
  T* sV = sK + 2 * BN * LDS;  // two stages
  T* sM = sV + 2 * BN * LDS;  // the staged mask tile (only allocated when there is a mask)
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const HeadSlices<T> hs = head_slices<T>(p);
  const int b = hs.b, h = hs.h;
  const T *q = hs.q, *k = hs.k, *v = hs.v;
  const int qtile = query_tile(p), m0 = qtile * BM;
  // Causal: keys past the block's last row are masked for every row, so those blocks are skipped.
  const int n_end = p.causal ? min(p.Sk, m0 + BM) : p.Sk;
  const int nblocks = (n_end + BN - 1) / BN;
  const uint8_t* cls_row = p.tiles ? p.tiles + b * p.t_sb + h * p.t_sh + qtile * p.t_sq : nullptr;
  const uint8_t cls_default = p.mask_kind != 0 ? kTileMixed : kTileOpen;
  // The first key tile at or after nb that has an unmasked score (block-uniform).
  auto next_live = [&](int nb) {
    if (cls_row)
      while (nb < nblocks && cls_row[nb] == kTileMasked) ++nb;
    return nb;
  };

  int cur = next_live(0);
  load_tile<T, BM, DP, VEC>(sQ, q, m0, p.Sq, p.D, p.q_ss, tid);
  cp_async_commit();
  if (cur < nblocks) {
    load_tile<T, BN, DP, VEC>(sK, k, cur * BN, p.Sk, p.D, p.k_ss, tid);
    load_tile<T, BN, DP, VEC>(sV, v, cur * BN, p.Sk, p.Dv, p.v_ss, tid);
  }
  cp_async_commit();
  cp_async_wait<1>();
  __syncthreads();
  uint32_t qf[KSTEPS][4];
#pragma unroll
  for (int kk = 0; kk < KSTEPS; ++kk)
    ldsm_x4(qf[kk], sQ + (warp * 16 + (lane & 15)) * LDS + kk * 16 + (lane >> 4) * 8);

  float o[OT][4];
#pragma unroll
  for (int t = 0; t < OT; ++t) o[t][0] = o[t][1] = o[t][2] = o[t][3] = 0.f;
  float row_m[2] = {-INFINITY, -INFINITY}, row_l[2] = {0.f, 0.f};
  const int r_lo = m0 + warp * 16 + (lane >> 2);  // this thread's rows: r_lo and r_lo + 8

  for (int st = 0; cur < nblocks; st ^= 1) {
    const int nxt = next_live(cur + 1);
    if (nxt < nblocks) {
      load_tile<T, BN, DP, VEC>(sK + (st ^ 1) * BN * LDS, k, nxt * BN, p.Sk, p.D, p.k_ss, tid);
      load_tile<T, BN, DP, VEC>(sV + (st ^ 1) * BN * LDS, v, nxt * BN, p.Sk, p.Dv, p.v_ss, tid);
    }
    cp_async_commit();
    const int n0 = cur * BN;
    const uint8_t cls = cls_row ? cls_row[cur] : cls_default;
    if (cls == kTileMixed) load_mask_tile<T>(sM, p, b, h, m0, n0, tid);  // sM's last readers synced below
    cp_async_wait<1>();
    __syncthreads();
    const T* cK = sK + st * BN * LDS;
    const T* cV = sV + st * BN * LDS;

    float s[NT][4];
#pragma unroll
    for (int t = 0; t < NT; ++t) s[t][0] = s[t][1] = s[t][2] = s[t][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < KSTEPS; ++kk)
#pragma unroll
      for (int np = 0; np < BN / 16; ++np) {
        uint32_t kf[4];
        ldsm_x4(kf, cK + (np * 16 + (lane >> 4) * 8 + (lane & 7)) * LDS + kk * 16 + ((lane >> 3) & 1) * 8);
        mma16816<T>(s[2 * np], qf[kk], kf[0], kf[1]);
        mma16816<T>(s[2 * np + 1], qf[kk], kf[2], kf[3]);
      }

    const bool mixed = cls == kTileMixed;
    const bool edge = mixed || n0 + BN > p.Sk || (p.causal && n0 + BN - 1 > m0);
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[t][e] * p.scale_log2;
        if (edge) {
          const int c = t * 8 + (lane & 3) * 2 + (e & 1), r = r_lo - m0 + (e >> 1) * 8;
          if (masked_out(p, m0 + r, n0 + c))
            x = -INFINITY;
          else if (mixed)
            x += to_f<T>(sM[r * kMaskLd + c]) * kLog2e;
        }
        s[t][e] = x;
      }

#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int t = 0; t < NT; ++t) mx = fmaxf(mx, fmaxf(s[t][2 * r], s[t][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(row_m[r], mx);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;  // all masked so far: exp2(-inf - 0) = 0
      const float alpha = exp2f(row_m[r] - m_use);
      row_m[r] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        s[t][2 * r] = exp2f(s[t][2 * r] - m_use);
        s[t][2 * r + 1] = exp2f(s[t][2 * r + 1] - m_use);
        sum += s[t][2 * r] + s[t][2 * r + 1];
      }
      row_l[r] = row_l[r] * alpha + sum;  // this thread's columns; the quad is summed at the end
#pragma unroll
      for (int t = 0; t < OT; ++t) {
        o[t][2 * r] *= alpha;
        o[t][2 * r + 1] *= alpha;
      }
    }

#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      // The S accumulators of key tiles 2kk and 2kk+1 are exactly the A operand layout of P.
      const uint32_t a[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                             pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < DP / 16; ++dp) {
        uint32_t vf[4];
        ldsm_x4_trans(vf,
                      cV + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LDS + dp * 16 + (lane >> 4) * 8);
        mma16816<T>(o[2 * dp], a, vf[0], vf[1]);
        mma16816<T>(o[2 * dp + 1], a, vf[2], vf[3]);
      }
    }
    __syncthreads();  // the K/V stage is refilled next iteration, the mask tile rewritten
    cur = nxt;
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = row_l[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = r_lo + r * 8;
    if (row >= p.Sq) continue;
    const float inv = l > 0.f ? 1.f / l : (p.nan_to_zero ? 0.f : __int_as_float(0x7fc00000));
    T* out = static_cast<T*>(p.o) + b * p.o_sb + h * p.o_sh + row * p.o_ss;
#pragma unroll
    for (int t = 0; t < OT; ++t) {
      const int col = t * 8 + (lane & 3) * 2;
      if (col + 1 < p.Dv && (p.Dv & 1) == 0) {  // an even row length keeps pairs 4-byte aligned
        *reinterpret_cast<uint32_t*>(out + col) = pack2<T>(o[t][2 * r] * inv, o[t][2 * r + 1] * inv);
      } else {
        if (col < p.Dv) out[col] = from_f<T>(o[t][2 * r] * inv);
        if (col + 1 < p.Dv) out[col + 1] = from_f<T>(o[t][2 * r + 1] * inv);
      }
    }
  }
}

template <class T, int DP, bool VEC, int kMinBlocks>
Status launch_flash(const AttnParams& p, int bh, cudaStream_t st) {
  constexpr size_t kBase = static_cast<size_t>(kTile + 4 * kTile) * (DP + 8) * sizeof(T);
  constexpr size_t kMaskTile = static_cast<size_t>(kTile) * kMaskLd * sizeof(T);
  static bool opted = false;
  auto kernel = flash_attention_kernel<T, DP, VEC, kMinBlocks>;
  KILN_RETURN_IF_ERROR(allow_smem(kernel, kBase + kMaskTile, opted));
  // Only a masked launch pays for the mask tile (it would cost unmasked ones occupancy).
  const size_t smem = kBase + (p.mask_kind != 0 ? kMaskTile : 0);
  const dim3 grid(static_cast<unsigned>(bh), static_cast<unsigned>((p.Sq + kTile - 1) / kTile));
  kernel<<<grid, kThreads, smem, st>>>(p);
  KILN_CUDA_CHECK_LAUNCH();
  return Status();
}

// Sorts the mask's 64x64 tiles into p.tiles (in the context's workspace, so it is capture-safe and
// stream-ordered with the flash kernel that reads it). Leaves p.tiles null, so every tile is treated as
// mixed, when the flags would not fit the workspace.
template <class T>
Status classify_mask_tiles(AttnParams& p, int64_t B, int64_t H, const Resources& res) {
  if (p.mask_kind == 0) return Status();
  const int64_t MB = p.m_sb != 0 ? B : 1, MH = p.m_sh != 0 ? H : 1;
  const int64_t QT = (p.Sq + kTile - 1) / kTile, KT = (p.Sk + kTile - 1) / kTile;
  // A mask that broadcasts over queries has one class per key tile, unless causal cuts the tiles by rows.
  const bool q_broadcast = p.m_sq == 0 && !p.causal;
  const int64_t QF = q_broadcast ? 1 : QT;
  const int64_t n = MB * MH * QF * KT;
  if (res.workspace == nullptr || static_cast<size_t>(n) > res.workspace_bytes || n > int64_t{2147483647})
    return Status();
  auto* tiles = static_cast<uint8_t*>(res.workspace);
  classify_mask_tiles_kernel<T><<<static_cast<unsigned>(n), kClassifyThreads, 0, res.stream>>>(
      p, tiles, static_cast<int>(MH), static_cast<int>(QF), static_cast<int>(KT), q_broadcast ? 1 : 0);
  KILN_CUDA_CHECK_LAUNCH();
  p.tiles = tiles;
  p.t_sq = q_broadcast ? 0 : KT;
  p.t_sh = MH == 1 ? 0 : QF * KT;
  p.t_sb = MB == 1 ? 0 : MH * QF * KT;
  return Status();
}

// Tactic 1 (128 registers, 4 blocks an SM) exists for head dims up to 64; above, it spills.
template <class T, int DP, bool VEC>
Status launch_flash_tactic(const AttnParams& p, int bh, cudaStream_t st, int tactic) {
  if constexpr (DP <= 64)
    if (tactic == 1) return launch_flash<T, DP, VEC, 4>(p, bh, st);
  return launch_flash<T, DP, VEC, 1>(p, bh, st);
}

// Times both tactics on the real buffers (a warm-up and 3 runs each) and returns the faster; Y is rewritten
// with the same values each run.
template <class T, int DP, bool VEC>
Result<int> time_flash_tactics(const AttnParams& p, int bh, cudaStream_t st) {
  cudaEvent_t start = nullptr, stop = nullptr;
  KILN_CUDA_CHECK(cudaEventCreate(&start));
  std::unique_ptr<CUevent_st, decltype(&cudaEventDestroy)> start_guard(start, cudaEventDestroy);
  KILN_CUDA_CHECK(cudaEventCreate(&stop));
  std::unique_ptr<CUevent_st, decltype(&cudaEventDestroy)> stop_guard(stop, cudaEventDestroy);
  float ms[2] = {0, 0};
  for (int t = 0; t < 2; ++t) {
    KILN_RETURN_IF_ERROR((launch_flash_tactic<T, DP, VEC>(p, bh, st, t)));
    KILN_CUDA_CHECK(cudaEventRecord(start, st));
    for (int r = 0; r < 3; ++r) KILN_RETURN_IF_ERROR((launch_flash_tactic<T, DP, VEC>(p, bh, st, t)));
    KILN_CUDA_CHECK(cudaEventRecord(stop, st));
    KILN_CUDA_CHECK(cudaEventSynchronize(stop));
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms[t], start, stop));
  }
  return ms[1] < ms[0] ? 1 : 0;
}

// Per-context memo of the flash tactic per problem (Resources::kernel_state["FusedAttention"]): an eager run
// then neither formats the engine cache's key nor takes its lock on every call.
using FlashKey = std::tuple<bool, int, bool, int64_t, int, int, int, int, bool>;
struct FlashTactics : KernelState {
  std::map<FlashKey, int> chosen;
};

// The flash kernel with the tactic the engine's cache holds for this problem; when it holds none and tactics
// are timed (never during capture), both are timed and the winner stored. Untimed: tactic 0.
template <class T, int DP, bool VEC>
Status run_flash(const AttnParams& p, int64_t B, int bh, Resources& res) {
  int tactic = 0;
  if constexpr (DP <= 64) {
    auto& slot = res.kernel_state["FusedAttention"];
    if (!slot) slot = std::make_shared<FlashTactics>();
    auto& memo = static_cast<FlashTactics&>(*slot).chosen;
    const FlashKey fk{std::is_same_v<T, __half>, DP, VEC, B, p.H, p.Sq, p.Sk, p.mask_kind, p.causal != 0};
    if (auto it = memo.find(fk); it != memo.end()) {
      tactic = it->second;
    } else {
      const std::string key = fmt::format("attn:{},{},{:d},{},{},{},{},{},{:d}", std::get<0>(fk) ? "f16" : "bf16",
                                          DP, VEC, B, p.H, p.Sq, p.Sk, p.mask_kind, p.causal != 0);
      std::optional<std::string> stored = res.tactics ? res.tactics->find(key) : std::nullopt;
      if (stored && (*stored == "0" || *stored == "1")) {
        tactic = *stored == "1";
        memo[fk] = tactic;
      } else if (res.time_tactics) {
        cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
        KILN_CUDA_CHECK(cudaStreamIsCapturing(res.stream, &capture));
        if (capture == cudaStreamCaptureStatusNone) {
          KILN_ASSIGN_OR_RETURN(tactic, (time_flash_tactics<T, DP, VEC>(p, bh, res.stream)));
          if (res.tactics) res.tactics->put(key, tactic ? "1" : "0");
          memo[fk] = tactic;
        }
      }
    }
  }
  res.tactic = tactic ? "flash, 128 registers (4 blocks/SM)" : "flash";
  return launch_flash_tactic<T, DP, VEC>(p, bh, res.stream, tactic);
}

template <class T, int DP>
Status dispatch_flash_vec(AttnParams p, int64_t B, int bh, bool vec, Resources& res) {
  KILN_RETURN_IF_ERROR(classify_mask_tiles<T>(p, B, p.H, res));
  return vec ? run_flash<T, DP, true>(p, B, bh, res) : run_flash<T, DP, false>(p, B, bh, res);
}

template <class T>
Status dispatch(const AttnParams& p, int64_t B, int bh, bool vec, Resources& res) {
  if constexpr (std::is_same_v<T, float>) {
    return dispatch_simt<T>(p, bh, res.stream);
  } else {
    const int dmax = std::max(p.D, p.Dv);
    if (dmax <= 32) return dispatch_flash_vec<T, 32>(p, B, bh, vec, res);
    if (dmax <= 64) return dispatch_flash_vec<T, 64>(p, B, bh, vec, res);
    if (dmax <= 128) return dispatch_flash_vec<T, 128>(p, B, bh, vec, res);
    return dispatch_simt<T>(p, bh, res.stream);
  }
}

bool aligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

// Logical sizes of a Q/K/V/Y operand stored as [B, H, S, X] or (bshd) [B, S, H, X], and its element strides
// of batch, head and row; batch/head strides are 0 on broadcast (size-1) dims.
struct Operand {
  int64_t b = 0, h = 0, s = 0, x = 0;
  int64_t sb = 0, sh = 0, ss = 0;
};
Operand operand(const DeviceTensor& t, bool bshd) {
  const auto& d = t.dims;
  Operand o;
  o.b = d[0];
  o.h = bshd ? d[2] : d[1];
  o.s = bshd ? d[1] : d[2];
  o.x = d[3];
  o.ss = bshd ? o.h * o.x : o.x;
  o.sh = o.h == 1 ? 0 : bshd ? o.x : o.s * o.x;
  o.sb = o.b == 1 ? 0 : o.h * o.s * o.x;
  return o;
}

// One of Q/K/V inside packed rows of [B, S, W] (packed=1): `heads` x `x` values at a row offset.
Operand packed_operand(const DeviceTensor& t, int64_t heads, int64_t x) {
  Operand o;
  o.b = t.dims[0];
  o.s = t.dims[1];
  o.h = heads;
  o.x = x;
  o.ss = t.dims[2];
  o.sh = heads == 1 ? 0 : x;
  o.sb = o.b == 1 ? 0 : o.s * o.ss;
  return o;
}

struct QkvOperands {
  Operand q, k, v;
};
// Q, K and V as the kernel addresses them: heads of one packed [B, S, W] QKV tensor, or three 4-D tensors
// (BHSD, or BSHD where the node says so).
QkvOperands qkv_operands(const ir::Node& node, const std::optional<ops::PackedQkv>& packed, const DeviceTensor& qt,
                         const DeviceTensor& kt, const DeviceTensor& vt) {
  if (packed)
    return {packed_operand(qt, packed->q_heads, packed->head_size),
            packed_operand(qt, packed->kv_heads, packed->head_size),
            packed_operand(qt, packed->kv_heads, packed->head_size)};
  return {operand(qt, node.attr_int("q_bshd", 0) != 0), operand(kt, node.attr_int("k_bshd", 0) != 0),
          operand(vt, node.attr_int("v_bshd", 0) != 0)};
}

Status run_attention(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  const std::optional<ops::PackedQkv> packed = ops::packed_qkv(node);
  const DeviceTensor& qt = ctx.input(0);
  const DeviceTensor& kt = packed ? qt : ctx.input(1);
  const DeviceTensor& vt = packed ? qt : ctx.input(2);
  DeviceTensor& y = ctx.output(0);
  if (packed ? (qt.rank() != 3 || y.rank() != 4) : (qt.rank() != 4 || kt.rank() != 4 || vt.rank() != 4 || y.rank() != 4))
    return ctx.error("needs 4-D Q, K, V (or one 3-D packed QKV); got ranks {}, {}, {}", qt.rank(), kt.rank(),
                     vt.rank());
  const QkvOperands qkv = qkv_operands(node, packed, qt, kt, vt);
  const Operand &q = qkv.q, &k = qkv.k, &v = qkv.v;
  Operand o = operand(y, node.attr_int("y_bshd", 0) != 0);
  const size_t es = dtype_size(qt.dtype);
  const char* const base = static_cast<const char*>(qt.data);
  const void* q_data = packed ? base + packed->q_off * es : qt.data;
  const void* k_data = packed ? base + packed->k_off * es : kt.data;
  const void* v_data = packed ? base + packed->v_off * es : vt.data;
  const int64_t B = o.b, H = o.h, Sq = q.s, D = q.x, Sk = k.s, Dv = v.x;
  if (y.numel() == 0) return Status();
  if (Sk == 0) {  // softmax over no keys, then an empty sum: zeros, as the CPU reference
    KILN_CUDA_CHECK(cudaMemsetAsync(y.data, 0, y.nbytes(), ctx.stream()));
    return Status();
  }
  if (D > 512 || Dv > 512)
    return ctx.error("head dims up to 512 are supported on the GPU, got D={} Dv={}", D, Dv);
  if (B * H > int64_t{2147483647} || Sq > int64_t{65535} * 16 || Sk > int64_t{2147483647} / 2)
    return ctx.error("shape [{}, {}, {}, {}] is too large for the attention kernel", B, H, Sq, Sk);
  if (k.h == 0 || v.h == 0 || H % k.h != 0 || H % v.h != 0)
    return ctx.error("K/V head counts {} and {} do not divide the query's {}", k.h, v.h, H);
  AttnParams p;
  p.q = q_data;
  p.k = k_data;
  p.v = v_data;
  p.o = y.data;
  p.H = static_cast<int>(H);
  p.Sq = static_cast<int>(Sq);
  p.Sk = static_cast<int>(Sk);
  p.D = static_cast<int>(D);
  p.Dv = static_cast<int>(Dv);
  p.k_group = static_cast<int>(H / k.h);
  p.v_group = static_cast<int>(H / v.h);
  p.q_sb = q.sb, p.q_sh = q.sh, p.q_ss = q.ss;
  p.k_sb = k.sb, p.k_sh = k.sh, p.k_ss = k.ss;
  p.v_sb = v.sb, p.v_sh = v.sh, p.v_ss = v.ss;
  p.o_sb = o.sb, p.o_sh = o.sh, p.o_ss = o.ss;
  if (ctx.has_input(3)) {
    const DeviceTensor& m = ctx.input(3);
    if (m.rank() > 4) return ctx.error("mask rank {} is above 4", m.rank());
    p.mask = m.data;
    p.mask_kind = m.dtype == DType::kBool ? 1 : 2;
    // Right-aligned strides onto [B, H, Sq, Sk], 0 on broadcast dims.
    int64_t str[4] = {0, 0, 0, 0};
    int64_t run = 1;
    for (int i = static_cast<int>(m.rank()) - 1, a = 3; i >= 0; --i, --a) {
      str[a] = m.dims[i] == 1 ? 0 : run;
      run *= m.dims[i];
    }
    p.m_sb = str[0];
    p.m_sh = str[1];
    p.m_sq = str[2];
    p.m_sk = str[3];
  }
  const double scale =
      node.has_attr("scale") ? node.attr_float("scale", 1.f) : 1.0 / std::sqrt(static_cast<double>(D));
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);
  p.causal = node.attr_int("causal", 0) != 0;
  p.nan_to_zero = node.attr_int("nan_to_zero", 0) != 0;
  // 16-byte rows: head dims (hence every row stride, BSHD's H*X included) multiples of 8 elements; a packed
  // row's width too.
  const bool vec = D % 8 == 0 && Dv % 8 == 0 && aligned16(q_data) && aligned16(k_data) && aligned16(v_data) &&
                   (!packed || qt.dims[2] % 8 == 0);
  const int bh = static_cast<int>(B * H);
  Resources& res = ctx.res();
  switch (qt.dtype) {
    case DType::kF32:
      return dispatch<float>(p, B, bh, vec, res);
    case DType::kF16:
      return dispatch<__half>(p, B, bh, vec, res);
    case DType::kBF16:
      return dispatch<__nv_bfloat16>(p, B, bh, vec, res);
    default:
      return ctx.error("dtype {} is not supported", dtype_name(qt.dtype));
  }
}

// Q, K, V of one float dtype the kernels know (packed: one input); a mask of bool or that dtype.
bool attention_supported(const ir::Node& n, const std::vector<DType>& dts) {
  if (dts.empty()) return false;
  const DType t = dts[0];
  if (t != DType::kF32 && t != DType::kF16 && t != DType::kBF16) return false;
  if (!ops::packed_qkv(n) && (dts.size() < 3 || dts[1] != t || dts[2] != t)) return false;
  return dts.size() < 4 || dts[3] == DType::kUndefined || dts[3] == DType::kBool || dts[3] == t;
}

}  // namespace

// The limits run_attention states, on dims alone: head dims, and sizes its grid and 32-bit indexing cover.
std::string attention_shape_limit(const ir::Node& node, const std::vector<InputFact>& in) {
  const std::optional<ops::PackedQkv> packed = ops::packed_qkv(node);
  auto tensor = [&](size_t i) {
    DeviceTensor t;
    if (i < in.size() && in[i].present) t.dims = in[i].dims;
    return t;
  };
  const DeviceTensor qt = tensor(0), kt = packed ? qt : tensor(1), vt = packed ? qt : tensor(2);
  if (packed ? qt.rank() != 3 : (qt.rank() != 4 || kt.rank() != 4 || vt.rank() != 4)) return "";  // a model error
  const QkvOperands qkv = qkv_operands(node, packed, qt, kt, vt);
  const Operand &q = qkv.q, &k = qkv.k, &v = qkv.v;
  if (q.x > 512 || v.x > 512) return fmt::format("head dims D={} Dv={} (at most 512)", q.x, v.x);
  if (q.b * q.h > int64_t{2147483647} || q.s > int64_t{65535} * 16 || k.s > int64_t{2147483647} / 2)
    return fmt::format("batch x heads {}, {} queries, {} keys (at most 2^31-1, 1048560, 2^30)", q.b * q.h, q.s, k.s);
  return "";
}

void register_cuda_attention(KernelTable& t) {
  t.add({"FusedAttention", run_attention, attention_supported});
}

}  // namespace kiln::cuda
