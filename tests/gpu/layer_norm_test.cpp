// LayerNormalization and RMSNormalization on the GPU against the CPU reference: row lengths across the warp,
// cached-block and three-pass kernels, axis variants, broadcast/scalar/mixed-dtype parameters, Mean/InvStdDev
// outputs, large f16 magnitudes (sums of squares far beyond the f16 range), empty tensors.
#include "gpu/norm_reduce_test_util.h"

namespace kiln {
namespace {

using gputest::sdims;
using testing::ModelBuilder;

constexpr DType kFloats[] = {DType::kF32, DType::kF16, DType::kBF16};

struct LnCase {
  std::vector<int64_t> x;
  int64_t axis = -1;
  std::vector<int64_t> scale;  // empty: the normalized dims
  bool bias = true;
  bool stats = false;  // Mean and InvStdDev outputs
  DType param_dt = DType::kUndefined;  // default: X's dtype
  float eps = 1e-5f;
};

void check_layer_norm(DType dt, const LnCase& c, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  const int64_t rank = static_cast<int64_t>(c.x.size());
  const int64_t axis = c.axis < 0 ? c.axis + rank : c.axis;
  std::vector<int64_t> sdim = c.scale.empty() ? std::vector<int64_t>(c.x.begin() + axis, c.x.end()) : c.scale;
  const DType pdt = c.param_dt == DType::kUndefined ? dt : c.param_dt;
  ModelBuilder b;
  b.input("x", dt, sdims(c.x)).input("scale", pdt, sdims(sdim));
  std::map<std::string, Tensor> in = {{"x", gputest::uniform_tensor(dt, c.x, seed, lo, hi)},
                                      {"scale", gputest::uniform_tensor(pdt, sdim, seed + 1, 0.5, 1.5)}};
  std::vector<std::string> ins = {"x", "scale"};
  if (c.bias) {
    b.input("bias", pdt, sdims(sdim));
    in["bias"] = gputest::random_tensor(pdt, sdim, seed + 2);
    ins.push_back("bias");
  }
  std::vector<std::string> outs = {"y"};
  if (c.stats) outs = {"y", "mean", "inv_std"};
  b.node("LayerNormalization", ins, outs).attr("axis", c.axis).attr("epsilon", c.eps);
  for (const auto& o : outs) b.output(o);
  gputest::expect_both(b, in);
}

TEST(GpuLayerNorm, RowLengthsAllDtypes) {
  KILN_REQUIRE_GPU();
  const int64_t lengths[] = {1, 3, 8, 31, 33, 127, 768, 1000, 1024, 1025, 2048, 4097, 8192, 16384, 20000, 20001};
  for (DType dt : kFloats)
    for (int64_t n : lengths) {
      SCOPED_TRACE(std::string(gputest::dname(dt)) + " d=" + std::to_string(n));
      const int64_t rows = n <= 33 ? 67 : (n <= 1024 ? 9 : 3);
      LnCase c;
      c.x = {rows, n};
      check_layer_norm(dt, c, 100 + n);
      c.bias = false;
      check_layer_norm(dt, c, 200 + n);
    }
}

TEST(GpuLayerNorm, AxesAndBroadcastParameters) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    SCOPED_TRACE(gputest::dname(dt));
    LnCase c;
    c.x = {2, 3, 4, 5};
    for (int64_t axis : {0, 1, 2, 3, -1, -2, -3}) {
      c.axis = axis;
      check_layer_norm(dt, c, 10);
    }
    c.axis = 1;
    c.scale = {4, 5};  // broadcast over dim 1
    check_layer_norm(dt, c, 11);
    c.scale = {1, 1, 5};  // extra leading 1s, broadcast over dims 1 and 2
    check_layer_norm(dt, c, 12);
    c.scale = {3, 1, 5};
    check_layer_norm(dt, c, 13);
    c.scale = {1};  // scalar
    check_layer_norm(dt, c, 14);
    c.axis = -1;
    c.scale = {1, 5};
    check_layer_norm(dt, c, 15);
    // Transformer shapes: [batch, seq, hidden].
    LnCase t;
    t.x = {2, 77, 768};
    check_layer_norm(dt, t, 16);
    t.x = {1, 5, 4096};
    check_layer_norm(dt, t, 17);
  }
}

TEST(GpuLayerNorm, MixedParameterDtypesAndEpsilon) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats)
    for (DType pdt : kFloats) {
      SCOPED_TRACE(std::string(gputest::dname(dt)) + " params " + gputest::dname(pdt));
      LnCase c;
      c.x = {6, 771};
      c.param_dt = pdt;
      check_layer_norm(dt, c, 20);
      c.x = {2, 3000};
      c.eps = 1e-3f;
      check_layer_norm(dt, c, 21);
    }
}

TEST(GpuLayerNorm, MeanAndInvStdDevOutputs) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats)
    for (std::vector<int64_t> x : {std::vector<int64_t>{7, 33}, std::vector<int64_t>{3, 5, 768},
                                   std::vector<int64_t>{2, 4097}, std::vector<int64_t>{2, 3, 4, 5}}) {
      SCOPED_TRACE(std::string(gputest::dname(dt)) + " " + dims_to_string(x));
      LnCase c;
      c.x = x;
      c.stats = true;
      check_layer_norm(dt, c, 30);
      c.axis = 1;
      check_layer_norm(dt, c, 31);
    }
}

TEST(GpuLayerNorm, LargeF16MagnitudesAccumulateInF32) {
  KILN_REQUIRE_GPU();
  // Values around 300: x^2 ~ 9e4 already exceeds the f16 range, and a row of 4097 sums to ~1.2e6.
  for (DType dt : kFloats)
    for (int64_t n : {31, 768, 1025, 4097, 20000}) {
      SCOPED_TRACE(std::string(gputest::dname(dt)) + " d=" + std::to_string(n));
      LnCase c;
      c.x = {3, n};
      c.stats = true;
      check_layer_norm(dt, c, 40 + n, 290.0, 310.0);
    }
}

TEST(GpuLayerNorm, EmptyTensors) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    // No rows.
    ModelBuilder b;
    b.input("x", dt, {"0", "768"}).input("s", dt, {"768"}).node("LayerNormalization", {"x", "s"}, {"y"}).output("y");
    gputest::expect_on_device(b, {{"x", Tensor(dt, {0, 768})}, {"s", gputest::random_tensor(dt, {768}, 1)}});
    // Empty rows, with statistics (0/0: NaN in the reference).
    ModelBuilder e;
    e.input("x", dt, {"4", "0"}).input("s", dt, {"0"})
        .node("LayerNormalization", {"x", "s"}, {"y", "mean", "inv"})
        .output("y").output("mean").output("inv");
    gputest::expect_on_device(e, {{"x", Tensor(dt, {4, 0})}, {"s", Tensor(dt, {0})}});
  }
}

// ---- RMSNormalization (opset 23) ------------------------------------------------------------------------------
void check_rms(DType dt, const std::vector<int64_t>& x, int64_t axis, std::vector<int64_t> scale, uint64_t seed,
               double lo = -1.0, double hi = 1.0, DType pdt = DType::kUndefined) {
  const int64_t rank = static_cast<int64_t>(x.size());
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (scale.empty()) scale.assign(x.begin() + a, x.end());
  if (pdt == DType::kUndefined) pdt = dt;
  ModelBuilder b(23);
  b.input("x", dt, sdims(x)).input("scale", pdt, sdims(scale))
      .node("RMSNormalization", {"x", "scale"}, {"y"}).attr("axis", axis).output("y");
  gputest::expect_both(b, {{"x", gputest::uniform_tensor(dt, x, seed, lo, hi)},
                           {"scale", gputest::uniform_tensor(pdt, scale, seed + 1, 0.5, 1.5)}});
}

TEST(GpuRmsNorm, RowLengthsAxesAndMagnitudes) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloats) {
    SCOPED_TRACE(gputest::dname(dt));
    for (int64_t n : {1, 3, 31, 33, 127, 768, 1025, 4097, 20001}) {
      SCOPED_TRACE("d=" + std::to_string(n));
      check_rms(dt, {n <= 33 ? int64_t{67} : int64_t{5}, n}, -1, {}, 50 + n);
      check_rms(dt, {3, n}, -1, {}, 60 + n, 290.0, 310.0);  // sum of squares ~1e8 for 4097: f32 only
    }
    check_rms(dt, {2, 3, 4, 5}, 1, {}, 70);
    check_rms(dt, {2, 3, 4, 5}, 2, {1, 5}, 71);
    check_rms(dt, {2, 3, 4, 5}, -1, {1}, 72);
    check_rms(dt, {2, 7, 2048}, -1, {}, 73, -1.0, 1.0, DType::kF32);
  }
}

}  // namespace
}  // namespace kiln
