// Binary / variadic elementwise CUDA kernels (src/backends/cuda/kernels/binary.cu) against the CPU reference:
// every op and dtype over numpy broadcasting patterns (rank 0..8, scalars, empty tensors), special values
// (NaN propagation in Max/Min, division by zero), variadic Max/Min/Sum/Mean with 1..N inputs.
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
using Dims = std::vector<int64_t>;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

bool is_int(DType dt) { return dt == DType::kI32 || dt == DType::kI64; }

const std::vector<DType>& numeric_dtypes() {
  static const std::vector<DType> v = {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64};
  return v;
}

// Broadcasting patterns: same shape, scalars on either side, rows/columns, channel bias, both-sided
// broadcasts, high ranks (8 dims that cannot merge), sizes that are not multiples of vector widths, empty.
const std::vector<std::pair<Dims, Dims>>& patterns() {
  static const std::vector<std::pair<Dims, Dims>> p = {
      {{}, {}},
      {{1}, {1}},
      {{7}, {7}},
      {{1031}, {1031}},
      {{2, 3, 5, 7}, {2, 3, 5, 7}},
      {{1031}, {}},
      {{}, {3, 7}},
      {{1}, {4, 5}},
      {{4, 1}, {1, 5}},
      {{3, 4, 5}, {5}},
      {{3, 4, 5}, {4, 1}},
      {{2, 3, 4, 5}, {3, 1, 1}},
      {{1, 3, 1, 5}, {2, 1, 4, 1}},
      {{2, 1, 3, 1, 2}, {1, 4, 1, 5, 1}},
      {{2, 1, 2, 1, 2, 1, 2, 1}, {1, 2, 1, 2, 1, 2, 1, 2}},
      {{33, 127}, {127}},
      {{0, 3}, {1, 3}},
      {{2, 0}, {}},
  };
  return p;
}

// Operand values: floats in [-3, 3) (no exact zeros needed), integers in [-20, 20) (zeros included).
Tensor operand(DType dt, const Dims& d, uint64_t seed, double lo = -3, double hi = 3) {
  if (is_int(dt)) return ewtest::ints(dt, d, seed, -20, 20);
  return uniform(dt, d, seed, lo, hi);
}

void binary_case(const std::string& op, DType da, const Dims& a_dims, const Tensor& a, DType db, const Dims& b_dims,
                 const Tensor& b, const AttrFn& attrs = nullptr, int64_t opset = 17, bool misaligned = false) {
  SCOPED_TRACE(op + " " + std::string(dtype_name(da)) + dims_to_string(a_dims) + " , " +
               std::string(dtype_name(db)) + dims_to_string(b_dims));
  ModelBuilder m(opset);
  m.input("a", da, sdims(a_dims)).input("b", db, sdims(b_dims)).node(op, {"a", "b"}, {"y"});
  if (attrs) attrs(m);
  m.output("y");
  check(m, {{"a", a}, {"b", b}}, 1, std::nullopt, misaligned);
}

void all_patterns(const std::string& op, DType dt, uint64_t& seed, const AttrFn& attrs = nullptr,
                  int64_t opset = 17) {
  for (const auto& [ad, bd] : patterns()) {
    binary_case(op, dt, ad, operand(dt, ad, seed), dt, bd, operand(dt, bd, seed + 1), attrs, opset);
    seed += 2;
  }
}

TEST(GpuBinary, ArithmeticAllDtypesAllPatterns) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (const std::string op : {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "PRelu"})
    for (DType dt : numeric_dtypes()) all_patterns(op, dt, seed);
  for (DType dt : numeric_dtypes()) {
    all_patterns("Mod", dt, seed, [](ModelBuilder& b) { b.attr("fmod", int64_t{1}); });
    all_patterns("Mod", dt, seed);  // floor modulo (the CPU computes it for floats too)
  }
}

TEST(GpuBinary, ComparisonsAndLogic) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1000;
  for (const std::string op : {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"}) {
    for (DType dt : numeric_dtypes()) {
      for (const auto& [ad, bd] : patterns()) {
        // Few distinct values so that equality happens often.
        Tensor a = ewtest::ints(dt, ad, seed++, -3, 3), b = ewtest::ints(dt, bd, seed++, -3, 3);
        binary_case(op, dt, ad, a, dt, bd, b);
      }
    }
  }
  for (const std::string op : {"Equal", "And", "Or", "Xor"}) {
    for (const auto& [ad, bd] : patterns()) {
      binary_case(op, DType::kBool, ad, gputest::random_tensor(DType::kBool, ad, seed++), DType::kBool, bd,
                  gputest::random_tensor(DType::kBool, bd, seed++));
    }
  }
}

// NaN propagation (Max/Min), infinities, signed zeros, division by zero, comparisons with NaN.
TEST(GpuBinary, SpecialValues) {
  KILN_REQUIRE_GPU();
  const std::vector<double> av = {kNaN, 1.0, kNaN, -0.0, 0.0, kInf, -kInf, 2.0, -3.5, 7.0, 0.0, -0.0, 5.5, kInf};
  const std::vector<double> bv = {1.0, kNaN, kNaN, 0.0, -0.0, 1.0, kInf, 0.0, 0.0, -2.0, 0.0, 3.0, -2.5, kInf};
  const Dims d = {static_cast<int64_t>(av.size())};
  for (DType dt : ewtest::float_dtypes()) {
    Tensor a = make_tensor(dt, d, av), b = make_tensor(dt, d, bv);
    for (const std::string op : {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "PRelu", "Pow", "Equal",
                                 "Less", "Greater", "LessOrEqual", "GreaterOrEqual"})
      binary_case(op, dt, d, a, dt, d, b);
    binary_case("Mod", dt, d, a, dt, d, b, [](ModelBuilder& m) { m.attr("fmod", int64_t{1}); });
    binary_case("Mod", dt, d, a, dt, d, b);
  }
  // Integer division and modulo by zero give 0; negative operands truncate (Div, fmod) or floor (Mod).
  const std::vector<double> ai = {7, -7, 7, -7, 0, 5, -5, 9, -9, 100, -100, 3};
  const std::vector<double> bi = {2, 2, -2, -2, 3, 0, 0, 1, -1, 7, 7, -4};
  const Dims di = {static_cast<int64_t>(ai.size())};
  for (DType dt : {DType::kI32, DType::kI64}) {
    Tensor a = make_tensor(dt, di, ai), b = make_tensor(dt, di, bi);
    for (const std::string op : {"Div", "Max", "Min", "PRelu"}) binary_case(op, dt, di, a, dt, di, b);
    binary_case("Mod", dt, di, a, dt, di, b, [](ModelBuilder& m) { m.attr("fmod", int64_t{1}); });
    binary_case("Mod", dt, di, a, dt, di, b);
    // Broadcast divisor 0.
    binary_case("Div", dt, di, a, dt, {}, make_tensor(dt, {}, {0}));
    binary_case("Mod", dt, di, a, dt, {}, make_tensor(dt, {}, {0}));
  }
}

// Large tensors: the vectorized flat path, the 32-bit indexer with many blocks, and misaligned inputs.
TEST(GpuBinary, LargeAndMisaligned) {
  KILN_REQUIRE_GPU();
  const std::vector<std::pair<Dims, Dims>> big = {
      {{1 << 20}, {1 << 20}}, {{1 << 20}, {}}, {{}, {1 << 20}}, {{257, 4099}, {4099}}, {{8, 64, 33, 17}, {64, 1, 1}},
      {{1025}, {1025}},       {{3, 1000}, {3, 1}},
      // Innermost dim a multiple of every vector width: the vectorized broadcast path (and, misaligned, its
      // scalar fallback).
      {{16, 2048}, {2048}}, {{4, 8, 64, 64}, {8, 1, 1}}, {{64, 1}, {64, 256}}, {{2, 1, 8, 32}, {1, 3, 8, 32}},
      {{5, 16}, {16}}};
  uint64_t seed = 5000;
  for (DType dt : numeric_dtypes()) {
    for (const auto& [ad, bd] : big) {
      binary_case("Add", dt, ad, operand(dt, ad, seed), dt, bd, operand(dt, bd, seed + 1), nullptr, 17, true);
      binary_case("Less", dt, ad, operand(dt, ad, seed + 2), dt, bd, operand(dt, bd, seed + 3), nullptr, 17, true);
      seed += 4;
    }
  }
}

// Pow: float bases with every exponent dtype (scalar exponents 2, 0.5, 3 and per-element), integer bases with
// integer and f32 exponents.
TEST(GpuBinary, Pow) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 7000;
  for (DType da : ewtest::float_dtypes()) {
    for (DType db : numeric_dtypes()) {
      for (const auto& [ad, bd] : patterns()) {
        Tensor a = uniform(da, ad, seed++, 0.1, 4);  // positive bases: real results for any exponent
        Tensor b = is_int(db) ? ewtest::ints(db, bd, seed++, -3, 4) : uniform(db, bd, seed++, -2, 3);
        binary_case("Pow", da, ad, a, db, bd, b);
      }
      // Negative bases with integer-valued exponents; scalar exponents 2, 3 and 0.5.
      Tensor neg = uniform(da, {1031}, seed++, -3, 3);
      binary_case("Pow", da, {1031}, neg, db, {1031}, ewtest::ints(db, {1031}, seed++, 0, 4));
      for (double e : {2.0, 3.0, 0.5}) {
        if (is_int(db) && e == 0.5) continue;
        binary_case("Pow", da, {1031}, neg, db, {}, make_tensor(db, {}, {e}));
      }
    }
  }
  for (DType da : {DType::kI32, DType::kI64}) {
    for (DType db : {DType::kI32, DType::kI64, DType::kF32}) {
      for (const auto& [ad, bd] : patterns()) {
        Tensor a = ewtest::ints(da, ad, seed++, -9, 10);
        Tensor b = ewtest::ints(db, bd, seed++, 0, 6);
        binary_case("Pow", da, ad, a, db, bd, b);
      }
      binary_case("Pow", da, {5}, make_tensor(da, {5}, {2, 3, -2, 1, 0}), db, {5}, make_tensor(db, {5}, {10, 9, -1, -3, 0}));
    }
  }
}

// PRelu with per-channel slopes: numpy broadcasting (opset 9+) and the legacy 1-D slope on axis 1 (opset 6).
TEST(GpuBinary, PReluChannelSlopes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 9000;
  for (DType dt : ewtest::float_dtypes()) {
    const Dims x = {2, 3, 5, 7};
    binary_case("PRelu", dt, x, operand(dt, x, seed++), dt, {3, 1, 1}, operand(dt, {3, 1, 1}, seed++));
    binary_case("PRelu", dt, x, operand(dt, x, seed++), dt, {7}, operand(dt, {7}, seed++));
    binary_case("PRelu", dt, x, operand(dt, x, seed++), dt, {1}, operand(dt, {1}, seed++));
    binary_case("PRelu", dt, x, operand(dt, x, seed++), dt, {3}, operand(dt, {3}, seed++), nullptr, 6);
    binary_case("PRelu", dt, {4, 3}, operand(dt, {4, 3}, seed++), dt, {3}, operand(dt, {3}, seed++), nullptr, 6);
  }
}

// Max/Min/Sum/Mean with 1, 3, 4 and 9 inputs, same shapes and mixed broadcasts.
TEST(GpuBinary, Variadic) {
  KILN_REQUIRE_GPU();
  const std::vector<std::vector<Dims>> sets = {
      {{1031}},
      {{3, 5}},
      {{}},
      {{1031}, {1031}, {1031}},
      {{7}, {}, {3, 7}},
      {{2, 1, 5}, {3, 1}, {1}, {2, 3, 5}},
      {{4, 1, 6}, {1, 5, 1}, {6}, {4, 5, 6}, {}, {5, 6}, {1, 1, 1}, {4, 5, 1}, {1}},
      {{0, 3}, {3}, {}},
      {{257, 129}, {257, 129}, {129}, {257, 1}},
      {{1031}, {}, {1031}},                  // flat: full and scalar operands, vector body and tail
      {{64, 64}, {64, 64}, {64, 64}, {}, {1}},
  };
  uint64_t seed = 11000;
  for (const std::string op : {"Max", "Min", "Sum", "Mean"}) {
    for (DType dt : numeric_dtypes()) {
      for (const auto& set : sets) {
        ModelBuilder m;
        std::vector<std::string> names;
        std::map<std::string, Tensor> inputs;
        for (size_t k = 0; k < set.size(); ++k) {
          const std::string n = "x" + std::to_string(k);
          m.input(n, dt, sdims(set[k]));
          names.push_back(n);
          inputs[n] = operand(dt, set[k], seed++);
        }
        m.node(op, names, {"y"}).output("y");
        SCOPED_TRACE(op + " " + std::string(dtype_name(dt)) + " with " + std::to_string(set.size()) + " inputs");
        check(m, inputs, 1, std::nullopt, /*also_misaligned=*/true);
      }
    }
  }
  // NaN in any input propagates through Max/Min.
  for (DType dt : ewtest::float_dtypes()) {
    for (const std::string op : {"Max", "Min"}) {
      ModelBuilder m;
      m.input("a", dt, {"4"}).input("b", dt, {"4"}).input("c", dt, {"4"}).node(op, {"a", "b", "c"}, {"y"}).output("y");
      check(m, {{"a", make_tensor(dt, {4}, {1, kNaN, 3, 4})},
                {"b", make_tensor(dt, {4}, {kNaN, 2, 3, -1})},
                {"c", make_tensor(dt, {4}, {0, 5, kNaN, -kInf})}});
    }
  }
}

// A small graph: (a + b) * c, compared to d, stays on the GPU node to node.
TEST(GpuBinary, ChainRunsOnGpu) {
  KILN_REQUIRE_GPU();
  for (DType dt : numeric_dtypes()) {
    ModelBuilder m;
    m.input("a", dt, {"8", "129"}).input("b", dt, {"129"}).input("c", dt, {"8", "1"}).input("d", dt, {})
        .node("Add", {"a", "b"}, {"s"})
        .node("Mul", {"s", "c"}, {"p"})
        .node("Greater", {"p", "d"}, {"y"})
        .output("y")
        .output("p");
    check(m, {{"a", operand(dt, {8, 129}, 1)}, {"b", operand(dt, {129}, 2)}, {"c", operand(dt, {8, 1}, 3)},
              {"d", operand(dt, {}, 4)}},
          3);
  }
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// Throughput of the elementwise kernels on large tensors (disabled by default; run with
// --gtest_also_run_disabled_tests --gtest_filter='*ElementwiseThroughput*', or under ncu for kernel times).
TEST(GpuElementwisePerf, DISABLED_ElementwiseThroughput) {
  KILN_REQUIRE_GPU();
  struct Case {
    std::string name;
    ModelBuilder model;
    std::map<std::string, Tensor> inputs;
    double bytes;  // moved by the kernel at minimum
  };
  const int64_t R = 8192, C = 4096, N = R * C;
  auto f32 = [&](Dims d, uint64_t s) { return uniform(DType::kF32, d, s, -2, 2); };
  std::vector<Case> cases;
  {
    ModelBuilder m;
    m.input("a", DType::kF32, sdims({R, C})).input("b", DType::kF32, sdims({R, C})).node("Add", {"a", "b"}, {"y"}).output("y");
    cases.push_back({"Add f32 same shape", m, {{"a", f32({R, C}, 1)}, {"b", f32({R, C}, 2)}}, 12.0 * N});
  }
  {
    ModelBuilder m;
    m.input("a", DType::kF32, sdims({R, C})).input("b", DType::kF32, sdims({C})).node("Add", {"a", "b"}, {"y"}).output("y");
    cases.push_back({"Add f32 row broadcast", m, {{"a", f32({R, C}, 1)}, {"b", f32({C}, 2)}}, 8.0 * N});
  }
  {
    ModelBuilder m;
    m.input("a", DType::kF32, sdims({R, C})).input("b", DType::kF32, sdims({R, 1})).node("Mul", {"a", "b"}, {"y"}).output("y");
    cases.push_back({"Mul f32 column broadcast", m, {{"a", f32({R, C}, 1)}, {"b", f32({R, 1}, 2)}}, 8.0 * N});
  }
  {
    ModelBuilder m20(20);
    m20.input("a", DType::kF16, sdims({R, C})).node("Gelu", {"a"}, {"y"}).output("y");
    cases.push_back({"Gelu f16", m20, {{"a", uniform(DType::kF16, {R, C}, 3, -3, 3)}}, 4.0 * N});
  }
  {
    ModelBuilder m;
    m.input("a", DType::kF32, sdims({R, C})).node("Cast", {"a"}, {"y"}).attr("to", int64_t{10}).output("y");
    cases.push_back({"Cast f32->f16", m, {{"a", f32({R, C}, 4)}}, 6.0 * N});
  }
  {
    ModelBuilder m;
    m.input("c", DType::kBool, sdims({R, C})).input("a", DType::kF32, sdims({R, C})).input("b", DType::kF32, {});
    m.node("Where", {"c", "a", "b"}, {"y"}).output("y");
    cases.push_back({"Where f32 (scalar y)", m,
                     {{"c", gputest::random_tensor(DType::kBool, {R, C}, 5)}, {"a", f32({R, C}, 6)}, {"b", f32({}, 7)}},
                     9.0 * N});
  }
  {
    ModelBuilder m;
    m.input("a", DType::kF32, sdims({1, C}))
        .initializer("s", testing::i64_tensor({2}, {R, C}))
        .node("Expand", {"a", "s"}, {"y"})
        .output("y");
    cases.push_back({"Expand f32 [1,C]->[R,C]", m, {{"a", f32({1, C}, 8)}}, 4.0 * N});
  }
  {
    ModelBuilder m;
    m.input("a", DType::kF32, sdims({R, C})).input("b", DType::kF32, sdims({R, C})).input("c", DType::kF32, sdims({R, C}));
    m.node("Sum", {"a", "b", "c"}, {"y"}).output("y");
    cases.push_back({"Sum f32 x3", m, {{"a", f32({R, C}, 9)}, {"b", f32({R, C}, 10)}, {"c", f32({R, C}, 11)}}, 16.0 * N});
  }
  {
    ModelBuilder m;
    m.input("a", DType::kF16, sdims({64, 128, 64, 64})).input("b", DType::kF16, sdims({128, 1, 1}));
    m.node("Add", {"a", "b"}, {"y"}).output("y");
    cases.push_back({"Add f16 NCHW + channel bias", m,
                     {{"a", uniform(DType::kF16, {64, 128, 64, 64}, 12, -1, 1)}, {"b", uniform(DType::kF16, {128, 1, 1}, 13, -1, 1)}},
                     4.0 * 64 * 128 * 64 * 64});
  }
  for (auto& c : cases) {
    auto g = onnx::import_model_bytes(c.model.bytes(), ".", "perf");
    ASSERT_TRUE(g.ok());
    ASSERT_TRUE(passes::infer_shapes(*g).ok());
    auto graph = std::make_shared<const ir::Graph>(std::move(*g));
    auto ex = cuda::GraphExecutor::create(graph, false);
    ASSERT_TRUE(ex.ok());
    std::map<std::string, cuda::DeviceTensor> din, dout;
    std::vector<void*> allocs;
    for (auto& [name, t] : c.inputs) {
      void* p = nullptr;
      ASSERT_EQ(cudaMalloc(&p, std::max<size_t>(t.nbytes(), 1)), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(p, t.raw(), t.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
      allocs.push_back(p);
      cuda::DeviceTensor d;
      d.dtype = t.dtype();
      d.dims = t.dims();
      d.data = p;
      din[name] = d;
    }
    // Output size from one CPU-free inference: run once into a large enough buffer.
    void* out = nullptr;
    ASSERT_EQ(cudaMalloc(&out, 256u << 20), cudaSuccess);
    allocs.push_back(out);
    cuda::DeviceTensor o;
    o.dtype = DType::kU8;
    o.dims = {256 << 20};
    o.data = out;
    dout["y"] = o;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*ex)->run_device(din, dout, nullptr).ok());
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    const int iters = 20;
    cudaEventRecord(e0, nullptr);
    for (int i = 0; i < iters; ++i) ASSERT_TRUE((*ex)->run_device(din, dout, nullptr).ok());
    cudaEventRecord(e1, nullptr);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    // run_device also copies the output into the caller's buffer: count that copy's traffic out.
    std::printf("%-32s %8.1f us/run (incl. output copy and host overhead), kernel traffic %.0f MB\n", c.name.c_str(),
                1000.0 * ms / iters, c.bytes / 1e6);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    for (void* p : allocs) cudaFree(p);
  }
}

}  // namespace
}  // namespace kiln
