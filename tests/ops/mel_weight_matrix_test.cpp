#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

Result<Tensor> mel(int64_t bins, int64_t dft, int64_t rate, float lo, float hi) {
  ModelBuilder b(17);
  b.input("bins", DType::kI64, {})
      .input("dft", DType::kI64, {})
      .input("rate", DType::kI64, {})
      .input("lo", DType::kF32, {})
      .input("hi", DType::kF32, {})
      .node("MelWeightMatrix", {"bins", "dft", "rate", "lo", "hi"}, {"y"})
      .output("y");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  KILN_ASSIGN_OR_RETURN(Engine engine, Builder::build_from_bytes(b.bytes(), cfg));
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, engine.create_context());
  KILN_ASSIGN_OR_RETURN(auto out, ctx.infer({{"bins", Tensor::scalar_i64(bins)},
                                             {"dft", Tensor::scalar_i64(dft)},
                                             {"rate", Tensor::scalar_i64(rate)},
                                             {"lo", Tensor::scalar_f32(lo)},
                                             {"hi", Tensor::scalar_f32(hi)}}));
  return out.at("y");
}

// Bin edges from the mel formula, then each filter is a triangle over those DFT bins peaking at 1.
TEST(MelWeightMatrixOp, TrianglesOverMelSpacedBins) {
  const int64_t bins = 3, dft = 32, rate = 16000;
  auto y = mel(bins, dft, rate, 100.f, 6000.f);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  ASSERT_EQ(y->dims(), (std::vector<int64_t>{17, 3}));
  auto to_mel = [](double f) { return 2595 * std::log10(1 + f / 700); };
  const double lo = to_mel(100), step = (to_mel(6000) - lo) / (bins + 2);
  std::vector<int64_t> edge;
  for (int i = 0; i < bins + 2; ++i)
    edge.push_back(static_cast<int64_t>(std::floor((dft + 1) * 700 * (std::pow(10, (lo + i * step) / 2595) - 1) / rate)));
  for (int64_t i = 0; i < bins; ++i)
    for (int64_t j = 0; j < 17; ++j) {
      double want = 0;
      if (j >= edge[i] && j <= edge[i + 1] && edge[i + 1] > edge[i])
        want = double(j - edge[i]) / double(edge[i + 1] - edge[i]);
      if (j >= edge[i + 1] && j < edge[i + 2]) want = double(edge[i + 2] - j) / double(edge[i + 2] - edge[i + 1]);
      EXPECT_NEAR(y->data<float>()[j * bins + i], want, 1e-6) << j << "," << i;
    }
}

TEST(MelWeightMatrixOp, ZeroBinsIsAnError) {
  auto y = mel(0, 16, 8000, 0.f, 4000.f);
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("must be positive"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace kiln
