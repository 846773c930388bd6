// ScatterND, ScatterElements and Scatter (src/backends/cuda/kernels/scatter.cu) against the CPU reference:
// plain writes for every element width with distinct targets (duplicates are undefined for reduction none),
// and the add/mul/max/min reductions with duplicate targets for f32/f64/f16/bf16/i32/i64, int32 and int64
// indices, negative indices, axes, empty updates.
#include <algorithm>

#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

// Reductions with duplicates run in an unspecified order: floats may differ by rounding of the sum order, and
// f16/bf16 round after every step here (the CPU reference keeps f32 until the end).
std::optional<gputest::Tolerance> reduction_tolerance(DType dt) {
  if (dt == DType::kF16) return gputest::Tolerance{1e-2, 1e-2};
  if (dt == DType::kBF16) return gputest::Tolerance{5e-2, 5e-2};
  if (dt == DType::kF32) return gputest::Tolerance{1e-5, 1e-5};
  return std::nullopt;
}

// Small values so products and sums of duplicates stay well inside every dtype.
Tensor small_values(DType dt, const Dims& d, uint64_t seed) {
  if (dt == DType::kI32 || dt == DType::kI64) return ewtest::ints(dt, d, seed, -3, 4);
  if (dt == DType::kF64) {
    Tensor r = ewtest::uniform(DType::kF32, d, seed, -2, 2);
    Tensor t(DType::kF64, d);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<double>()[i] = r.data<float>()[i];
    return t;
  }
  return ewtest::uniform(dt, d, seed, -2, 2);
}

void scatter_case(const std::string& op, DType dt, const Dims& d, const Tensor& idx, const Dims& ud,
                  const std::string& reduction, int64_t axis, uint64_t seed, int64_t opset = 18) {
  SCOPED_TRACE(trace(op, dt, d,
                     "indices " + std::string(dtype_name(idx.dtype())) + dims_to_string(idx.dims()) +
                         " updates " + dims_to_string(ud) + " reduction " + reduction));
  ModelBuilder m(opset);
  m.input("x", dt, sdims(d)).input("i", idx.dtype(), sdims(idx.dims())).input("u", dt, sdims(ud));
  m.node(op, {"x", "i", "u"}, {"y"});
  if (op != "ScatterND") m.attr("axis", axis);
  if (reduction != "none") m.attr("reduction", reduction);
  m.output("y");
  const bool red = reduction != "none";
  Tensor x = red ? small_values(dt, d, seed) : values(dt, d, seed);
  Tensor u = red ? small_values(dt, ud, seed + 1) : values(dt, ud, seed + 1);
  ewtest::check(m, {{"x", x}, {"i", idx}, {"u", u}}, 1, red ? reduction_tolerance(dt) : std::nullopt);
}

TEST(GpuScatterND, WritesAllDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : all_dtypes()) {
    for (DType it : {DType::kI32, DType::kI64}) {
      scatter_case("ScatterND", dt, {8}, index_tensor(it, {4, 1}, {4, 3, -7, 7}), {4}, "none", 0, seed++);
      scatter_case("ScatterND", dt, {4, 4, 4}, index_tensor(it, {2, 1}, {0, -2}), {2, 4, 4}, "none", 0,
                   seed++);
      scatter_case("ScatterND", dt, {4, 5, 3}, index_tensor(it, {3, 2}, {0, 1, 3, 4, -1, 0}), {3, 3}, "none",
                   0, seed++);
      scatter_case("ScatterND", dt, {3, 4}, index_tensor(it, {2, 2, 2}, {0, 0, 1, 1, 2, 2, 2, 3}), {2, 2},
                   "none", 0, seed++);
      scatter_case("ScatterND", dt, {3, 4}, index_tensor(it, {0, 2}, {}), {0}, "none", 0, seed++);
    }
  }
  // Large: a permutation of rows so every target is distinct.
  std::vector<int64_t> rows = seq(1031);
  std::reverse(rows.begin(), rows.end());
  scatter_case("ScatterND", DType::kF32, {1031, 7}, index_tensor(DType::kI64, {1031, 1}, rows), {1031, 7},
               "none", 0, seed++);
}

TEST(GpuScatterND, Reductions) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : {DType::kF32, DType::kF64, DType::kF16, DType::kBF16, DType::kI32, DType::kI64}) {
    for (const char* r : {"add", "mul", "max", "min"}) {
      scatter_case("ScatterND", dt, {8}, index_tensor(DType::kI64, {6, 1}, {4, 3, 4, -4, 0, 7}), {6}, r, 0,
                   seed++);
      scatter_case("ScatterND", dt, {4, 3}, index_tensor(DType::kI32, {5, 1}, {0, 1, 0, 3, 0}), {5, 3}, r, 0,
                   seed++);
      scatter_case("ScatterND", dt, {40, 40}, random_indices(DType::kI64, {600, 2}, seed++, -40, 40), {600},
                   r, 0, seed++);
    }
  }
}

// Indices of a permutation along axis for every position of idx_dims (distinct targets).
Tensor permuted_indices(DType it, const Dims& idx_dims, int64_t axis, int64_t dim, uint64_t seed) {
  Tensor t(it, idx_dims);
  const int64_t rank = static_cast<int64_t>(idx_dims.size());
  if (axis < 0) axis += rank;
  int64_t inner = 1;
  for (int64_t d = axis + 1; d < rank; ++d) inner *= idx_dims[d];
  const int64_t n = idx_dims[axis];
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t k = (i / inner) % n, line = (i / inner / n) * inner + i % inner;
    int64_t v = (k * 7 + static_cast<int64_t>(seed) + line) % dim;  // 7 is coprime with the dims used
    if ((i + static_cast<int64_t>(seed)) % 3 == 0) v -= dim;        // some negative
    if (it == DType::kI32)
      t.data<int32_t>()[i] = static_cast<int32_t>(v);
    else
      t.data<int64_t>()[i] = v;
  }
  return t;
}

TEST(GpuScatterElements, WritesAllDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : all_dtypes()) {
    for (DType it : {DType::kI32, DType::kI64}) {
      scatter_case("ScatterElements", dt, {5, 3}, permuted_indices(it, {5, 3}, 0, 5, seed), {5, 3}, "none", 0,
                   seed++);
      scatter_case("ScatterElements", dt, {3, 5}, permuted_indices(it, {2, 5}, 1, 5, seed), {2, 5}, "none", 1,
                   seed++);
      scatter_case("ScatterElements", dt, {2, 3, 5}, permuted_indices(it, {2, 2, 5}, -1, 5, seed), {2, 2, 5},
                   "none", -1, seed++);
      scatter_case("ScatterElements", dt, {2, 3}, index_tensor(it, {0, 3}, {}), {0, 3}, "none", 0, seed++);
    }
  }
  // The deprecated Scatter (opset 9-10) is ScatterElements without reductions.
  scatter_case("Scatter", DType::kF32, {5, 3}, permuted_indices(DType::kI64, {5, 3}, 0, 5, 3), {5, 3}, "none",
               0, 9, 10);
}

TEST(GpuScatterElements, Reductions) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : {DType::kF32, DType::kF64, DType::kF16, DType::kBF16, DType::kI32, DType::kI64}) {
    for (const char* r : {"add", "mul", "max", "min"}) {
      scatter_case("ScatterElements", dt, {3, 4}, random_indices(DType::kI64, {2, 4}, seed++, -4, 4), {2, 4},
                   r, 1, seed++);
      scatter_case("ScatterElements", dt, {40, 33}, random_indices(DType::kI32, {40, 33}, seed++, -40, 40),
                   {40, 33}, r, 0, seed++);
    }
  }
}

}  // namespace
}  // namespace kiln
