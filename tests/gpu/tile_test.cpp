// Tile (src/backends/cuda/kernels/tile.cu) against the CPU reference: every element width, repeats of 1 and
// more on every axis, empty inputs and outputs.
#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

void tile_case(DType dt, const Dims& d, const std::vector<int64_t>& reps, uint64_t seed) {
  SCOPED_TRACE(trace("Tile", dt, d, "repeats " + dims_to_string(reps)));
  ModelBuilder m;
  m.input("x", dt, sdims(d)).initializer("r", testing::i64_tensor({static_cast<int64_t>(reps.size())}, reps));
  m.node("Tile", {"x", "r"}, {"y"}).output("y");
  ewtest::check(m, {{"x", values(dt, d, seed)}});
}

TEST(GpuTile, RepeatsAndDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : all_dtypes()) {
    tile_case(dt, {3}, {4}, seed++);
    tile_case(dt, {2, 3}, {1, 1}, seed++);
    tile_case(dt, {2, 3}, {3, 1}, seed++);
    tile_case(dt, {2, 3}, {1, 5}, seed++);
    tile_case(dt, {2, 1, 3}, {2, 7, 2}, seed++);
    tile_case(dt, {2, 3, 4, 5}, {1, 2, 1, 3}, seed++);
    tile_case(dt, {2, 3}, {0, 2}, seed++);  // empty output
    tile_case(dt, {0, 3}, {2, 2}, seed++);
  }
  tile_case(DType::kF32, {1, 1, 768}, {8, 1, 1}, seed++);
  tile_case(DType::kF16, {33, 65}, {3, 2}, seed++);
}

}  // namespace
}  // namespace kiln
