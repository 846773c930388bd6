#include <gtest/gtest.h>

#include <cmath>
#include <complex>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;
using testing::random_f32;
using C = std::complex<double>;

Result<std::map<std::string, Tensor>> run(const ModelBuilder& b,
                                          const std::map<std::string, Tensor>& inputs) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  KILN_ASSIGN_OR_RETURN(Engine engine, Builder::build_from_bytes(b.bytes(), cfg));
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, engine.create_context());
  return ctx.infer(inputs);
}

Status build_error(const ModelBuilder& b) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  return e.ok() ? Status() : e.status();
}

std::vector<std::string> str_dims(const std::vector<int64_t>& dims) {
  std::vector<std::string> s;
  for (int64_t d : dims) s.push_back(std::to_string(d));
  return s;
}

// Reference: the textbook sum over the first min(n, len) samples of a 1-D signal, straight from cos/sin.
std::vector<C> naive_dft(const std::vector<C>& x, int64_t len, int64_t bins, bool inverse) {
  std::vector<C> y(bins);
  const double sign = inverse ? 1.0 : -1.0;
  for (int64_t k = 0; k < bins; ++k) {
    C acc = 0;
    for (int64_t i = 0; i < len && i < static_cast<int64_t>(x.size()); ++i) {
      const double ang = sign * 2 * M_PI * double(k) * double(i) / double(len);
      acc += x[i] * C(std::cos(ang), std::sin(ang));
    }
    y[k] = inverse ? acc / double(len) : acc;
  }
  return y;
}

void expect_complex_near(const Tensor& t, int64_t flat_pair, C want, double tol, const std::string& what) {
  EXPECT_NEAR(t.data<float>()[2 * flat_pair], want.real(), tol) << what << " (real)";
  EXPECT_NEAR(t.data<float>()[2 * flat_pair + 1], want.imag(), tol) << what << " (imag)";
}

TEST(DftOp, CosineHasEnergyInItsTwoBins) {
  const int64_t n = 7;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::cos(2 * M_PI * 2 * i / n));
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"1", "7", "1"}).node("DFT", {"x"}, {"y"}).attr("axis", int64_t{1}).output("y");
  auto out = run(b, {{"x", f32_tensor({1, n, 1}, x)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 7, 2}));
  // cos = (e^{iwn} + e^{-iwn}) / 2: half the energy at bin 2, half at bin n-2.
  for (int64_t k = 0; k < n; ++k)
    expect_complex_near(y, k, (k == 2 || k == 5) ? C(3.5, 0) : C(0, 0), 1e-5, "bin " + std::to_string(k));
}

TEST(DftOp, ComplexInputOnOddLengthsMatchesTheSum) {
  for (int64_t n : {1, 3, 7}) {
    // [2, n, 3, 2]: transform axis 1, so the outer (2) and inner (3) dims are both walked.
    Tensor x = random_f32({2, n, 3, 2}, 40 + n);
    ModelBuilder b(17);
    b.input("x", DType::kF32, str_dims(x.dims()))
        .node("DFT", {"x"}, {"y"})
        .attr("axis", int64_t{1})
        .output("y");
    auto out = run(b, {{"x", x}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    const Tensor& y = out->at("y");
    ASSERT_EQ(y.dims(), x.dims());
    const float* px = x.data<float>();
    for (int64_t o = 0; o < 2; ++o)
      for (int64_t j = 0; j < 3; ++j) {
        std::vector<C> sig(n);
        for (int64_t i = 0; i < n; ++i)
          sig[i] = C(px[((o * n + i) * 3 + j) * 2], px[((o * n + i) * 3 + j) * 2 + 1]);
        auto want = naive_dft(sig, n, n, false);
        for (int64_t k = 0; k < n; ++k)
          expect_complex_near(y, (o * n + k) * 3 + j, want[k], 1e-5, "n=" + std::to_string(n));
      }
  }
}

TEST(DftOp, InverseUndoesForward) {
  Tensor x = random_f32({3, 5, 2}, 7);
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"3", "5", "2"})
      .node("DFT", {"x"}, {"f"})
      .attr("axis", int64_t{1})
      .node("DFT", {"f"}, {"y"})
      .attr("axis", int64_t{1})
      .attr("inverse", int64_t{1})
      .output("y");
  auto out = run(b, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dims(), x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_NEAR(y.data<float>()[i], x.data<float>()[i], 1e-5) << i;
}

TEST(DftOp, DftLengthPadsOrTruncatesAndOnesidedKeepsHalf) {
  const std::vector<float> x = {1, -2, 3, 0.5f, 4};
  std::vector<C> sig(x.begin(), x.end());
  for (int64_t len : {8, 3}) {
    ModelBuilder b(17);
    b.input("x", DType::kF32, {"1", "5", "1"})
        .initializer("len", i64_tensor({}, {len}))
        .node("DFT", {"x", "len"}, {"y"})
        .attr("onesided", int64_t{1})
        .output("y");
    auto out = run(b, {{"x", f32_tensor({1, 5, 1}, x)}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    const Tensor& y = out->at("y");
    const int64_t bins = len / 2 + 1;
    ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, bins, 2}));
    auto want = naive_dft(sig, len, bins, false);
    for (int64_t k = 0; k < bins; ++k) expect_complex_near(y, k, want[k], 1e-5, "len=" + std::to_string(len));
  }
}

TEST(DftOp, Opset20TakesAxisAsAnInput) {
  Tensor x = random_f32({3, 4, 1}, 3);
  const float* px = x.data<float>();
  // Default axis -2 transforms dim 1; axis 0 transforms dim 0.
  for (int64_t axis : {-2, 0}) {
    ModelBuilder b(20);
    b.input("x", DType::kF32, {"3", "4", "1"});
    if (axis == -2) {
      b.node("DFT", {"x"}, {"y"});
    } else {
      b.initializer("axis", i64_tensor({}, {axis})).node("DFT", {"x", "", "axis"}, {"y"});
    }
    b.output("y");
    auto out = run(b, {{"x", x}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    const Tensor& y = out->at("y");
    ASSERT_EQ(y.dims(), (std::vector<int64_t>{3, 4, 2}));
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t c = 0; c < 4; ++c) {
        std::vector<C> sig;
        if (axis == -2) {
          for (int64_t i = 0; i < 4; ++i) sig.push_back(px[r * 4 + i]);
          expect_complex_near(y, r * 4 + c, naive_dft(sig, 4, 4, false)[c], 1e-5, "axis -2");
        } else {
          for (int64_t i = 0; i < 3; ++i) sig.push_back(px[i * 4 + c]);
          expect_complex_near(y, r * 4 + c, naive_dft(sig, 3, 3, false)[r], 1e-5, "axis 0");
        }
      }
  }
}

// Nothing but the rank is known at build time: axis and dft_length arrive with the data.
TEST(DftOp, RuntimeAxisAndLengthWithSymbolicDims) {
  ModelBuilder b(20);
  b.input("x", DType::kF32, {"batch", "n", "1"})
      .input("len", DType::kI64, {})
      .input("axis", DType::kI64, {})
      .node("DFT", {"x", "len", "axis"}, {"y"})
      .attr("onesided", int64_t{1})
      .output("y");
  const std::vector<float> x = {2, 0, -1, 3, 1};
  auto out = run(
      b, {{"x", f32_tensor({1, 5, 1}, x)}, {"len", Tensor::scalar_i64(6)}, {"axis", Tensor::scalar_i64(1)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 4, 2}));
  auto want = naive_dft(std::vector<C>(x.begin(), x.end()), 6, 4, false);
  for (int64_t k = 0; k < 4; ++k) expect_complex_near(y, k, want[k], 1e-5, "runtime axis");
}

TEST(DftOp, EmptyBatchGivesEmptyOutput) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"0", "4", "1"}).node("DFT", {"x"}, {"y"}).output("y");
  auto out = run(b, {{"x", Tensor(DType::kF32, {0, 4, 1})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").dims(), (std::vector<int64_t>{0, 4, 2}));
}

TEST(DftOp, DoubleInput) {
  Tensor x = Tensor::from_vector(DType::kF64, {1, 3, 1}, std::vector<double>{1, 2, 3});
  ModelBuilder b(17);
  b.input("x", DType::kF64, {"1", "3", "1"}).node("DFT", {"x"}, {"y"}).output("y");
  auto out = run(b, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const double* py = out->at("y").data<double>();
  // [1,2,3] -> 6, -1.5 + i*sqrt(3)/2, -1.5 - i*sqrt(3)/2.
  const double want[] = {6, 0, -1.5, std::sqrt(3.0) / 2, -1.5, -std::sqrt(3.0) / 2};
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(py[i], want[i], 1e-12) << i;
}

TEST(DftOp, BadLastDimIsABuildError) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"1", "4", "3"}).node("DFT", {"x"}, {"y"}).output("y");
  Status s = build_error(b);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("must be 1 (real) or 2 (complex), got 3"), std::string::npos) << s.message();
}

TEST(DftOp, AxisOnTheComplexDimIsABuildError) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"1", "4", "2"}).node("DFT", {"x"}, {"y"}).attr("axis", int64_t{2}).output("y");
  Status s = build_error(b);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("axis 2 is out of range"), std::string::npos) << s.message();
}

TEST(DftOp, OnesidedComplexIsABuildError) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"1", "4", "2"})
      .node("DFT", {"x"}, {"y"})
      .attr("onesided", int64_t{1})
      .output("y");
  Status s = build_error(b);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("onesided=1 needs a real input"), std::string::npos) << s.message();
}

// Frames start every `step` samples; each is windowed then transformed with the frame length.
TEST(StftOp, WindowedFramesMatchTheSum) {
  const int64_t n = 21, frame = 8, step = 4, frames = 1 + (n - frame) / step, bins = frame / 2 + 1;
  Tensor x = random_f32({2, n, 1}, 11);
  std::vector<float> w(frame);
  for (int64_t i = 0; i < frame; ++i) w[i] = static_cast<float>(0.5 - 0.5 * std::cos(2 * M_PI * i / frame));
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"2", "21", "1"})
      .initializer("step", i64_tensor({}, {step}))
      .initializer("w", f32_tensor({frame}, w))
      .node("STFT", {"x", "step", "w"}, {"y"})
      .output("y");
  auto out = run(b, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{2, frames, bins, 2}));
  for (int64_t bi = 0; bi < 2; ++bi)
    for (int64_t f = 0; f < frames; ++f) {
      std::vector<C> sig(frame);
      for (int64_t i = 0; i < frame; ++i) sig[i] = double(w[i]) * x.data<float>()[bi * n + f * step + i];
      auto want = naive_dft(sig, frame, bins, false);
      for (int64_t k = 0; k < bins; ++k)
        expect_complex_near(y, (bi * frames + f) * bins + k, want[k], 1e-5, "stft");
    }
}

TEST(StftOp, ComplexTwoSidedWithFrameLength) {
  const int64_t n = 7, frame = 3, step = 2, frames = 3;
  Tensor x = random_f32({1, n, 2}, 5);
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"1", "7", "2"})
      .initializer("step", i64_tensor({}, {step}))
      .initializer("len", i64_tensor({}, {frame}))
      .node("STFT", {"x", "step", "", "len"}, {"y"})
      .attr("onesided", int64_t{0})
      .output("y");
  auto out = run(b, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, frames, frame, 2}));
  const float* px = x.data<float>();
  for (int64_t f = 0; f < frames; ++f) {
    std::vector<C> sig;
    for (int64_t i = 0; i < frame; ++i) sig.emplace_back(px[(f * step + i) * 2], px[(f * step + i) * 2 + 1]);
    auto want = naive_dft(sig, frame, frame, false);
    for (int64_t k = 0; k < frame; ++k) expect_complex_near(y, f * frame + k, want[k], 1e-5, "stft complex");
  }
}

TEST(StftOp, FrameLongerThanSignalIsABuildError) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"1", "5", "1"})
      .initializer("step", i64_tensor({}, {1}))
      .initializer("len", i64_tensor({}, {6}))
      .node("STFT", {"x", "step", "", "len"}, {"y"})
      .output("y");
  Status s = build_error(b);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("frame length 6 is longer than the signal"), std::string::npos) << s.message();
}

TEST(StftOp, WindowAndFrameLengthMustAgree) {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"1", "16", "1"})
      .initializer("step", i64_tensor({}, {2}))
      .initializer("w", f32_tensor({4}, {1, 1, 1, 1}))
      .initializer("len", i64_tensor({}, {8}))
      .node("STFT", {"x", "step", "w", "len"}, {"y"})
      .output("y");
  Status s = build_error(b);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("window has 4 values but frame_length is 8"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace kiln
