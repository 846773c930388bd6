#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

Result<std::map<std::string, Tensor>> run(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  KILN_ASSIGN_OR_RETURN(Engine engine, Builder::build_from_bytes(b.bytes(), cfg));
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, engine.create_context());
  return ctx.infer(inputs);
}

Result<Tensor> window(const std::string& op, int64_t size, int64_t periodic, int64_t dtype = 1) {
  ModelBuilder b(17);
  b.input("n", DType::kI64, {}).node(op, {"n"}, {"y"}).attr("periodic", periodic).attr("output_datatype", dtype).output("y");
  KILN_ASSIGN_OR_RETURN(auto out, run(b, {{"n", Tensor::scalar_i64(size)}}));
  return out.at("y");
}

TEST(WindowFunctionsOp, HannPeriodic) {
  auto y = window("HannWindow", 4, 1);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_EQ(y->dims(), (std::vector<int64_t>{4}));
  const std::vector<float> want = {0.f, 0.5f, 1.f, 0.5f};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y->data<float>()[i], want[i], 1e-6) << i;
}

TEST(WindowFunctionsOp, HammingSymmetric) {
  auto y = window("HammingWindow", 3, 0);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  const std::vector<float> want = {4.f / 46, 1.f, 4.f / 46};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(y->data<float>()[i], want[i], 1e-6) << i;
}

TEST(WindowFunctionsOp, BlackmanAsDouble) {
  auto y = window("BlackmanWindow", 7, 1, 11);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_EQ(y->dtype(), DType::kF64);
  for (int n = 0; n < 7; ++n) {
    const double x = 2 * M_PI * n / 7;
    EXPECT_NEAR(y->data<double>()[n], 0.42 - 0.5 * std::cos(x) + 0.08 * std::cos(2 * x), 1e-12) << n;
  }
}

TEST(WindowFunctionsOp, SymmetricSingleSampleAndEmpty) {
  auto one = window("HannWindow", 1, 0);
  ASSERT_TRUE(one.ok()) << one.status().to_string();
  EXPECT_EQ(one->data<float>()[0], 1.f);
  auto none = window("HannWindow", 0, 1);
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_EQ(none->dims(), (std::vector<int64_t>{0}));
}

TEST(WindowFunctionsOp, NegativeConstantSizeIsABuildError) {
  ModelBuilder b(17);
  b.initializer("n", Tensor::from_vector(DType::kI32, {}, std::vector<int32_t>{-2}))
      .node("HannWindow", {"n"}, {"y"})
      .output("y");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("size must be >= 0, got -2"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace kiln
