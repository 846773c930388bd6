// Slice (src/backends/cuda/kernels/slice.cu) against the CPU reference: opset 9 attributes and opset 10+
// inputs (constant initializers and device-resident graph inputs), negative and omitted axes, steps > 1 and <
// 0, clamping of out-of-range starts/ends (INT64_MAX / INT64_MIN), empty results and misaligned starts.
#include <limits>

#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

struct S {
  Dims d;
  std::vector<int64_t> starts, ends, axes, steps;  // axes/steps empty: omitted
};

// Opset 13 with the parameters as initializers, or as graph inputs (then they travel to the device and back).
void slice_case(DType dt, const S& s, uint64_t seed, bool params_as_inputs = false, bool misaligned = false) {
  SCOPED_TRACE(trace("Slice", dt, s.d,
                     "starts " + dims_to_string(s.starts) + " ends " + dims_to_string(s.ends) + " axes " +
                         dims_to_string(s.axes) + " steps " + dims_to_string(s.steps)));
  ModelBuilder m(13);
  m.input("x", dt, sdims(s.d));
  std::map<std::string, Tensor> inputs = {{"x", values(dt, s.d, seed)}};
  std::vector<std::string> ins = {"x"};
  auto param = [&](const std::string& name, const std::vector<int64_t>& v) {
    Tensor t = testing::i64_tensor({static_cast<int64_t>(v.size())}, v);
    if (params_as_inputs) {
      m.input(name, DType::kI64, {std::to_string(v.size())});
      inputs[name] = t;
    } else {
      m.initializer(name, t);
    }
    ins.push_back(name);
  };
  param("starts", s.starts);
  param("ends", s.ends);
  if (!s.axes.empty() || !s.steps.empty()) {
    if (s.axes.empty())
      ins.push_back("");
    else
      param("axes", s.axes);
  }
  if (!s.steps.empty()) param("steps", s.steps);
  m.node("Slice", ins, {"y"}).output("y");
  ewtest::check(m, inputs, 1, std::nullopt, misaligned);
}

const std::vector<S>& cases() {
  static const std::vector<S> v = {
      {{7}, {1}, {6}, {}, {}},
      {{7}, {-3}, {kMax}, {}, {}},
      {{7}, {kMax}, {kMin}, {0}, {-1}},  // the whole axis reversed
      {{7}, {-1}, {-8}, {0}, {-2}},
      {{10, 9}, {1, 2}, {9, 9}, {}, {}},
      {{10, 9}, {2}, {-1}, {-1}, {}},  // negative axis, innermost offset (misaligned start)
      {{10, 9}, {9, 8}, {0, 0}, {0, 1}, {-3, -2}},
      {{10, 9}, {-100}, {100}, {1}, {3}},  // clamped
      {{4, 5, 6}, {1, 0}, {3, 5}, {2, 0}, {1, 2}},
      {{4, 5, 6}, {3}, {3}, {1}, {}},   // empty result
      {{4, 5, 6}, {5}, {1}, {0}, {1}},  // start past end: empty
      {{2, 3, 4, 5, 6}, {0, 1, 1}, {2, 3, 4}, {0, 2, 4}, {1, 1, 2}},
      {{3, 8, 64}, {0}, {32}, {2}, {}},  // contiguous rows: wide units
      {{3, 8, 64}, {1}, {33}, {2}, {}},  // rows starting one element in
      {{0, 5}, {0}, {3}, {1}, {}},
  };
  return v;
}

TEST(GpuSlice, InputsAllDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : all_dtypes())
    for (const S& s : cases()) slice_case(dt, s, seed++);
}

TEST(GpuSlice, ParametersOnTheDevice) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 50;
  for (DType dt : {DType::kF32, DType::kF16, DType::kI64})
    for (const S& s : cases()) slice_case(dt, s, seed++, true);
}

TEST(GpuSlice, Opset9Attributes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 80;
  for (DType dt : {DType::kF32, DType::kBF16, DType::kU8}) {
    SCOPED_TRACE(trace("Slice-9", dt, {4, 6, 5}));
    ModelBuilder m(9);
    m.input("x", dt, {"4", "6", "5"}).node("Slice", {"x"}, {"y"});
    m.attr("starts", std::vector<int64_t>{1, -4}).attr("ends", std::vector<int64_t>{kMax, 5});
    m.attr("axes", std::vector<int64_t>{0, 1}).output("y");
    ewtest::check(m, {{"x", values(dt, {4, 6, 5}, seed++)}});
    ModelBuilder m2(9);
    m2.input("x", dt, {"4", "6", "5"}).node("Slice", {"x"}, {"y"});
    m2.attr("starts", std::vector<int64_t>{0, 1, 2})
        .attr("ends", std::vector<int64_t>{2, 3, 100})
        .output("y");
    ewtest::check(m2, {{"x", values(dt, {4, 6, 5}, seed++)}});
  }
}

TEST(GpuSlice, LargeAndMisaligned) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 120;
  for (DType dt : {DType::kF32, DType::kF16, DType::kI8, DType::kI64}) {
    slice_case(dt, S{{2, 128, 2304}, {768}, {1536}, {2}, {}}, seed++, false, true);  // GPT-2 qkv split
    slice_case(dt, S{{2, 12, 128, 64}, {127}, {kMin}, {2}, {-1}}, seed++, false, true);
    slice_case(dt, S{{1025, 33}, {1, 1}, {1024, 32}, {}, {}}, seed++, false, true);
  }
}

}  // namespace
}  // namespace kiln
