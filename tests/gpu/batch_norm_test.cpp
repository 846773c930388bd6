// BatchNormalization (inference), InstanceNormalization, GlobalAveragePool and GlobalMaxPool on the GPU against
// the CPU reference, over spatial ranks 0..3, odd sizes, mixed parameter dtypes, large f16 magnitudes.
#include "gpu/norm_reduce_test_util.h"

namespace kiln {
namespace {

using gputest::sdims;
using testing::ModelBuilder;

constexpr DType kFloats[] = {DType::kF32, DType::kF16, DType::kBF16};

// ---- BatchNormalization -----------------------------------------------------------------------------------------
void check_bn(DType dt, const std::vector<int64_t>& x, uint64_t seed, DType pdt = DType::kUndefined,
              int64_t opset = 15, bool per_activation = false, double lo = -1.0, double hi = 1.0) {
  if (pdt == DType::kUndefined) pdt = dt;
  std::vector<int64_t> p = {x[1]};
  if (per_activation) p.assign(x.begin() + 1, x.end());
  SCOPED_TRACE(std::string(gputest::dname(dt)) + " params " + gputest::dname(pdt) + " " + dims_to_string(x) + " opset " +
               std::to_string(opset));
  ModelBuilder b(opset);
  b.input("x", dt, sdims(x)).input("scale", pdt, sdims(p)).input("bias", pdt, sdims(p))
      .input("mean", pdt, sdims(p)).input("var", pdt, sdims(p))
      .node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y"}).attr("epsilon", 1e-3f);
  if (per_activation) b.attr("spatial", int64_t{0});
  b.output("y");
  gputest::expect_both(b, {{"x", gputest::uniform_tensor(dt, x, seed, lo, hi)},
                           {"scale", gputest::uniform_tensor(pdt, p, seed + 1, 0.5, 1.5)},
                           {"bias", gputest::random_tensor(pdt, p, seed + 2)},
                           {"mean", gputest::uniform_tensor(pdt, p, seed + 3, lo, hi)},
                           {"var", gputest::uniform_tensor(pdt, p, seed + 4, 0.1, 2.0)}});
}

TEST(GpuBatchNorm, InferenceShapesAndDtypes) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    check_bn(dt, {2, 3, 5, 7}, 1);
    check_bn(dt, {1, 16, 1, 1}, 2);
    check_bn(dt, {2, 8, 32}, 3);        // 32 positions: 16-byte packs
    check_bn(dt, {2, 8, 33}, 4);
    check_bn(dt, {1, 4, 3, 5, 6}, 5);   // 3 spatial dims
    check_bn(dt, {7, 13}, 6);           // no spatial dims
    check_bn(dt, {4, 64, 56, 56}, 7);
    check_bn(dt, {3, 5, 4097}, 8, DType::kF32);
    check_bn(dt, {2, 3, 300}, 9, DType::kUndefined, 15, false, 290.0, 310.0);
    for (DType pdt : kFloats) check_bn(dt, {2, 3, 8, 8}, 10, pdt);
  }
}

TEST(GpuBatchNorm, OldOpsetsAndTrainingFallsBack) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    check_bn(dt, {2, 3, 5, 7}, 20, DType::kUndefined, 9);
    check_bn(dt, {2, 3, 4, 5}, 21, DType::kUndefined, 7, /*per_activation=*/true);
    check_bn(dt, {2, 3, 4, 5}, 22, DType::kUndefined, 7, /*per_activation=*/false);
  }
  // training_mode=1 runs on the CPU reference (batch statistics); the result must still match.
  ModelBuilder b(15);
  const std::vector<int64_t> x = {4, 3, 10, 10};
  b.input("x", DType::kF32, sdims(x)).input("scale", DType::kF32, {"3"}).input("bias", DType::kF32, {"3"})
      .input("mean", DType::kF32, {"3"}).input("var", DType::kF32, {"3"})
      .node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"y"}).attr("training_mode", int64_t{1})
      .output("y");
  gputest::expect_on_device(b,
                            {{"x", gputest::random_tensor(DType::kF32, x, 1)},
                             {"scale", gputest::random_tensor(DType::kF32, {3}, 2)},
                             {"bias", gputest::random_tensor(DType::kF32, {3}, 3)},
                             {"mean", gputest::random_tensor(DType::kF32, {3}, 4)},
                             {"var", gputest::uniform_tensor(DType::kF32, {3}, 5, 0.5, 1.0)}},
                            0);
}

TEST(GpuBatchNorm, EmptyBatch) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    ModelBuilder b;
    b.input("x", dt, {"0", "3", "4"}).input("s", dt, {"3"}).input("b", dt, {"3"}).input("m", dt, {"3"})
        .input("v", dt, {"3"}).node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"}).output("y");
    Tensor p = gputest::uniform_tensor(dt, {3}, 1, 0.5, 1.0);
    gputest::expect_on_device(b, {{"x", Tensor(dt, {0, 3, 4})}, {"s", p}, {"b", p}, {"m", p}, {"v", p}});
  }
}

// ---- InstanceNormalization --------------------------------------------------------------------------------------
void check_instance_norm(DType dt, const std::vector<int64_t>& x, uint64_t seed, double lo = -1.0, double hi = 1.0,
                         DType pdt = DType::kUndefined) {
  if (pdt == DType::kUndefined) pdt = dt;
  SCOPED_TRACE(std::string(gputest::dname(dt)) + " " + dims_to_string(x));
  const std::vector<int64_t> c = {x[1]};
  ModelBuilder b;
  b.input("x", dt, sdims(x)).input("scale", pdt, sdims(c)).input("bias", pdt, sdims(c))
      .node("InstanceNormalization", {"x", "scale", "bias"}, {"y"}).attr("epsilon", 1e-5f).output("y");
  gputest::expect_both(b, {{"x", gputest::uniform_tensor(dt, x, seed, lo, hi)},
                           {"scale", gputest::uniform_tensor(pdt, c, seed + 1, 0.5, 1.5)},
                           {"bias", gputest::random_tensor(pdt, c, seed + 2)}});
}

TEST(GpuInstanceNorm, SpatialSizes) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    check_instance_norm(dt, {2, 3, 5, 7}, 1);
    check_instance_norm(dt, {3, 5, 1}, 2);           // one position: variance 0
    check_instance_norm(dt, {2, 4, 31}, 3);
    check_instance_norm(dt, {2, 4, 33}, 4);
    check_instance_norm(dt, {1, 4, 33, 33}, 5);      // 1089 positions: block rows
    check_instance_norm(dt, {2, 2, 4097}, 6);
    check_instance_norm(dt, {1, 2, 20000}, 7);       // three-pass rows
    check_instance_norm(dt, {1, 3, 4, 5, 6}, 8);     // 3 spatial dims
    check_instance_norm(dt, {2, 3, 4097}, 9, 290.0, 310.0);
    check_instance_norm(dt, {2, 3, 768}, 10, -1.0, 1.0, DType::kF32);
  }
}

// ---- GlobalAveragePool / GlobalMaxPool -----------------------------------------------------------------------------
void check_global_pool(const char* op, DType dt, const std::vector<int64_t>& x, const Tensor& in) {
  SCOPED_TRACE(std::string(op) + " " + gputest::dname(dt) + " " + dims_to_string(x));
  ModelBuilder b;
  b.input("x", dt, sdims(x)).node(op, {"x"}, {"y"}).output("y");
  gputest::expect_on_device(b, {{"x", in}});
  int64_t n = 1;
  for (auto d : x) n *= d;
  if (n > 1024) gputest::expect_gpu_matches_cpu(b, {{"x", in}});
}

TEST(GpuGlobalPool, AverageAndMax) {
  KILN_REQUIRE_GPU();
  const std::vector<std::vector<int64_t>> shapes = {{2, 3, 5, 7},     {1, 5, 1},         {2, 3, 31},
                                                    {2, 3, 32},       {1, 64, 7, 7},     {1, 2048, 7, 7},
                                                    {2, 3, 4097},     {1, 3, 100, 100},  {1, 2, 3, 4, 5},
                                                    {2, 4, 1025},     {1, 1, 300001},    {4, 16, 4, 4},
                                                    {3, 7, 3, 3},     {2, 5, 2, 3},      {3, 5, 8}};
  for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"})
    for (DType dt : kFloats)
      for (size_t i = 0; i < shapes.size(); ++i)
        check_global_pool(op, dt, shapes[i], gputest::random_tensor(dt, shapes[i], 100 + i));
}

TEST(GpuGlobalPool, LargeF16MagnitudesAndNan) {
  KILN_REQUIRE_GPU();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"})
    for (DType dt : kFloats) {
      // 4097 values around 300 sum to ~1.2e6: only an f32 accumulator holds that for f16 input.
      for (const std::vector<int64_t>& x : {std::vector<int64_t>{2, 3, 4097}, std::vector<int64_t>{1, 2, 64, 64}})
        check_global_pool(op, dt, x, gputest::uniform_tensor(dt, x, 7, 290.0, 310.0));
      const std::vector<int64_t> x = {2, 3, 40};
      Tensor r = testing::random_f32(x, 8);
      check_global_pool(op, dt, x, gputest::make_tensor(dt, x, [&](int64_t i) -> double {
                          return (i / 40) % 2 == 0 && i % 40 == 17 ? nan : r.data<float>()[i];
                        }));
    }
}

TEST(GpuGlobalPool, EmptyPlanesAndBatches) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"})
    for (DType dt : kFloats) {
      check_global_pool(op, dt, {0, 3, 4}, Tensor(dt, {0, 3, 4}));
      check_global_pool(op, dt, {2, 3, 0}, Tensor(dt, {2, 3, 0}));  // mean of nothing: NaN; max: -inf
    }
}

}  // namespace
}  // namespace kiln
