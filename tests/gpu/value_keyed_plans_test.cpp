// A small integer input that sets a shape (a length) on the CUDA backend: after the first run reads it back, its
// value joins the plan key, so each value runs as its own captured CUDA graph; the cache stays bounded (least
// recently used out), and values that change on every call stop the keying instead of thrashing. Every output
// is checked against the CPU backend.
#include "gpu/gpu_harness.h"
#include "kiln/kiln.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

// y = relu(x[:n]) * 2 for x f32[64] and n an i64 scalar input: n sets y's length through Unsqueeze and Slice.
ModelBuilder prefix_model() {
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"64"}).input("n", DType::kI64, {});
  b.initializer("axes", testing::i64_tensor({1}, {0}));
  b.initializer("zero", testing::i64_tensor({1}, {0}));
  b.initializer("two", testing::f32_tensor({}, {2.f}));
  b.node("Unsqueeze", {"n", "axes"}, {"end"}, "length_as_1d");
  b.node("Slice", {"x", "zero", "end", "axes"}, {"prefix"}, "take_prefix");
  b.node("Relu", {"prefix"}, {"r"}, "act").node("Mul", {"r", "two"}, {"y"}, "scale");
  b.output("y", DType::kF32, {"len"});
  return b;
}

Engine build(BackendKind backend) {
  BuildConfig cfg;
  cfg.backend = backend;
  auto e = Builder::build_from_bytes(prefix_model().bytes(), cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? *e : Engine();
}

class ValueKeyedPlans : public ::testing::Test {
 protected:
  void SetUp() override {
    KILN_REQUIRE_GPU();
    cpu_ = build(BackendKind::kCpu);
    gpu_ = build(BackendKind::kCuda);
    auto c = gpu_.create_context();
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    ctx_ = std::make_unique<ExecutionContext>(std::move(*c));
  }
  // Runs both backends at length n and compares; returns the GPU run's info.
  RunInfo run(int64_t n) {
    SCOPED_TRACE(n);
    const std::map<std::string, Tensor> in = {{"x", x_}, {"n", Tensor::scalar_i64(n)}};
    auto want = cpu_.create_context()->infer(in);
    auto got = ctx_->infer(in);
    EXPECT_TRUE(want.ok()) << want.status().to_string();
    EXPECT_TRUE(got.ok()) << got.status().to_string();
    if (!want.ok() || !got.ok()) return {};
    const Tensor& g = got->at("y");
    const Tensor& w = want->at("y");
    EXPECT_EQ(g.dims(), (std::vector<int64_t>{n}));
    EXPECT_EQ(g.dims(), w.dims());
    for (int64_t i = 0; i < std::min(g.numel(), w.numel()); ++i) EXPECT_FLOAT_EQ(g.data<float>()[i], w.data<float>()[i]);
    return ctx_->last_run_info();
  }
  Engine cpu_, gpu_;
  std::unique_ptr<ExecutionContext> ctx_;
  Tensor x_ = testing::random_f32({64}, 11);
};

TEST_F(ValueKeyedPlans, EachLengthRunsAsItsOwnCudaGraph) {
  RunInfo first = run(5);
  EXPECT_GT(first.downloads, 0) << "the first run reads the length back";
  EXPECT_FALSE(first.cuda_graph);
  EXPECT_EQ(first.value_keyed_inputs, (std::vector<std::string>{"n"}));
  RunInfo keyed = run(5);  // traced and captured with the length known before the run
  EXPECT_EQ(keyed.downloads, 0) << keyed.not_captured;
  RunInfo replay = run(5);
  EXPECT_TRUE(replay.cuda_graph) << replay.not_captured;
  EXPECT_EQ(replay.downloads, 0);
  run(3);
  EXPECT_TRUE(run(3).cuda_graph);
  RunInfo back = run(5);  // a length seen before: its graph, with its output length
  EXPECT_TRUE(back.cuda_graph);
  EXPECT_EQ(back.plan_cache_limit, 16);
  EXPECT_GE(back.cached_plans, 3);
  EXPECT_LE(back.cached_plans, back.plan_cache_limit);
  EXPECT_TRUE(run(0).value_keyed_inputs == std::vector<std::string>{"n"});  // an empty output is a length too
}

TEST_F(ValueKeyedPlans, CacheStaysBoundedAndKeyingStopsWhenValuesKeepChanging) {
  RunInfo last;
  for (int64_t n = 1; n <= 40; ++n) {
    last = run(n);
    EXPECT_LE(last.cached_plans, last.plan_cache_limit) << n;
  }
  EXPECT_TRUE(last.value_keyed_inputs.empty()) << "40 lengths in a row, each new: keying stopped";
  EXPECT_GT(last.downloads, 0) << "the length is read back in the run again";
  for (int64_t n : {7, 7, 64}) EXPECT_FALSE(run(n).cuda_graph);  // still right, node by node
}

}  // namespace
}  // namespace kiln
