// Where (src/backends/cuda/kernels/where.cu) against the CPU reference: every element width, broadcasting of
// all three operands (scalars, rows, both-sided, rank 0..6), empty outputs, misaligned inputs.
#include "gpu/ew_test_util.h"

namespace kiln {
namespace {

using ewtest::check;
using ewtest::sdims;
using testing::ModelBuilder;
using Dims = std::vector<int64_t>;

Tensor values(DType dt, const Dims& d, uint64_t seed) {
  if (dt == DType::kBool) return gputest::random_tensor(DType::kBool, d, seed);
  if (dt == DType::kI32 || dt == DType::kI64 || dt == DType::kU8 || dt == DType::kI8)
    return ewtest::ints(dt, d, seed, dt == DType::kU8 ? 0 : -100, 100);
  return ewtest::uniform(dt, d, seed, -5, 5);
}

void where_case(DType dt, const Dims& cd, const Dims& xd, const Dims& yd, uint64_t seed, bool misaligned = false) {
  SCOPED_TRACE("Where " + std::string(dtype_name(dt)) + " cond" + dims_to_string(cd) + " x" + dims_to_string(xd) +
               " y" + dims_to_string(yd));
  ModelBuilder m;
  m.input("c", DType::kBool, sdims(cd)).input("x", dt, sdims(xd)).input("y", dt, sdims(yd));
  m.node("Where", {"c", "x", "y"}, {"out"}).output("out");
  check(m,
        {{"c", gputest::random_tensor(DType::kBool, cd, seed)},
         {"x", values(dt, xd, seed + 1)},
         {"y", values(dt, yd, seed + 2)}},
        1, std::nullopt, misaligned);
}

TEST(GpuWhere, AllDtypesAndBroadcasts) {
  KILN_REQUIRE_GPU();
  struct P {
    Dims c, x, y;
  };
  const std::vector<P> pats = {
      {{}, {}, {}},
      {{7}, {7}, {7}},
      {{1031}, {1031}, {1031}},
      {{1031}, {}, {1031}},
      {{1031}, {1031}, {}},
      {{}, {1031}, {1031}},
      {{1031}, {}, {}},
      {{3, 1}, {1, 5}, {3, 5}},
      {{2, 1, 4}, {3, 1}, {4}},
      {{1, 1, 9, 9}, {2, 4, 9, 9}, {}},          // attention-mask style
      {{2, 1, 1, 9}, {2, 4, 9, 9}, {1}},
      {{2, 1, 3, 1, 2, 1}, {1, 2, 1, 3, 1, 2}, {2, 2, 3, 3, 2, 2}},
      {{0, 3}, {3}, {}},
      {{33, 65}, {65}, {33, 1}},
      // Innermost dims that are multiples of every vector width (vectorized broadcast path).
      {{2, 1, 16, 32}, {2, 4, 16, 32}, {}},
      {{1, 64}, {32, 64}, {32, 1}},
      {{32, 1}, {1, 64}, {32, 64}},
      {{4, 16}, {4, 16}, {16}},
  };
  uint64_t seed = 1;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64, DType::kBool, DType::kU8,
                   DType::kI8}) {
    for (const P& p : pats) {
      where_case(dt, p.c, p.x, p.y, seed);
      seed += 3;
    }
  }
}

TEST(GpuWhere, LargeAndMisaligned) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 100;
  for (DType dt : {DType::kF32, DType::kF16, DType::kI64, DType::kBool}) {
    where_case(dt, {1 << 20}, {1 << 20}, {1 << 20}, seed, true);
    where_case(dt, {1 << 20}, {}, {1 << 20}, seed + 3, true);
    where_case(dt, {1, 1, 129, 129}, {4, 8, 129, 129}, {}, seed + 6, true);
    where_case(dt, {1025}, {1025}, {1025}, seed + 9, true);
    where_case(dt, {4, 1, 128, 128}, {4, 8, 128, 128}, {}, seed + 12, true);
    seed += 15;
  }
}

}  // namespace
}  // namespace kiln
