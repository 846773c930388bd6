// Transpose (src/backends/cuda/kernels/transpose.cu) against the CPU reference: every element width, the
// attention perms of the real models ([0,2,1,3], [1,0,2], [0,2,1]), NCHW<->NHWC, the default reversed perm,
// rank 1..8, odd sizes that are not multiples of the 32x32 tile, empty tensors and misaligned inputs.
#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

void transpose_case(DType dt, const Dims& d, const std::vector<int64_t>& perm, uint64_t seed,
                    bool misaligned = false) {
  SCOPED_TRACE(trace("Transpose", dt, d, "perm " + dims_to_string(perm)));
  ModelBuilder m;
  m.input("x", dt, sdims(d)).node("Transpose", {"x"}, {"y"});
  if (!perm.empty()) m.attr("perm", perm);
  m.output("y");
  ewtest::check(m, {{"x", values(dt, d, seed)}}, 1, std::nullopt, misaligned);
}

TEST(GpuTranspose, PermsShapesAndDtypes) {
  KILN_REQUIRE_GPU();
  struct P {
    Dims d;
    std::vector<int64_t> perm;  // empty: default (reversed)
  };
  const std::vector<P> cases = {
      {{7}, {0}},
      {{1, 1}, {1, 0}},
      {{3, 5}, {1, 0}},
      {{127, 129}, {1, 0}},
      {{2, 7, 3, 5}, {0, 2, 1, 3}},
      {{2, 9, 4, 64}, {0, 2, 1, 3}},   // attention heads, f32 rows of 256 bytes
      {{2, 16, 12, 2}, {0, 2, 1, 3}},  // tiny head dim: wide units then a tile transpose
      {{5, 3, 7}, {1, 0, 2}},
      {{2, 33, 65}, {0, 2, 1}},  // last-two swap, not tile multiples
      {{3, 64, 32}, {0, 2, 1}},
      {{2, 3, 7, 9}, {0, 2, 3, 1}},  // NCHW -> NHWC
      {{2, 7, 9, 3}, {0, 3, 1, 2}},  // NHWC -> NCHW
      {{2, 3, 4, 5, 6}, {}},         // default perm reverses
      {{2, 1, 3, 2, 1, 2, 3, 2}, {7, 6, 5, 4, 3, 2, 1, 0}},
      {{2, 3, 2, 3, 2, 3, 2, 3}, {1, 0, 3, 2, 5, 4, 7, 6}},
      {{0, 3}, {1, 0}},
      {{4, 0, 5}, {2, 0, 1}},
      {{1, 5, 1}, {2, 1, 0}},
  };
  uint64_t seed = 1;
  for (DType dt : all_dtypes())
    for (const P& p : cases) transpose_case(dt, p.d, p.perm, seed++);
}

TEST(GpuTranspose, LargeAndMisaligned) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 100;
  for (DType dt : {DType::kF32, DType::kF16, DType::kI64, DType::kU8}) {
    transpose_case(dt, {2, 128, 12, 64}, {0, 2, 1, 3}, seed++, true);  // GPT-2 / BERT heads
    transpose_case(dt, {2, 12, 128, 64}, {0, 2, 1, 3}, seed++, true);
    transpose_case(dt, {2, 12, 64, 128}, {0, 1, 3, 2}, seed++, true);  // K^T
    transpose_case(dt, {197, 2, 768}, {1, 0, 2}, seed++, true);        // ViT
    transpose_case(dt, {2, 768, 197}, {0, 2, 1}, seed++, true);
    transpose_case(dt, {1031, 1, 33}, {2, 1, 0}, seed++, true);
  }
}

}  // namespace
}  // namespace kiln
