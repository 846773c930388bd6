// Softmax / LogSoftmax on the GPU against the CPU reference: warp rows (n <= 1024), block rows (cached and
// three-pass), strided rows (axis not last), opset < 13 flattening, -inf masks, large f16 magnitudes.
#include "gpu/norm_reduce_test_util.h"

namespace kiln {
namespace {

using gputest::sdims;
using testing::ModelBuilder;

constexpr DType kFloats[] = {DType::kF32, DType::kF16, DType::kBF16};
constexpr const char* kOps[] = {"Softmax", "LogSoftmax"};

ModelBuilder softmax_model(const char* op, DType dt, const std::vector<int64_t>& dims, std::optional<int64_t> axis,
                           int64_t opset = 17) {
  ModelBuilder b(opset);
  b.input("x", dt, sdims(dims)).node(op, {"x"}, {"y"});
  if (axis) b.attr("axis", *axis);
  b.output("y");
  return b;
}

TEST(GpuSoftmax, LastAxisRowLengths) {
  KILN_REQUIRE_GPU();
  // Warp rows (1..1024, vectorized when n % (16 / sizeof) == 0), block rows cached (1025..16384) and
  // three-pass (20000, 20001).
  const int64_t lengths[] = {1,   3,    8,    16,   31,   32,   33,   64,    127,  128,
                             768, 1000, 1024, 1025, 2048, 4097, 8192, 20000, 20001};
  for (const char* op : kOps)
    for (DType dt : kFloats)
      for (int64_t n : lengths) {
        SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt) + " n=" + std::to_string(n));
        const int64_t rows = n <= 33 ? 67 : (n <= 1024 ? 13 : 3);
        const std::vector<int64_t> dims = {rows, n};
        gputest::expect_both(softmax_model(op, dt, dims, std::nullopt),
                             {{"x", gputest::uniform_tensor(dt, dims, 100 + n, -4.0, 4.0)}});
      }
}

TEST(GpuSoftmax, HigherRanksAndStridedAxes) {
  KILN_REQUIRE_GPU();
  for (const char* op : kOps)
    for (DType dt : kFloats) {
      SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt));
      const std::vector<int64_t> d4 = {2, 5, 3, 7};
      for (int64_t axis : {0, 1, 2, 3, -1, -2, -3, -4})
        gputest::expect_on_device(softmax_model(op, dt, d4, axis), {{"x", gputest::random_tensor(dt, d4, 7)}});
      const std::vector<int64_t> d5 = {2, 3, 4, 5, 6};
      gputest::expect_on_device(softmax_model(op, dt, d5, int64_t{2}), {{"x", gputest::random_tensor(dt, d5, 8)}});
      // Long strided rows (softmax over channels of an image) and many short ones.
      const std::vector<int64_t> img = {2, 1500, 3};
      gputest::expect_both(softmax_model(op, dt, img, int64_t{1}), {{"x", gputest::random_tensor(dt, img, 9)}});
      const std::vector<int64_t> wide = {3, 4, 1000};
      gputest::expect_both(softmax_model(op, dt, wide, int64_t{1}), {{"x", gputest::random_tensor(dt, wide, 10)}});
      // Rank 1.
      gputest::expect_on_device(softmax_model(op, dt, {37}, std::nullopt), {{"x", gputest::random_tensor(dt, {37}, 11)}});
    }
}

TEST(GpuSoftmax, Opset11FlattensAtAxis) {
  KILN_REQUIRE_GPU();
  for (const char* op : kOps)
    for (DType dt : kFloats) {
      SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt));
      const std::vector<int64_t> dims = {2, 3, 4, 5};
      for (std::optional<int64_t> axis : {std::optional<int64_t>{}, std::optional<int64_t>{0},
                                          std::optional<int64_t>{2}, std::optional<int64_t>{-1}})
        gputest::expect_on_device(softmax_model(op, dt, dims, axis, 11), {{"x", gputest::random_tensor(dt, dims, 12)}});
      const std::vector<int64_t> big = {3, 40, 50};  // rows of 2000 from axis 1
      gputest::expect_both(softmax_model(op, dt, big, std::nullopt, 11), {{"x", gputest::random_tensor(dt, big, 13)}});
    }
}

TEST(GpuSoftmax, MaskedRowsWithMinusInfinity) {
  KILN_REQUIRE_GPU();
  const double inf = std::numeric_limits<double>::infinity();
  for (const char* op : kOps)
    for (DType dt : kFloats)
      for (int64_t n : {1, 3, 33, 768, 1025, 4097, 20001}) {
        SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt) + " n=" + std::to_string(n));
        const std::vector<int64_t> dims = {4, n};
        Tensor r = testing::random_f32(dims, 20 + n);
        // Row 0: causal-style mask (upper half -inf); row 1: fully masked (NaN, as the reference); row 2: one
        // live element; row 3: +inf present (NaN, as the reference).
        Tensor x = gputest::make_tensor(dt, dims, [&](int64_t i) -> double {
          const int64_t row = i / n, k = i % n;
          if (row == 0) return k > n / 2 ? -inf : r.data<float>()[i];
          if (row == 1) return -inf;
          if (row == 2) return k == n / 3 ? 1.0 : -inf;
          return k == n - 1 ? inf : r.data<float>()[i];
        });
        gputest::expect_on_device(softmax_model(op, dt, dims, std::nullopt), {{"x", x}});
        // Strided forms of the same masks: 4 columns (a thread per row) and 37 (32-column tiles).
        for (int64_t cols : {4, 37}) {
          const std::vector<int64_t> tdims = {n, cols};
          Tensor xt = gputest::make_tensor(dt, tdims, [&](int64_t i) -> double {
            const int64_t k = i / cols, row = (i % cols) % 4;
            const double v = r.data<float>()[row * n + k];
            if (row == 0) return k > n / 2 ? -inf : v;
            if (row == 1) return -inf;
            if (row == 2) return k == n / 3 ? 1.0 : -inf;
            return k == n - 1 ? inf : v;
          });
          gputest::expect_on_device(softmax_model(op, dt, tdims, int64_t{0}), {{"x", xt}});
        }
      }
}

TEST(GpuSoftmax, LargeMagnitudesStayFinite) {
  KILN_REQUIRE_GPU();
  // exp(300) overflows f32 and f16 without the max subtraction; the sum of 4097 terms overflows an f16 sum.
  for (const char* op : kOps)
    for (DType dt : kFloats)
      for (int64_t n : {31, 768, 4097}) {
        SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt) + " n=" + std::to_string(n));
        const std::vector<int64_t> dims = {5, n};
        gputest::expect_both(softmax_model(op, dt, dims, std::nullopt),
                             {{"x", gputest::uniform_tensor(dt, dims, 30 + n, 295.0, 305.0)}});
        // Nearly equal logits: the sum is ~n, far beyond the f16 range for 4097 * exp(0).
        gputest::expect_both(softmax_model(op, dt, dims, std::nullopt),
                             {{"x", gputest::uniform_tensor(dt, dims, 40 + n, 299.9, 300.0)}});
      }
}

TEST(GpuSoftmax, EmptyTensors) {
  KILN_REQUIRE_GPU();
  for (const char* op : kOps)
    for (DType dt : kFloats) {
      gputest::expect_on_device(softmax_model(op, dt, {0, 5}, std::nullopt), {{"x", Tensor(dt, {0, 5})}});
      gputest::expect_on_device(softmax_model(op, dt, {4, 0}, std::nullopt), {{"x", Tensor(dt, {4, 0})}});
      gputest::expect_on_device(softmax_model(op, dt, {3, 0, 2}, int64_t{1}), {{"x", Tensor(dt, {3, 0, 2})}});
    }
}

}  // namespace
}  // namespace kiln
