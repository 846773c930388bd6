// Range and ConstantOfShape (src/backends/cuda/kernels/range_fill.cu) against the CPU reference. Their inputs
// are small host values, which the executor keeps on the host when they are integers on the host (shape
// math); the device-input path of ewtest::check sends them to the GPU kernel, which reads them back as host
// inputs.
#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

Tensor scalar(DType dt, double v) {
  return ewtest::make_tensor(dt, {}, {v});
}

void range_case(DType dt, double start, double limit, double delta) {
  SCOPED_TRACE(trace("Range", dt, {}, fmt::format("{} {} {}", start, limit, delta)));
  ModelBuilder m;
  m.input("s", dt, {}).input("l", dt, {}).input("d", dt, {});
  m.node("Range", {"s", "l", "d"}, {"y"}).output("y");
  ewtest::check(m, {{"s", scalar(dt, start)}, {"l", scalar(dt, limit)}, {"d", scalar(dt, delta)}});
}

TEST(GpuRange, DtypesAndSteps) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kF32, DType::kI32, DType::kI64}) {
    range_case(dt, 0, 10, 1);
    range_case(dt, 10, -7, -3);
    range_case(dt, 5, 5, 1);  // empty
    range_case(dt, -2, 2000, 1);
  }
  range_case(DType::kF32, 0.1, 100.3, 0.37);
  range_case(DType::kF32, 1e6, 1e6 + 3000, 1.25);
  range_case(DType::kF32, 3, -2, -0.1);
}

TEST(GpuRange, FloatRangeOnHostInputsRunsOnTheGpu) {
  KILN_REQUIRE_GPU();
  ModelBuilder m;
  m.input("s", DType::kF32, {}).input("l", DType::kF32, {}).input("d", DType::kF32, {});
  m.node("Range", {"s", "l", "d"}, {"y"}).output("y");
  gputest::expect_gpu_matches_cpu(
      m,
      {{"s", scalar(DType::kF32, -1.5)}, {"l", scalar(DType::kF32, 700)}, {"d", scalar(DType::kF32, 0.3)}});
}

void constant_of_shape_case(const Dims& shape, std::optional<Tensor> value) {
  SCOPED_TRACE("ConstantOfShape " + dims_to_string(shape) +
               (value ? " " + std::string(dtype_name(value->dtype())) : std::string(" default")));
  ModelBuilder m;
  m.input("shape", DType::kI64, {std::to_string(shape.size())});
  m.node("ConstantOfShape", {"shape"}, {"y"});
  if (value) m.attr("value", *value);
  m.output("y");
  ewtest::check(m, {{"shape", testing::i64_tensor({static_cast<int64_t>(shape.size())}, shape)}});
}

TEST(GpuConstantOfShape, ValuesAndShapes) {
  KILN_REQUIRE_GPU();
  for (const Dims& s : std::vector<Dims>{{3}, {2, 3, 5}, {1031, 3}, {0, 4}}) {
    constant_of_shape_case(s, std::nullopt);
    constant_of_shape_case(s, ewtest::make_tensor(DType::kF32, {1}, {2.5}));
    constant_of_shape_case(s, ewtest::make_tensor(DType::kF32, {1}, {0.0}));
    constant_of_shape_case(s, ewtest::make_tensor(DType::kI64, {1}, {-7}));
    constant_of_shape_case(s, ewtest::make_tensor(DType::kI32, {1}, {123456}));
    constant_of_shape_case(s, ewtest::make_tensor(DType::kF16, {1}, {-1.5}));
    constant_of_shape_case(s, ewtest::make_tensor(DType::kBool, {1}, {1}));
    constant_of_shape_case(s, ewtest::make_tensor(DType::kU8, {1}, {200}));
  }
}

}  // namespace
}  // namespace kiln
