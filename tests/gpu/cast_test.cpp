// Cast / CastLike / Expand (src/backends/cuda/kernels/cast.cu) against the CPU reference. Casts must be exact:
// every pair of f32/f16/bf16/i32/i64/bool/u8/i8 over values that hit truncation, clamping, NaN, infinities,
// f16 overflow/underflow, ties to even and int64 values that need double rounding.
#include <cstring>

#include "gpu/ew_test_util.h"

namespace kiln {
namespace {

using ewtest::check;
using ewtest::make_tensor;
using ewtest::sdims;
using testing::ModelBuilder;
using Dims = std::vector<int64_t>;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();
const gputest::Tolerance kExact{0.0, 0.0};

const std::vector<DType>& cast_dtypes() {
  static const std::vector<DType> v = {DType::kF32, DType::kF16, DType::kBF16, DType::kI32,
                                       DType::kI64, DType::kBool, DType::kU8,  DType::kI8};
  return v;
}

bool is_float_dt(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }

// Interesting source values for each dtype, then `extra` pseudo-random ones.
Tensor source(DType dt, int64_t extra, uint64_t seed) {
  std::vector<double> v;
  if (is_float_dt(dt)) {
    v = {0.0,     -0.0,     0.4,       -0.4,     0.5,         -0.5,     1.5,     -1.5,      2.5,
         -0.99,   127.9,    128.0,     -128.5,   -129.0,      255.5,    256.0,   300.0,     -300.0,
         65504.0, 65519.0,  65520.0,   70000.0,  1e5,         -1e5,     1e-8,    -6e-8,     3e-5,
         2147483520.0,      3e9,       -3e9,     9.3e18,      1e19,     -1e19,   kInf,      -kInf,
         kNaN,    3.14159265, 1.0 / 3.0, 16777217.0, 1.00390625, 1.01171875};
  } else if (dt == DType::kBool) {
    v = {0, 1, 1, 0};
  } else if (dt == DType::kU8) {
    v = {0, 1, 127, 128, 200, 255};
  } else if (dt == DType::kI8) {
    v = {-128, -127, -1, 0, 1, 100, 127};
  } else {  // i32 / i64 (the exact int64 extremes are written below)
    v = {0, 1, -1, 127, 128, 255, 256, -128, -129, 65504, 65519, 65520, 100000, 16777217, -16777217,
         2147483647.0, -2147483648.0};
  }
  const int64_t n = static_cast<int64_t>(v.size()) + extra;
  Tensor t = make_tensor(dt, {n}, v);
  Tensor r = dt == DType::kBool ? gputest::random_tensor(DType::kBool, {extra}, seed)
             : is_float_dt(dt)  ? ewtest::uniform(dt, {extra}, seed, -400, 400)
             : dt == DType::kU8 ? ewtest::ints(dt, {extra}, seed, 0, 256)
             : dt == DType::kI8 ? ewtest::ints(dt, {extra}, seed, -128, 128)
                                : ewtest::ints(dt, {extra}, seed, -100000, 100000);
  const size_t es = dtype_size(dt);
  std::memcpy(static_cast<char*>(t.raw()) + v.size() * es, r.raw(), r.nbytes());
  if (dt == DType::kI64 && extra >= 6) {  // values a double cannot hold exactly, and the int64 extremes
    int64_t* p = t.data<int64_t>() + v.size();
    p[0] = (int64_t{1} << 53) + 1;
    p[1] = (int64_t{1} << 62) + 12345;
    p[2] = std::numeric_limits<int64_t>::max();
    p[3] = std::numeric_limits<int64_t>::min();
    p[4] = (int64_t{1} << 31) + 7;
    p[5] = -(int64_t{1} << 40) - 3;
  }
  return t;
}

int64_t onnx_type(DType d) { return static_cast<int64_t>(d); }  // DType values are ONNX TensorProto types

void cast_case(DType from, DType to, const Tensor& x, bool like, bool misaligned) {
  SCOPED_TRACE(std::string(like ? "CastLike " : "Cast ") + std::string(dtype_name(from)) + " -> " +
               std::string(dtype_name(to)) + " " + dims_to_string(x.dims()));
  ModelBuilder m(like ? 15 : 13);
  m.input("x", from, sdims(x.dims()));
  std::map<std::string, Tensor> inputs = {{"x", x}};
  if (like) {
    m.input("t", to, {"2"}).node("CastLike", {"x", "t"}, {"y"});
    inputs["t"] = Tensor(to, {2});
  } else {
    m.node("Cast", {"x"}, {"y"}).attr("to", onnx_type(to));
  }
  m.output("y");
  check(m, inputs, 1, kExact, misaligned);
}

TEST(GpuCast, AllPairsExact) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType from : cast_dtypes()) {
    Tensor x = source(from, 1031, seed++);
    for (DType to : cast_dtypes()) cast_case(from, to, x, /*like=*/false, /*misaligned=*/true);
  }
}

TEST(GpuCast, CastLikeAndShapes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 100;
  for (DType from : cast_dtypes()) {
    Tensor x = source(from, 40, seed++);
    for (DType to : cast_dtypes()) cast_case(from, to, x, /*like=*/true, false);
  }
  // Rank 0..5, empty, large.
  const std::vector<Dims> shapes = {{}, {1}, {3}, {7}, {2, 3, 5}, {1, 2, 3, 4, 5}, {0}, {3, 0}, {1 << 20}};
  for (const Dims& s : shapes) {
    for (auto [from, to] : std::vector<std::pair<DType, DType>>{{DType::kF32, DType::kF16},
                                                               {DType::kF16, DType::kF32},
                                                               {DType::kF32, DType::kI64},
                                                               {DType::kI64, DType::kF32},
                                                               {DType::kBool, DType::kF32},
                                                               {DType::kF32, DType::kBool},
                                                               {DType::kI64, DType::kI32},
                                                               {DType::kBF16, DType::kF16}}) {
      Tensor x = from == DType::kBool ? gputest::random_tensor(DType::kBool, s, seed++)
                 : from == DType::kI64 ? ewtest::ints(from, s, seed++, -1000, 1000)
                                       : ewtest::uniform(from, s, seed++, -50, 50);
      cast_case(from, to, x, false, s.size() == 1);
    }
  }
}

// Round trip on the device: f32 -> f16 -> f32 and f32 -> i64 -> f32 as chains of GPU nodes.
TEST(GpuCast, ChainRunsOnGpu) {
  KILN_REQUIRE_GPU();
  ModelBuilder m;
  m.input("x", DType::kF32, {"5", "211"})
      .node("Cast", {"x"}, {"h"})
      .attr("to", onnx_type(DType::kF16))
      .node("Cast", {"h"}, {"y"})
      .attr("to", onnx_type(DType::kF32))
      .node("Cast", {"x"}, {"i"})
      .attr("to", onnx_type(DType::kI64))
      .node("Cast", {"i"}, {"z"})
      .attr("to", onnx_type(DType::kF32))
      .output("y")
      .output("z");
  check(m, {{"x", ewtest::uniform(DType::kF32, {5, 211}, 3, -70000, 70000)}}, 4, kExact);
}

// Expand: broadcast copies by element width, target shape on the host (initializer or graph input).
TEST(GpuExpand, ShapesAndDtypes) {
  KILN_REQUIRE_GPU();
  struct P {
    Dims in, shape;
  };
  const std::vector<P> pats = {
      {{3, 1}, {2, 3, 4}},      {{}, {5, 7}},           {{1}, {1031}},          {{4}, {3, 1, 4}},
      {{2, 1, 3}, {2, 5, 3}},   {{3, 4}, {3, 4}},       {{3, 4}, {1, 1, 3, 4}}, {{1, 4}, {3, 1}},
      {{0, 3}, {2, 0, 3}},      {{1, 3}, {0, 3}},       {{1, 1, 9, 9}, {2, 4, 9, 9}},
      {{2, 1, 2, 1, 2, 1, 2, 1}, {2, 2, 2, 2, 2, 2, 2, 2}}, {{129, 1}, {129, 1031}}, {{1031}, {64, 1031}},
      // Innermost dims that are multiples of every vector width (vectorized path).
      {{1, 64}, {16, 64}},      {{16, 1}, {16, 64}},    {{}, {5, 32}},          {{2, 1, 48}, {2, 7, 48}},
      {{1, 1024}, {33, 1024}},
  };
  uint64_t seed = 1;
  for (DType dt : {DType::kF32, DType::kF16, DType::kI64, DType::kBool, DType::kU8}) {
    for (const P& p : pats) {
      SCOPED_TRACE("Expand " + std::string(dtype_name(dt)) + dims_to_string(p.in) + " to " + dims_to_string(p.shape));
      Tensor x = dt == DType::kBool ? gputest::random_tensor(dt, p.in, seed++)
                 : dt == DType::kU8 ? ewtest::ints(dt, p.in, seed++, 0, 256)
                                    : gputest::random_tensor(dt, p.in, seed++, -50, 50);
      Tensor shape = testing::i64_tensor({static_cast<int64_t>(p.shape.size())}, p.shape);
      ModelBuilder m;
      m.input("x", dt, sdims(p.in)).initializer("shape", shape).node("Expand", {"x", "shape"}, {"y"}).output("y");
      check(m, {{"x", x}}, 1, kExact, true);
      // Shape as a graph input: uploaded in the device-input run, read back on the host for the kernel.
      ModelBuilder m2;
      m2.input("x", dt, sdims(p.in))
          .input("shape", DType::kI64, {std::to_string(p.shape.size())})
          .node("Expand", {"x", "shape"}, {"y"})
          .output("y");
      check(m2, {{"x", x}, {"shape", shape}}, 1, kExact);
    }
  }
}

}  // namespace
}  // namespace kiln
