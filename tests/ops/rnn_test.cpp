#include <gtest/gtest.h>

#include <kiln_onnx/onnx.pb.h>

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

std::vector<float> values(const Tensor& t) { return std::vector<float>(t.data<float>(), t.data<float>() + t.numel()); }

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST(RnnOp, TwoStepsByHand) {
  ModelBuilder b(14);
  b.input("x", DType::kF32, {"2", "1", "1"})
      .initializer("w", testing::f32_tensor({1, 1, 1}, {0.5f}))
      .initializer("r", testing::f32_tensor({1, 1, 1}, {0.25f}))
      .node("RNN", {"x", "w", "r"}, {"y", "yh"})
      .attr("hidden_size", int64_t{1})
      .output("y")
      .output("yh");
  auto out = run(b, {{"x", testing::f32_tensor({2, 1, 1}, {1.f, -2.f})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const double h1 = std::tanh(0.5), h2 = std::tanh(-1.0 + 0.25 * h1);
  ASSERT_EQ(out->at("y").dims(), (std::vector<int64_t>{2, 1, 1, 1}));
  EXPECT_NEAR(out->at("y").data<float>()[0], h1, 1e-6);
  EXPECT_NEAR(out->at("y").data<float>()[1], h2, 1e-6);
  EXPECT_NEAR(out->at("yh").data<float>()[0], h2, 1e-6);
}

// With a linear activation and unit weights the state is a running sum, which shows direction and lengths.
TEST(RnnOp, BidirectionalWithSequenceLengths) {
  ModelBuilder b(14);
  b.input("x", DType::kF32, {"3", "2", "1"})
      .input("lens", DType::kI32, {"2"})
      .initializer("w", testing::f32_tensor({2, 1, 1}, {1, 1}))
      .initializer("r", testing::f32_tensor({2, 1, 1}, {1, 1}))
      .node("RNN", {"x", "w", "r", "", "lens"}, {"y", "yh"})
      .attr("hidden_size", int64_t{1})
      .attr("direction", std::string("bidirectional"))
      .attr("activations", std::string("Affine"))
      .output("y")
      .output("yh");
  // The builder writes one string; make it the one-element list the op expects.
  auto& attrs = *b.proto().mutable_graph()->mutable_node(0)->mutable_attribute();
  for (auto& a : attrs)
    if (a.name() == "activations") {
      a.set_type(kiln_onnx::AttributeProto::STRINGS);
      a.add_strings(a.s());
      a.clear_s();
    }
  auto out = run(b, {{"x", testing::f32_tensor({3, 2, 1}, {1, 10, 2, 20, 3, 30})},
                     {"lens", Tensor::from_vector(DType::kI32, {2}, std::vector<int32_t>{3, 1})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  // y[t, dir, batch]
  EXPECT_EQ(values(out->at("y")), (std::vector<float>{1, 10, 6, 10, 3, 0, 5, 0, 6, 0, 3, 0}));
  EXPECT_EQ(values(out->at("yh")), (std::vector<float>{6, 10, 6, 10}));
}

TEST(GruOp, LinearBeforeResetBatchFirstMatchesFormula) {
  const int64_t batch = 3, seq = 2, in = 2, hid = 3;
  const Tensor x = testing::random_f32({batch, seq, in}, 1);
  const Tensor w = testing::random_f32({1, 3 * hid, in}, 2);
  const Tensor r = testing::random_f32({1, 3 * hid, hid}, 3);
  const Tensor bias = testing::random_f32({1, 6 * hid}, 4);
  const Tensor h0 = testing::random_f32({batch, 1, hid}, 5);
  ModelBuilder b(14);
  b.input("x", DType::kF32, {"3", "2", "2"})
      .initializer("w", w)
      .initializer("r", r)
      .initializer("b", bias)
      .initializer("h0", h0)
      .node("GRU", {"x", "w", "r", "b", "", "h0"}, {"y", "yh"})
      .attr("hidden_size", hid)
      .attr("layout", int64_t{1})
      .attr("linear_before_reset", int64_t{1})
      .output("y")
      .output("yh");
  auto out = run(b, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ(out->at("y").dims(), (std::vector<int64_t>{batch, seq, 1, hid}));
  ASSERT_EQ(out->at("yh").dims(), (std::vector<int64_t>{batch, 1, hid}));
  auto W = [&](int64_t row, int64_t k) { return w.data<float>()[row * in + k]; };
  auto R = [&](int64_t row, int64_t k) { return r.data<float>()[row * hid + k]; };
  auto B = [&](int64_t i) { return bias.data<float>()[i]; };
  for (int64_t bt = 0; bt < batch; ++bt) {
    std::vector<double> h(h0.data<float>() + bt * hid, h0.data<float>() + (bt + 1) * hid);
    for (int64_t t = 0; t < seq; ++t) {
      const float* xt = x.data<float>() + (bt * seq + t) * in;
      auto lin_x = [&](int64_t row) { return xt[0] * W(row, 0) + xt[1] * W(row, 1) + B(row); };
      auto lin_h = [&](int64_t row) {
        double s = B(3 * hid + row);
        for (int64_t k = 0; k < hid; ++k) s += h[k] * R(row, k);
        return s;
      };
      std::vector<double> next(hid);
      for (int64_t j = 0; j < hid; ++j) {
        const double z = sigmoid(lin_x(j) + lin_h(j));
        const double rr = sigmoid(lin_x(hid + j) + lin_h(hid + j));
        const double cand = std::tanh(lin_x(2 * hid + j) + rr * lin_h(2 * hid + j));
        next[j] = (1 - z) * cand + z * h[j];
      }
      h = next;
      for (int64_t j = 0; j < hid; ++j)
        EXPECT_NEAR(out->at("y").data<float>()[(bt * seq + t) * hid + j], h[j], 1e-5) << bt << "," << t << "," << j;
    }
    for (int64_t j = 0; j < hid; ++j) EXPECT_NEAR(out->at("yh").data<float>()[bt * hid + j], h[j], 1e-5);
  }
}

TEST(LstmOp, ReversePeepholesInitialStatesMatchFormula) {
  const int64_t seq = 3, in = 1, hid = 2;
  const Tensor x = testing::random_f32({seq, 1, in}, 11);
  const Tensor w = testing::random_f32({1, 4 * hid, in}, 12);
  const Tensor r = testing::random_f32({1, 4 * hid, hid}, 13);
  const Tensor bias = testing::random_f32({1, 8 * hid}, 14);
  const Tensor h0 = testing::random_f32({1, 1, hid}, 15);
  const Tensor c0 = testing::random_f32({1, 1, hid}, 16);
  const Tensor p = testing::random_f32({1, 3 * hid}, 17);
  ModelBuilder b(14);
  b.input("x", DType::kF32, {"3", "1", "1"})
      .initializer("w", w)
      .initializer("r", r)
      .initializer("b", bias)
      .initializer("h0", h0)
      .initializer("c0", c0)
      .initializer("p", p)
      .node("LSTM", {"x", "w", "r", "b", "", "h0", "c0", "p"}, {"y", "yh", "yc"})
      .attr("hidden_size", hid)
      .attr("direction", std::string("reverse"))
      .output("y")
      .output("yh")
      .output("yc");
  auto out = run(b, {{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  std::vector<double> h(h0.data<float>(), h0.data<float>() + hid), c(c0.data<float>(), c0.data<float>() + hid);
  auto gate = [&](int64_t row, double xt) {
    double s = xt * w.data<float>()[row] + bias.data<float>()[row] + bias.data<float>()[4 * hid + row];
    for (int64_t k = 0; k < hid; ++k) s += h[k] * r.data<float>()[row * hid + k];
    return s;
  };
  const float* P = p.data<float>();
  for (int64_t t = seq - 1; t >= 0; --t) {
    const double xt = x.data<float>()[t];
    std::vector<double> nh(hid), nc(hid);
    for (int64_t j = 0; j < hid; ++j) {
      const double i = sigmoid(gate(j, xt) + P[j] * c[j]);
      const double f = sigmoid(gate(2 * hid + j, xt) + P[2 * hid + j] * c[j]);
      nc[j] = f * c[j] + i * std::tanh(gate(3 * hid + j, xt));
      const double o = sigmoid(gate(hid + j, xt) + P[hid + j] * nc[j]);
      nh[j] = o * std::tanh(nc[j]);
    }
    h = nh;
    c = nc;
    for (int64_t j = 0; j < hid; ++j) EXPECT_NEAR(out->at("y").data<float>()[t * hid + j], h[j], 1e-5) << t;
  }
  for (int64_t j = 0; j < hid; ++j) {
    EXPECT_NEAR(out->at("yh").data<float>()[j], h[j], 1e-5);
    EXPECT_NEAR(out->at("yc").data<float>()[j], c[j], 1e-5);
  }
}

TEST(LstmOp, WrongWeightShapeIsABuildError) {
  ModelBuilder b(14);
  b.input("x", DType::kF32, {"1", "1", "2"})
      .initializer("w", testing::f32_tensor({1, 8, 2}, std::vector<float>(16, 0.f)))
      .initializer("r", testing::f32_tensor({1, 12, 3}, std::vector<float>(36, 0.f)))
      .node("LSTM", {"x", "w", "r"}, {"y"})
      .attr("hidden_size", int64_t{3})
      .output("y");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("input 1 ('w') [1,8,2] has gates*hidden_size = 8 but 12 is expected"),
            std::string::npos)
      << e.status().message();
}

}  // namespace
}  // namespace kiln
