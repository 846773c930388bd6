// Reduce* and ArgMax/ArgMin on the GPU against the CPU reference: row, column (and their split forms) and
// general layouts, keepdims, attribute vs input axes, noop_with_empty_axes, scalars, empty reductions, NaN/inf,
// integers, and large f16 magnitudes whose sums only fit an f32 accumulator.
#include "gpu/norm_reduce_test_util.h"

namespace kiln {
namespace {

using gputest::sdims;
using testing::ModelBuilder;

constexpr DType kFloats[] = {DType::kF32, DType::kF16, DType::kBF16};
constexpr const char* kFloatOps[] = {"ReduceSum", "ReduceMean", "ReduceMax",       "ReduceMin",      "ReduceProd",
                                     "ReduceL1",  "ReduceL2",   "ReduceLogSum",    "ReduceLogSumExp", "ReduceSumSquare"};
constexpr const char* kIntOps[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
                                   "ReduceSumSquare"};

bool axes_are_input(const std::string& op, int64_t opset) { return opset >= (op == "ReduceSum" ? 13 : 18); }

ModelBuilder reduce_model(const std::string& op, DType dt, const std::vector<int64_t>& dims,
                          std::optional<std::vector<int64_t>> axes, int64_t keepdims = 1, int64_t opset = 18,
                          std::optional<int64_t> noop = std::nullopt) {
  ModelBuilder b(opset);
  b.input("x", dt, sdims(dims));
  std::vector<std::string> ins = {"x"};
  const bool as_input = axes_are_input(op, opset);
  if (axes && as_input) {
    b.initializer("axes", testing::i64_tensor({static_cast<int64_t>(axes->size())}, *axes));
    ins.push_back("axes");
  }
  b.node(op, ins, {"y"}).attr("keepdims", keepdims);
  if (axes && !as_input) b.attr("axes", *axes);
  if (noop) b.attr("noop_with_empty_axes", *noop);
  b.output("y");
  return b;
}

// Inputs suited to each op: positive for LogSum (log of the sum), near 1 for Prod (no under/overflow).
Tensor reduce_input(const std::string& op, DType dt, const std::vector<int64_t>& dims, uint64_t seed) {
  if (op == "ReduceLogSum") return gputest::uniform_tensor(dt, dims, seed, 0.1, 1.0);
  if (op == "ReduceProd") return gputest::uniform_tensor(dt, dims, seed, 0.9, 1.1);
  return gputest::uniform_tensor(dt, dims, seed, -1.0, 1.0);
}

// f32 sums of thousands of terms differ from the double reference by ~1e-5 absolute near zero.
std::optional<gputest::Tolerance> reduce_tol(DType dt) {
  if (dt == DType::kF32) return gputest::Tolerance{2e-5, 1e-4};
  return std::nullopt;
}

void check_reduce(const std::string& op, DType dt, const std::vector<int64_t>& dims,
                  std::optional<std::vector<int64_t>> axes, int64_t keepdims, uint64_t seed, int64_t opset = 18) {
  SCOPED_TRACE(op + " " + gputest::dname(dt) + " " + dims_to_string(dims) +
               (axes ? " axes " + dims_to_string(*axes) : std::string(" all")) + " keepdims " +
               std::to_string(keepdims) + " opset " + std::to_string(opset));
  gputest::expect_both(reduce_model(op, dt, dims, axes, keepdims, opset), {{"x", reduce_input(op, dt, dims, seed)}}, 1,
                       reduce_tol(dt));
}

TEST(GpuReduce, RowReductionsOfManyLengths) {
  KILN_REQUIRE_GPU();
  for (const char* op : kFloatOps)
    for (DType dt : kFloats)
      for (int64_t n : {1, 3, 8, 31, 33, 127, 768, 1024, 1025, 4097, 20000}) {
        const int64_t rows = n <= 33 ? 41 : 5;
        check_reduce(op, dt, {rows, n}, std::vector<int64_t>{1}, 1, n);
        check_reduce(op, dt, {rows, n}, std::vector<int64_t>{-1}, 0, n + 1);
      }
}

TEST(GpuReduce, ColumnAndGeneralLayouts) {
  KILN_REQUIRE_GPU();
  struct Case {
    std::vector<int64_t> dims, axes;
  };
  const Case cases[] = {
      {{5, 33, 17}, {1}},        {{4097, 3}, {0}},          {{3, 1000, 70}, {1}},   {{2, 3, 4, 5}, {0}},
      {{2, 3, 4, 5}, {1, 2}},    {{3, 4, 5, 6}, {0, 2}},    {{3, 4, 5, 6}, {1, 3}}, {{3, 4, 5, 6}, {0, 3}},
      {{6, 5, 40, 7}, {0, 2}},   {{2, 3, 2, 5}, {0, 2}},    {{2, 3, 4, 5, 6}, {0, 2, 4}},
      {{1, 7, 1, 9}, {0, 2}},    {{1, 7, 1, 9}, {2, 3}},    {{7, 1, 9}, {1}},       {{2, 3, 4}, {0, 1, 2}},
      {{2, 3, 4}, {-1, -3}},     {{3, 40, 5, 60}, {1, 3}},  {{64, 16, 64}, {0, 2}},
  };
  for (const char* op : kFloatOps)
    for (DType dt : kFloats)
      for (const Case& c : cases)
        for (int64_t keepdims : {0, 1}) check_reduce(op, dt, c.dims, c.axes, keepdims, 7);
}

TEST(GpuReduce, FewLongRowsAndColumnsSplitAcrossBlocks) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL2", "ReduceLogSumExp"})
    for (DType dt : kFloats) {
      check_reduce(op, dt, {2, 300000}, std::vector<int64_t>{1}, 1, 1);      // rows, split
      check_reduce(op, dt, {2, 300001}, std::vector<int64_t>{1}, 1, 2);      // rows, split, not vectorized
      check_reduce(op, dt, {300, 700}, std::nullopt, 0, 3);                  // everything into one value
      check_reduce(op, dt, {20000, 40}, std::vector<int64_t>{0}, 1, 4);      // columns, split
      check_reduce(op, dt, {3, 50000, 5}, std::vector<int64_t>{1}, 0, 5);    // columns, split
    }
}

TEST(GpuReduce, AxesAttributeInputAndEmptyAxes) {
  KILN_REQUIRE_GPU();
  for (const char* op : kFloatOps)
    for (DType dt : kFloats) {
      const std::vector<int64_t> dims = {6, 7, 40};
      // Attribute form (opset 11) and input form (opset 18; ReduceSum's from 13).
      check_reduce(op, dt, dims, std::vector<int64_t>{1}, 1, 9, 11);
      check_reduce(op, dt, dims, std::vector<int64_t>{0, 2}, 0, 9, 11);
      check_reduce(op, dt, dims, std::nullopt, 1, 9, 11);
      check_reduce(op, dt, dims, std::vector<int64_t>{2}, 1, 9, 13);
      // Empty axes: all axes, or the input itself with noop_with_empty_axes.
      for (int64_t noop : {0, 1}) {
        SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt) + " noop " + std::to_string(noop));
        gputest::expect_both(reduce_model(op, dt, dims, std::vector<int64_t>{}, 1, 18, noop),
                             {{"x", reduce_input(op, dt, dims, 10)}}, 1, reduce_tol(dt));
      }
    }
}

TEST(GpuReduce, ScalarsAndEmptyReductions) {
  KILN_REQUIRE_GPU();
  for (const char* op : kFloatOps)
    for (DType dt : kFloats) {
      SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt));
      // Rank 0: one element in, one out.
      gputest::expect_on_device(reduce_model(op, dt, {}, std::nullopt, 1),
                                {{"x", gputest::make_tensor(dt, {}, [](int64_t) { return 0.75; })}});
      // Reducing an empty axis: the identity of each op (0, NaN, -inf, +inf, 1, ...).
      gputest::expect_on_device(reduce_model(op, dt, {4, 0, 3}, std::vector<int64_t>{1}, 1), {{"x", Tensor(dt, {4, 0, 3})}});
      gputest::expect_on_device(reduce_model(op, dt, {5, 0}, std::vector<int64_t>{1}, 0), {{"x", Tensor(dt, {5, 0})}});
      // Empty output.
      gputest::expect_on_device(reduce_model(op, dt, {0, 5}, std::vector<int64_t>{1}, 1), {{"x", Tensor(dt, {0, 5})}});
    }
}

TEST(GpuReduce, NanAndInfinities) {
  KILN_REQUIRE_GPU();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (const char* op : kFloatOps)
    for (DType dt : kFloats)
      for (int64_t n : {3, 33, 4097}) {
        // A long product of numbers below 1 underflows (to 0 in f32, later in double) and inf * 0 is NaN: the
        // result depends on the order of the products, so long products with infinities are left out.
        if (std::string(op) == "ReduceProd" && n > 33) continue;
        SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt) + " n=" + std::to_string(n));
        const std::vector<int64_t> dims = {6, n};
        Tensor r = testing::random_f32(dims, 70 + n);
        // Row 0: a NaN; row 1: all -inf; row 2: one +inf; row 3: -inf and numbers; row 4: NaN and +inf;
        // row 5: plain.
        Tensor x = gputest::make_tensor(dt, dims, [&](int64_t i) -> double {
          const int64_t row = i / n, k = i % n;
          const double v = r.data<float>()[i];
          if (row == 0) return k == n / 2 ? nan : v;
          if (row == 1) return -inf;
          if (row == 2) return k == n - 1 ? inf : v;
          if (row == 3) return k % 2 ? -inf : v;
          if (row == 4) return k == 0 ? nan : (k == n - 1 ? inf : v);
          return v;
        });
        gputest::expect_on_device(reduce_model(op, dt, dims, std::vector<int64_t>{1}, 1), {{"x", x}}, 1, reduce_tol(dt));
        // The same rows as columns.
        Tensor xt = gputest::make_tensor(dt, {n, 6}, [&](int64_t i) -> double { return x.get_as_double((i % 6) * n + i / 6); });
        gputest::expect_on_device(reduce_model(op, dt, {n, 6}, std::vector<int64_t>{0}, 0), {{"x", xt}}, 1, reduce_tol(dt));
      }
}

TEST(GpuReduce, LargeF16MagnitudesAccumulateInF32) {
  KILN_REQUIRE_GPU();
  // Values around 300: 4097 of them sum to ~1.2e6 and their squares to ~3.7e8, both far beyond f16's 65504;
  // the mean, the L2 norm (~19200) and the log-sum-exp (~308) fit.
  for (DType dt : kFloats)
    for (const char* op : {"ReduceMean", "ReduceL2", "ReduceLogSumExp", "ReduceSum"})
      for (int64_t n : {768, 4097, 20000}) {
        SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt) + " n=" + std::to_string(n));
        const std::vector<int64_t> dims = {3, n};
        auto m = reduce_model(op, dt, dims, std::vector<int64_t>{1}, 1);
        gputest::expect_on_device(m, {{"x", gputest::uniform_tensor(dt, dims, 80 + n, 290.0, 310.0)}}, 1, reduce_tol(dt));
        const std::vector<int64_t> cols = {n, 3};
        auto mc = reduce_model(op, dt, cols, std::vector<int64_t>{0}, 1);
        gputest::expect_on_device(mc, {{"x", gputest::uniform_tensor(dt, cols, 90 + n, 290.0, 310.0)}}, 1, reduce_tol(dt));
      }
}

TEST(GpuReduce, Integers) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kI32, DType::kI64})
    for (const char* op : kIntOps) {
      SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt));
      const bool prod = std::string(op) == "ReduceProd";
      const double lo = prod ? -3 : -50, hi = prod ? 4 : 50;
      const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> cases = {
          {{7, 6}, {1}}, {{6, 7}, {0}}, {{3, 4, 5}, {0, 2}}, {{40, 8}, {1}}, {{5, 3}, {}}};
      for (const auto& [dims, axes] : cases) {
        std::optional<std::vector<int64_t>> ax;
        if (!axes.empty()) ax = axes;
        gputest::expect_on_device(reduce_model(op, dt, dims, ax, 1), {{"x", gputest::uniform_tensor(dt, dims, 5, lo, hi)}});
      }
      if (!prod) {
        for (int64_t n : {1025, 5000})
          gputest::expect_both(reduce_model(op, dt, {3, n}, std::vector<int64_t>{1}, 0),
                               {{"x", gputest::uniform_tensor(dt, {3, n}, 6, lo, hi)}});
        gputest::expect_both(reduce_model(op, dt, {3000, 4}, std::vector<int64_t>{0}, 0),
                             {{"x", gputest::uniform_tensor(dt, {3000, 4}, 7, lo, hi)}});
      }
      // Empty reductions: 0, 0 (mean), lowest, max, 1...
      gputest::expect_on_device(reduce_model(op, dt, {4, 0}, std::vector<int64_t>{1}, 1), {{"x", Tensor(dt, {4, 0})}});
    }
}

// ---- ArgMax / ArgMin ------------------------------------------------------------------------------------------
ModelBuilder arg_model(const char* op, DType dt, const std::vector<int64_t>& dims, int64_t axis, int64_t keepdims,
                       int64_t last) {
  ModelBuilder b(13);
  b.input("x", dt, sdims(dims)).node(op, {"x"}, {"y"}).attr("axis", axis).attr("keepdims", keepdims);
  b.attr("select_last_index", last).output("y");
  return b;
}

TEST(GpuArgMaxMin, RowsColumnsTiesAndNan) {
  KILN_REQUIRE_GPU();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const char* op : {"ArgMax", "ArgMin"})
    for (DType dt : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64})
      for (int64_t last : {0, 1}) {
        SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt) + " last " + std::to_string(last));
        const bool is_int = dt == DType::kI32 || dt == DType::kI64;
        for (int64_t n : {1, 3, 31, 33, 127, 768, 1025, 2048, 2049, 4097}) {
          const std::vector<int64_t> dims = {5, n};
          // Few distinct values, so ties are everywhere.
          Tensor ties = gputest::uniform_tensor(dt, dims, 11 + n, 0.0, 3.0);
          if (!is_int) ties = gputest::make_tensor(dt, dims, [&](int64_t i) { return std::floor(ties.get_as_double(i)); });
          gputest::expect_on_device(arg_model(op, dt, dims, 1, 1, last), {{"x", ties}});
          gputest::expect_on_device(arg_model(op, dt, dims, -1, 0, last),
                                    {{"x", gputest::uniform_tensor(dt, dims, 12 + n, -1000, 1000)}});
          const std::vector<int64_t> cols = {n, 6};
          Tensor tc = gputest::uniform_tensor(dt, cols, 13 + n, 0.0, 3.0);
          if (!is_int) tc = gputest::make_tensor(dt, cols, [&](int64_t i) { return std::floor(tc.get_as_double(i)); });
          gputest::expect_on_device(arg_model(op, dt, cols, 0, 1, last), {{"x", tc}});
        }
        const std::vector<int64_t> d4 = {3, 4, 5, 6};
        for (int64_t axis : {0, 1, 2, 3})
          gputest::expect_on_device(arg_model(op, dt, d4, axis, axis % 2, last),
                                    {{"x", gputest::uniform_tensor(dt, d4, 14, 0.0, 4.0)}});
        gputest::expect_both(arg_model(op, dt, {300, 40}, 1, 1, last),
                             {{"x", gputest::uniform_tensor(dt, {300, 40}, 15, -100, 100)}});
        if (!is_int) {
          // NaN wins (first or last NaN); rows with several NaNs, a NaN first, a NaN last.
          for (int64_t n : {5, 33, 4097}) {
            const std::vector<int64_t> dims = {4, n};
            Tensor r = testing::random_f32(dims, 16 + n);
            Tensor x = gputest::make_tensor(dt, dims, [&](int64_t i) -> double {
              const int64_t row = i / n, k = i % n;
              if (row == 0 && (k == 1 || k == n - 2)) return nan;
              if (row == 1 && k == 0) return nan;
              if (row == 2 && k == n - 1) return nan;
              return r.data<float>()[i];
            });
            gputest::expect_on_device(arg_model(op, dt, dims, 1, 1, last), {{"x", x}});
            Tensor xt = gputest::make_tensor(dt, {n, 4}, [&](int64_t i) { return x.get_as_double((i % 4) * n + i / 4); });
            gputest::expect_on_device(arg_model(op, dt, {n, 4}, 0, 1, last), {{"x", xt}});
          }
        }
      }
}

}  // namespace
}  // namespace kiln
