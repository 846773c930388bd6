// Engine bundles: several engines of one model in one file, each run routed to the member that takes its shapes.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "kiln/kiln.h"
#include "engine/engine_state.h"
#include "support/engine_bytes.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

// y = relu(x @ w + b), x f32[batch, 16]; w is large enough that sharing it shows in the file size.
std::string mlp_model(uint64_t seed = 1) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "16"})
      .initializer("w", testing::random_f32({16, 256}, seed))
      .initializer("b", testing::random_f32({256}, seed + 1))
      .node("MatMul", {"x", "w"}, {"h"})
      .node("Add", {"h", "b"}, {"a"})
      .node("Relu", {"a"}, {"y"})
      .output("y", DType::kF32, {"batch", "256"});
  return b.bytes();
}

Engine build(int64_t lo, int64_t hi, const std::string& model = mlp_model(), const std::string& input = "x") {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  OptimizationProfile p;
  p.inputs[input] = {{lo, 16}, {hi, 16}, {hi, 16}};
  cfg.profiles.push_back(p);
  auto e = Builder::build_from_bytes(model, cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return *e;
}

Engine small_large() {
  auto e = Engine::bundle({build(1, 4), build(5, 32)});
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return *e;
}

// The CPU reference of the model, to check each member's answer.
std::vector<float> expected(const Tensor& x) {
  const Tensor w = testing::random_f32({16, 256}, 1), b = testing::random_f32({256}, 2);
  std::vector<float> y(static_cast<size_t>(x.dim(0)) * 256);
  for (int64_t r = 0; r < x.dim(0); ++r)
    for (int64_t c = 0; c < 256; ++c) {
      float acc = b.data<float>()[c];
      for (int64_t k = 0; k < 16; ++k) acc += x.data<float>()[r * 16 + k] * w.data<float>()[k * 256 + c];
      y[static_cast<size_t>(r * 256 + c)] = std::max(acc, 0.0f);
    }
  return y;
}

void expect_close(const Tensor& got, const std::vector<float>& want) {
  ASSERT_EQ(static_cast<size_t>(got.numel()), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got.data<float>()[i], want[i], 1e-4f) << "element " << i;
}

TEST(Bundle, DescribesItsMembers) {
  Engine e = small_large();
  EXPECT_EQ(e.info().bundle_members, 2u);
  ASSERT_EQ(e.members().size(), 2u);
  ASSERT_EQ(e.profiles().size(), 2u);
  EXPECT_EQ(e.profiles()[0].inputs.at("x").max, (std::vector<int64_t>{4, 16}));
  EXPECT_EQ(e.profiles()[1].inputs.at("x").min, (std::vector<int64_t>{5, 16}));
  EXPECT_EQ(e.info().precision, "f32");
  ASSERT_EQ(e.inputs().size(), 1u);
  EXPECT_EQ(e.inputs()[0].name, "x");
  EXPECT_FALSE(e.inputs()[0].shape[0].is_static());
  EXPECT_EQ(e.inputs()[0].shape[1].value(), 16);
  EXPECT_EQ(e.members()[1].info().bundle_members, 0u);
  EXPECT_EQ(e.info().num_nodes, e.members()[0].info().num_nodes + e.members()[1].info().num_nodes);
  // Both members hold the same weights: counted once.
  EXPECT_EQ(e.info().weight_bytes, e.members()[0].info().weight_bytes);
}

TEST(Bundle, EachRunGoesToTheMemberThatTakesItsShape) {
  auto ctx = small_large().create_context();
  ASSERT_TRUE(ctx.ok());
  EXPECT_EQ(ctx->last_run_info().bundle_member, -1);  // nothing run yet
  for (int64_t batch : {1, 3, 4, 5, 17, 32, 2}) {
    Tensor x = testing::random_f32({batch, 16}, static_cast<uint64_t>(batch) + 7);
    auto out = ctx->infer({{"x", x}});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    expect_close(out->at("y"), expected(x));
    EXPECT_EQ(ctx->last_run_info().bundle_member, batch <= 4 ? 0 : 1) << "batch " << batch;
    EXPECT_EQ(ctx->profile(), batch <= 4 ? 0 : 1);
  }
}

TEST(Bundle, AShapeNoMemberTakesNamesEveryRange) {
  auto ctx = small_large().create_context();
  auto out = ctx->infer({{"x", Tensor(DType::kF32, {40, 16})}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kOutOfRange);
  const std::string& m = out.status().message();
  EXPECT_NE(m.find("'x' [40,16]"), std::string::npos) << m;
  EXPECT_NE(m.find("member 0 profile 0: 'x' [1,16]..[4,16]"), std::string::npos) << m;
  EXPECT_NE(m.find("member 1 profile 0: 'x' [5,16]..[32,16]"), std::string::npos) << m;
  EXPECT_FALSE(ctx->set_input_shape("x", {33, 16}).ok());
  // The context keeps working.
  Tensor x = testing::random_f32({2, 16}, 3);
  auto ok = ctx->infer({{"x", x}});
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  expect_close(ok->at("y"), expected(x));
}

TEST(Bundle, EnqueueRoutesOnShapeChangesWithCallerBuffers) {
  auto ctx = small_large().create_context();
  std::vector<float> y(32 * 256, -1.0f);
  for (int64_t batch : {2, 20, 4, 5}) {
    Tensor x = testing::random_f32({batch, 16}, static_cast<uint64_t>(batch));
    ASSERT_TRUE(ctx->set_input_shape("x", {batch, 16}).ok());
    ASSERT_TRUE(ctx->set_tensor_address("x", x.raw(), x.nbytes()).ok());
    ASSERT_TRUE(ctx->set_tensor_address("y", y.data(), y.size() * sizeof(float)).ok());
    auto shape = ctx->output_shape("y");
    ASSERT_TRUE(shape.ok()) << shape.status().to_string();
    EXPECT_EQ(*shape, (std::vector<int64_t>{batch, 256}));
    ASSERT_TRUE(ctx->enqueue().ok());
    EXPECT_EQ(ctx->last_run_info().bundle_member, batch <= 4 ? 0 : 1);
    expect_close(Tensor::wrap(DType::kF32, {batch, 256}, y.data()), expected(x));
    // The same shape and buffers again: no re-routing needed, same answer.
    std::fill(y.begin(), y.end(), -1.0f);
    ASSERT_TRUE(ctx->enqueue().ok());
    expect_close(Tensor::wrap(DType::kF32, {batch, 256}, y.data()), expected(x));
  }
}

TEST(Bundle, OverlappingRangesGoToTheSmallestThatFits) {
  auto e = Engine::bundle({build(1, 32), build(1, 4)});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = e->create_context();
  ASSERT_TRUE(ctx->infer({{"x", Tensor(DType::kF32, {3, 16})}}).ok());
  EXPECT_EQ(ctx->last_run_info().bundle_member, 1);
  ASSERT_TRUE(ctx->infer({{"x", Tensor(DType::kF32, {8, 16})}}).ok());
  EXPECT_EQ(ctx->last_run_info().bundle_member, 0);
  // Equal ranges: the earlier member.
  auto same = Engine::bundle({build(1, 8), build(1, 8)});
  ASSERT_TRUE(same.ok());
  auto c2 = same->create_context();
  ASSERT_TRUE(c2->infer({{"x", Tensor(DType::kF32, {3, 16})}}).ok());
  EXPECT_EQ(c2->last_run_info().bundle_member, 0);
}

TEST(Bundle, SetProfilePinsAMember) {
  auto ctx = small_large().create_context();
  ASSERT_TRUE(ctx->set_profile(1).ok());
  EXPECT_EQ(ctx->profile(), 1);
  auto small = ctx->infer({{"x", Tensor(DType::kF32, {2, 16})}});
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("outside optimization profile 1"), std::string::npos) << small.status().message();
  Tensor x = testing::random_f32({6, 16}, 9);
  auto out = ctx->infer({{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(ctx->last_run_info().bundle_member, 1);
  expect_close(out->at("y"), expected(x));
  EXPECT_FALSE(ctx->set_profile(2).ok());
  // -1: routed by shape again.
  ASSERT_TRUE(ctx->set_profile(-1).ok());
  ASSERT_TRUE(ctx->infer({{"x", Tensor(DType::kF32, {2, 16})}}).ok());
  EXPECT_EQ(ctx->last_run_info().bundle_member, 0);
  EXPECT_EQ(ctx->profile(), 0);
  // A single engine has no -1.
  EXPECT_FALSE(build(1, 4).create_context()->set_profile(-1).ok());
}

TEST(Bundle, FileStoresEqualWeightsOnceAndLoadsShared) {
  Engine e = small_large();
  auto bytes = e.serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto one = e.members()[0].serialize();
  ASSERT_TRUE(one.ok());
  const size_t weights = e.members()[0].info().weight_bytes;
  ASSERT_GT(weights, 16000u);
  // Two graphs but one copy of the weights: well under two single engines.
  EXPECT_LT(bytes->size(), one->size() * 2 - weights * 9 / 10);
  auto loaded = Engine::deserialize(*bytes);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->info().bundle_members, 2u);
  EXPECT_EQ(loaded->info().format_version, 2u);
  const auto& w0 = loaded->members()[0].state()->graph->initializers;
  const auto& w1 = loaded->members()[1].state()->graph->initializers;
  ASSERT_EQ(w0.size(), w1.size());
  for (const auto& [name, t] : w0) EXPECT_EQ(t.raw(), w1.at(name).raw()) << name << " is held twice";
  // Deterministic: the same bundle gives the same bytes, and a loaded one re-serializes to them.
  EXPECT_EQ(*bytes, *small_large().serialize());
  EXPECT_EQ(*bytes, *loaded->serialize());
  auto ctx = loaded->create_context();
  Tensor x = testing::random_f32({12, 16}, 4);
  auto out = ctx->infer({{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  expect_close(out->at("y"), expected(x));
}

TEST(Bundle, MembersMustAgree) {
  auto one = Engine::bundle({build(1, 4)});
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.status().message().find("two or more engines, got 1"), std::string::npos);
  // Another model: other input names.
  ModelBuilder b;
  b.input("z", DType::kF32, {"batch", "16"}).node("Relu", {"z"}, {"y"}).output("y", DType::kF32, {"batch", "16"});
  auto other = Engine::bundle({build(1, 4), build(5, 8, b.bytes(), "z")});
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("member 1 takes inputs 'z' f32 but member 0 takes 'x' f32"), std::string::npos)
      << other.status().message();
  auto nested = Engine::bundle({small_large(), build(33, 64)});
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.status().message().find("member 0 is itself a bundle"), std::string::npos) << nested.status().message();
  auto empty = Engine::bundle({build(1, 4), Engine()});
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("member 1 is an empty Engine"), std::string::npos);
}

TEST(Bundle, AMemberWithoutProfileNeedsStaticInputs) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto unbounded = Builder::build_from_bytes(mlp_model(), cfg);
  ASSERT_TRUE(unbounded.ok());
  auto r = Engine::bundle({build(1, 4), *unbounded});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("member 1 has no optimization profile and input 'x' is dynamic"), std::string::npos)
      << r.status().message();
}

TEST(Bundle, CorruptMemberListsAreCleanErrors) {
  const std::string bytes = *small_large().serialize();
  auto missing = Engine::deserialize(testing::with_manifest(bytes, [](nlohmann::json& m) { m["members"][1]["graph"] = "graph.9"; }));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("bundle member 1"), std::string::npos) << missing.status().message();
  EXPECT_NE(missing.status().message().find("no 'graph.9' section"), std::string::npos) << missing.status().message();
  auto none = Engine::deserialize(testing::with_manifest(bytes, [](nlohmann::json& m) { m["members"] = nlohmann::json::array(); }));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("lists no members"), std::string::npos) << none.status().message();
  auto wrong = Engine::deserialize(testing::with_manifest(bytes, [](nlohmann::json& m) { m["members"][0]["graph"] = 7; }));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidEngine);
  auto one = Engine::deserialize(testing::with_manifest(bytes, [](nlohmann::json& m) { m["members"].erase(1); }));
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.status().message().find("two or more engines"), std::string::npos) << one.status().message();
}

}  // namespace
}  // namespace kiln
