// Unary elementwise CUDA kernels (src/backends/cuda/kernels/unary.cu) against the CPU reference.
#include <functional>

#include "gpu/ew_test_util.h"

namespace kiln {
namespace {

using ewtest::check;
using ewtest::make_tensor;
using ewtest::sdims;
using ewtest::uniform;
using testing::ModelBuilder;

using AttrFn = std::function<void(ModelBuilder&)>;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Values every float op sees once: signed zeros, halves (rounding), infinities, NaN, large and tiny magnitudes.
const std::vector<double> kSpecial = {0.0,  -0.0, 0.5,  -0.5, 1.5,  -1.5, 2.5,  -2.5,  1.0,   -1.0,  3.0,   -3.0,
                                      6.0,  -6.0, 29.5, 31.0, -31., 100., -100, 1e-3,  -1e-3, 1e4,   -1e4,  kInf,
                                      -kInf, kNaN, 0.25, 0.75, 2.0, -2.0, 10.0, -10.0, 1e-6, 65504, -65504, 0.999};

ModelBuilder unary_model(const std::string& op, DType dt, const std::vector<int64_t>& dims, const AttrFn& attrs,
                         int64_t opset = 17) {
  ModelBuilder b(opset);
  b.input("x", dt, sdims(dims)).node(op, {"x"}, {"y"});
  if (attrs) attrs(b);
  b.output("y");
  return b;
}

void run_case(const std::string& op, DType dt, const std::vector<int64_t>& dims, const Tensor& x,
              const AttrFn& attrs = nullptr, int64_t opset = 17, bool misaligned = false) {
  SCOPED_TRACE(op + " " + std::string(dtype_name(dt)) + " " + dims_to_string(dims));
  check(unary_model(op, dt, dims, attrs, opset), {{"x", x}}, 1, std::nullopt, misaligned);
}

struct FloatOp {
  std::string op;
  double lo, hi;  // input range of the random part
  AttrFn attrs = nullptr;
  int64_t opset = 17;
};

const std::vector<FloatOp>& float_ops() {
  static const std::vector<FloatOp> ops = {
      {"Exp", -10, 10},
      {"Log", 0.01, 100},
      {"Sqrt", 0, 100},
      {"Reciprocal", -10, 10},
      {"Sin", -10, 10},
      {"Cos", -10, 10},
      {"Tan", -1.4, 1.4},
      {"Asin", -1, 1},
      {"Acos", -1, 1},
      {"Atan", -10, 10},
      {"Sinh", -5, 5},
      {"Cosh", -5, 5},
      {"Asinh", -10, 10},
      {"Acosh", 1, 10},
      {"Atanh", -0.99, 0.99},
      {"Erf", -3, 3},
      {"Sigmoid", -10, 10},
      {"Tanh", -5, 5},
      {"Softplus", -40, 40},
      {"Softsign", -10, 10},
      {"Mish", -40, 40},
      {"HardSwish", -8, 8},
      {"Floor", -10, 10},
      {"Ceil", -10, 10},
      {"Round", -10, 10},
      {"Relu", -5, 5},
      {"Abs", -5, 5},
      {"Neg", -5, 5},
      {"Sign", -5, 5},
      {"Gelu", -6, 6, nullptr, 20},
      {"Gelu", -6, 6, [](ModelBuilder& b) { b.attr("approximate", std::string("tanh")); }, 20},
      {"Gelu", -6, 6, [](ModelBuilder& b) { b.attr("approximate", std::string("none")); }, 20},
      {"LeakyRelu", -5, 5},
      {"LeakyRelu", -5, 5, [](ModelBuilder& b) { b.attr("alpha", 0.2f); }},
      {"Elu", -5, 5},
      {"Elu", -5, 5, [](ModelBuilder& b) { b.attr("alpha", 0.5f); }},
      {"Selu", -5, 5},
      {"Selu", -5, 5, [](ModelBuilder& b) { b.attr("alpha", 1.5f).attr("gamma", 2.0f); }},
      {"Celu", -5, 5},
      {"Celu", -5, 5, [](ModelBuilder& b) { b.attr("alpha", 2.0f); }},
      {"HardSigmoid", -8, 8},
      {"HardSigmoid", -8, 8, [](ModelBuilder& b) { b.attr("alpha", 1.0f / 6.0f).attr("beta", 0.5f); }},
      {"ThresholdedRelu", -3, 3},
      {"ThresholdedRelu", -3, 3, [](ModelBuilder& b) { b.attr("alpha", 0.5f); }},
      {"Shrink", -3, 3},
      {"Shrink", -3, 3, [](ModelBuilder& b) { b.attr("lambd", 1.0f).attr("bias", 0.25f); }},
      {"IsNaN", -3, 3},
      {"IsInf", -3, 3},
      {"IsInf", -3, 3, [](ModelBuilder& b) { b.attr("detect_negative", int64_t{0}); }},
      {"IsInf", -3, 3, [](ModelBuilder& b) { b.attr("detect_positive", int64_t{0}); }},
  };
  return ops;
}

// Every float op and attribute variant, every float dtype: random values over the op's domain (odd size,
// not a multiple of any vector width) and the special values.
TEST(GpuUnary, FloatOpsAllDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (const FloatOp& f : float_ops()) {
    for (DType dt : ewtest::float_dtypes()) {
      run_case(f.op, dt, {1031}, uniform(dt, {1031}, seed++, f.lo, f.hi), f.attrs, f.opset);
      const std::vector<int64_t> sd = {static_cast<int64_t>(kSpecial.size())};
      run_case(f.op, dt, sd, make_tensor(dt, sd, kSpecial), f.attrs, f.opset);
    }
  }
}

// The vector/tail split and the grid-stride loop over many shapes and ranks (0..5), empty tensors included,
// with aligned and misaligned inputs.
TEST(GpuUnary, ShapesAndAlignment) {
  KILN_REQUIRE_GPU();
  const std::vector<std::vector<int64_t>> shapes = {{},          {1},           {3},        {7},      {8},
                                                    {127},       {1000},        {1025},     {4099},   {2, 3},
                                                    {3, 1, 7},   {2, 3, 5, 7},  {1, 2, 3, 4, 5},    {0},
                                                    {2, 0, 3},   {1 << 20},     {3, 333, 1001}};
  uint64_t seed = 100;
  for (const std::string op : {"Sigmoid", "Relu", "Gelu", "IsNaN"}) {
    for (DType dt : ewtest::float_dtypes()) {
      for (const auto& s : shapes) {
        const int64_t opset = op == "Gelu" ? 20 : 17;
        run_case(op, dt, s, uniform(dt, s, seed++, -4, 4), nullptr, opset, /*misaligned=*/true);
      }
    }
  }
}

TEST(GpuUnary, IntegerOps) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 200;
  for (DType dt : {DType::kI32, DType::kI64}) {
    for (const std::vector<int64_t>& s : std::vector<std::vector<int64_t>>{{}, {5}, {1031}, {3, 7, 11}, {0, 4}}) {
      Tensor x = ewtest::ints(dt, s, seed++, -1000, 1000);
      for (const std::string op : {"Abs", "Neg", "Sign", "Relu", "BitwiseNot"}) run_case(op, dt, s, x, nullptr, 18, true);
    }
    // Extremes (not the minimum, whose negation overflows: undefined behaviour on the CPU).
    const double big = dt == DType::kI32 ? 2147483647.0 : 9.0e18;
    Tensor x = make_tensor(dt, {6}, {0, 1, -1, big, -big, 12345});
    for (const std::string op : {"Abs", "Neg", "Sign", "Relu", "BitwiseNot"}) run_case(op, dt, {6}, x);
  }
}

TEST(GpuUnary, NotOnBool) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 300;
  for (const std::vector<int64_t>& s : std::vector<std::vector<int64_t>>{{}, {1}, {17}, {1031}, {4, 5, 6}, {0}}) {
    run_case("Not", DType::kBool, s, gputest::random_tensor(DType::kBool, s, seed++), nullptr, 17, true);
  }
}

// Clip: bounds as optional host scalars (opset >= 11: both, min only, max only, none, min > max, a bound fed as
// a graph input) and as attributes (opset 6); float and integer dtypes.
TEST(GpuUnary, Clip) {
  KILN_REQUIRE_GPU();
  const std::vector<int64_t> dims = {3, 343};
  uint64_t seed = 400;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64}) {
    const bool is_int = dt == DType::kI32 || dt == DType::kI64;
    Tensor x = is_int ? ewtest::ints(dt, dims, seed++, -100, 100) : uniform(dt, dims, seed++, -3, 3);
    Tensor lo = make_tensor(dt, {}, {is_int ? -20.0 : -0.5});
    Tensor hi = make_tensor(dt, {}, {is_int ? 30.0 : 1.25});
    struct V {
      std::string min, max;
    };
    for (const V& v : {V{"lo", "hi"}, V{"lo", ""}, V{"", "hi"}, V{"", ""}, V{"hi", "lo"}}) {
      ModelBuilder b(13);
      b.input("x", dt, sdims(dims)).initializer("lo", lo).initializer("hi", hi);
      std::vector<std::string> ins = {"x", v.min, v.max};
      while (!ins.empty() && ins.back().empty()) ins.pop_back();
      b.node("Clip", ins, {"y"}).output("y");
      SCOPED_TRACE("Clip " + std::string(dtype_name(dt)) + " min='" + v.min + "' max='" + v.max + "'");
      check(b, {{"x", x}});
    }
    {  // min arrives as a graph input (device-resident in the device-input run, copied to the host for the kernel)
      ModelBuilder b(13);
      b.input("x", dt, sdims(dims)).input("lo", dt, {}).initializer("hi", hi);
      b.node("Clip", {"x", "lo", "hi"}, {"y"}).output("y");
      check(b, {{"x", x}, {"lo", lo}});
    }
    if (!is_int) {  // opset 6: attributes, defaults and explicit
      ModelBuilder b(6);
      b.input("x", dt, sdims(dims)).node("Clip", {"x"}, {"y"}).attr("min", -0.75f).attr("max", 0.5f).output("y");
      check(b, {{"x", x}});
      ModelBuilder b2(6);
      b2.input("x", dt, sdims(dims)).node("Clip", {"x"}, {"y"}).attr("max", 0.1f).output("y");
      check(b2, {{"x", x}});
    }
  }
  // Special values through Clip (NaN passes through).
  const std::vector<int64_t> sd = {static_cast<int64_t>(kSpecial.size())};
  for (DType dt : ewtest::float_dtypes()) {
    ModelBuilder b(13);
    b.input("x", dt, sdims(sd)).initializer("lo", make_tensor(dt, {}, {-2.0})).initializer("hi", make_tensor(dt, {}, {2.0}));
    b.node("Clip", {"x", "lo", "hi"}, {"y"}).output("y");
    check(b, {{"x", make_tensor(dt, sd, kSpecial)}});
  }
}

// Chains stay on the device: Relu -> Sigmoid -> Neg all on the GPU.
TEST(GpuUnary, ChainRunsOnGpu) {
  KILN_REQUIRE_GPU();
  for (DType dt : ewtest::float_dtypes()) {
    ModelBuilder b;
    b.input("x", dt, {"4", "257"})
        .node("Relu", {"x"}, {"a"})
        .node("Sigmoid", {"a"}, {"b"})
        .node("Neg", {"b"}, {"y"})
        .output("y");
    check(b, {{"x", uniform(dt, {4, 257}, 7, -3, 3)}}, 3);
  }
}

}  // namespace
}  // namespace kiln
