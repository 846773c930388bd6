// Outputs written into an input's buffer (a KV cache updated in place): the build-time checks and the in-place
// verdict, the engine file round trip, and the CPU backend's enqueue across decode steps.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "ir/in_place.h"
#include "kiln/kiln.h"
#include "support/engine_bytes.h"
#include "support/graph_test_util.h"
#include "support/kv_cache_model.h"

namespace kiln {
namespace {

using testing::kKvWidth;
using testing::kv_cache_step;
using testing::ModelBuilder;

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

Result<Engine> build(const ModelBuilder& b, std::vector<std::pair<std::string, std::string>> aliases,
                     bool auto_alias = true, std::vector<std::string>* lines = nullptr) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.aliases = std::move(aliases);
  cfg.auto_alias = auto_alias;
  if (lines) cfg.progress = [lines](std::string_view l) { lines->emplace_back(l); };
  return Builder::build_from_bytes(b.bytes(), cfg);
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

TEST(AliasVerdict, ScatterThatIsThePastsLastReaderWritesInPlace) {
  ir::Graph g = testing::import_inferred(kv_cache_step("cache", "new_cache", 5).bytes());
  const ir::InPlaceVerdict v = ir::in_place_verdict(g, "new_cache", "cache");
  EXPECT_TRUE(v.in_place) << v.why;
}

TEST(AliasVerdict, AReaderAfterTheScatterForcesACopyAndIsNamed) {
  ir::Graph g = testing::import_inferred(kv_cache_step("cache", "new_cache", 5, /*read_past_after=*/true).bytes());
  const ir::InPlaceVerdict v = ir::in_place_verdict(g, "new_cache", "cache");
  EXPECT_FALSE(v.in_place);
  EXPECT_TRUE(has(v.why, "cache_delta")) << v.why;
  EXPECT_TRUE(has(v.why, "cache_write")) << v.why;
}

TEST(AliasVerdict, AReaderOfTheOldCacheThatRunsBeforeTheScatterAllowsInPlace) {
  // z = ReduceSum(cache) needs nothing the scatter makes: the graph runs it first, so in place stays safe.
  ModelBuilder b = kv_cache_step("cache", "new_cache", 5);
  b.node("ReduceSum", {"cache", "axes1"}, {"z"}, "old_cache_sum").attr("keepdims", int64_t{0});
  b.output("z", DType::kF32, {"batch", "4"});
  ir::Graph g = testing::import_inferred(b.bytes());
  auto index_of = [&](const std::string& name) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (g.nodes[i].name == name) return static_cast<int>(i);
    return -1;
  };
  ASSERT_GE(index_of("old_cache_sum"), 0);
  ASSERT_LT(index_of("old_cache_sum"), index_of("cache_write"));
  const ir::InPlaceVerdict v = ir::in_place_verdict(g, "new_cache", "cache");
  EXPECT_TRUE(v.in_place) << v.why;
}

TEST(AliasVerdict, AnOutputThatIsNotAScatterOfTheInputIsCopied) {
  ir::Graph g = testing::import_inferred(kv_cache_step("cache", "new_cache", 5).bytes());
  const ir::InPlaceVerdict v = ir::in_place_verdict(g, "y", "cache");
  EXPECT_FALSE(v.in_place);
  EXPECT_TRUE(has(v.why, "cache_sum")) << v.why;
  // A scatter into another tensor than the aliased input.
  const ir::InPlaceVerdict w = ir::in_place_verdict(g, "new_cache", "x");
  EXPECT_FALSE(w.in_place);
  EXPECT_TRUE(has(w.why, "not into 'x'")) << w.why;
}

TEST(AliasVerdict, AnotherGraphOutputViewingTheInputForcesACopy) {
  ModelBuilder b = kv_cache_step("cache", "new_cache", 5);
  b.node("Identity", {"cache"}, {"cache_view"}, "cache_view").output("cache_view", DType::kF32, {"batch", "5", "4"});
  ir::Graph g = testing::import_inferred(b.bytes());
  const ir::InPlaceVerdict v = ir::in_place_verdict(g, "new_cache", "cache");
  EXPECT_FALSE(v.in_place);
  EXPECT_TRUE(has(v.why, "cache_view")) << v.why;
}

TEST(AliasBuild, DeclaredAliasIsStoredAndSurvivesSaveAndLoad) {
  std::vector<std::string> lines;
  auto e = build(kv_cache_step("cache", "new_cache", 5), {{"new_cache", "cache"}}, false, &lines);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  ASSERT_EQ(e->info().aliases.size(), 1u);
  EXPECT_EQ(e->info().aliases.at("new_cache"), "cache");
  EXPECT_TRUE(has(joined(lines), "'new_cache' is written into the buffer of 'cache' (in place")) << joined(lines);
  auto bytes = e->serialize();
  ASSERT_TRUE(bytes.ok());
  auto loaded = Engine::deserialize(*bytes);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(loaded->info().aliases, e->info().aliases);
  EXPECT_TRUE(has(loaded->info().manifest_json, "\"aliases\"")) << loaded->info().manifest_json;
}

TEST(AliasBuild, BuildReportsWhyAnAliasIsCopied) {
  std::vector<std::string> lines;
  auto e = build(kv_cache_step("cache", "new_cache", 5, true), {{"new_cache", "cache"}}, false, &lines);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_TRUE(has(joined(lines), "copied there after each run")) << joined(lines);
  EXPECT_TRUE(has(joined(lines), "cache_delta")) << joined(lines);
}

TEST(AliasBuild, MismatchedOrUnknownTensorsAreErrorsNamingThem) {
  const ModelBuilder b = kv_cache_step("cache", "new_cache", 5);
  auto shape = build(b, {{"y", "cache"}});
  ASSERT_FALSE(shape.ok());
  EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument);
  const std::string m = shape.status().message();
  EXPECT_TRUE(has(m, "--alias y:cache")) << m;
  EXPECT_TRUE(has(m, "f32[batch,4]") && has(m, "f32[batch,5,4]")) << m;
  EXPECT_TRUE(has(m, "docs/kv_cache.md")) << m;

  auto dtype = build(b, {{"new_cache", "pos"}});
  ASSERT_FALSE(dtype.ok());
  EXPECT_TRUE(has(dtype.status().message(), "i64[1]")) << dtype.status().message();

  auto unknown_out = build(b, {{"nope", "cache"}});
  ASSERT_FALSE(unknown_out.ok());
  EXPECT_TRUE(has(unknown_out.status().message(), "'nope' is not an output")) << unknown_out.status().message();
  EXPECT_TRUE(has(unknown_out.status().message(), "new_cache")) << unknown_out.status().message();

  auto unknown_in = build(b, {{"new_cache", "nope"}});
  ASSERT_FALSE(unknown_in.ok());
  EXPECT_TRUE(has(unknown_in.status().message(), "'nope' is not an input")) << unknown_in.status().message();

  auto twice = build(b, {{"new_cache", "cache"}, {"new_cache", "cache"}});
  ASSERT_FALSE(twice.ok());
  EXPECT_TRUE(has(twice.status().message(), "aliased twice")) << twice.status().message();
}

TEST(AliasBuild, KvCacheNamesArePairedWithoutAFlag) {
  auto e = build(kv_cache_step("past_key_values.0.key", "present.0.key", 5), {});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  ASSERT_EQ(e->info().aliases.size(), 1u);
  EXPECT_EQ(e->info().aliases.at("present.0.key"), "past_key_values.0.key");
  auto legacy = build(kv_cache_step("past.3", "present.3", 5), {});
  ASSERT_TRUE(legacy.ok()) << legacy.status().to_string();
  EXPECT_EQ(legacy->info().aliases.at("present.3"), "past.3");
  auto off = build(kv_cache_step("past_key_values.0.key", "present.0.key", 5), {}, /*auto_alias=*/false);
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off->info().aliases.empty());
}

TEST(AliasBuild, AGrowingCacheIsNotPairedAndTheBuildSaysWhy) {
  // present = Concat(past, new row): one row longer than past, as a cache without preallocation grows.
  ModelBuilder b(17);
  b.input("x", DType::kF32, {"batch", "1", "4"}).input("past.0", DType::kF32, {"batch", "past_len", "4"});
  b.node("Concat", {"past.0", "x"}, {"present.0"}, "grow").attr("axis", int64_t{1});
  b.output("present.0", DType::kF32, {"batch", "?", "4"});
  std::vector<std::string> lines;
  auto e = build(b, {}, true, &lines);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  EXPECT_TRUE(e->info().aliases.empty());
  EXPECT_TRUE(has(joined(lines), "'present.0' looks like the next state of 'past.0'")) << joined(lines);
  EXPECT_TRUE(has(joined(lines), "grows by concatenation")) << joined(lines);
}

TEST(AliasBuild, AnEngineFileWithABadAliasIsRefused) {
  auto e = build(kv_cache_step("cache", "new_cache", 5), {{"new_cache", "cache"}});
  ASSERT_TRUE(e.ok());
  auto bytes = e->serialize();
  ASSERT_TRUE(bytes.ok());
  for (const auto& bad : {nlohmann::json{{"y", "cache"}}, nlohmann::json{{"new_cache", "missing"}}}) {
    auto edited = testing::with_manifest(*bytes, [&](nlohmann::json& m) { m["aliases"] = bad; });
    auto loaded = Engine::deserialize(edited);
    ASSERT_FALSE(loaded.ok()) << bad.dump();
    EXPECT_TRUE(has(loaded.status().message(), "engine alias")) << loaded.status().message();
  }
}

// Decode steps on one cache buffer that is never rebound: each enqueue writes the new row into it.
void decode_and_check(const ModelBuilder& model, bool bind_present_to_past) {
  constexpr int64_t kBatch = 2, kLen = 5;
  auto e = build(model, {{"new_cache", "cache"}});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = e->create_context();
  ASSERT_TRUE(ctx.ok());
  std::vector<float> cache(kBatch * kLen * kKvWidth, 0.f), x(kBatch * kKvWidth), y(kBatch * kKvWidth),
      z(kBatch * kKvWidth);
  int64_t pos = 0;
  ASSERT_TRUE(ctx->set_input_shape("x", {kBatch, kKvWidth}).ok());
  ASSERT_TRUE(ctx->set_input_shape("pos", {1}).ok());
  ASSERT_TRUE(ctx->set_input_shape("cache", {kBatch, kLen, kKvWidth}).ok());
  ASSERT_TRUE(ctx->set_tensor_address("x", x.data(), x.size() * 4).ok());
  ASSERT_TRUE(ctx->set_tensor_address("pos", &pos, 8).ok());
  ASSERT_TRUE(ctx->set_tensor_address("cache", cache.data(), cache.size() * 4).ok());
  ASSERT_TRUE(ctx->set_tensor_address("y", y.data(), y.size() * 4).ok());
  const bool has_z = e->outputs().size() == 3;
  if (has_z) ASSERT_TRUE(ctx->set_tensor_address("z", z.data(), z.size() * 4).ok());
  if (bind_present_to_past) ASSERT_TRUE(ctx->set_tensor_address("new_cache", cache.data(), cache.size() * 4).ok());
  std::vector<float> want(cache.size(), 0.f);
  for (pos = 0; pos < kLen; ++pos) {
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7 + pos * 3) % 11) - 5.f;
    std::vector<float> old_sum(kBatch * kKvWidth, 0.f);
    for (int64_t b = 0; b < kBatch; ++b)
      for (int64_t t = 0; t < kLen; ++t)
        for (int64_t j = 0; j < kKvWidth; ++j) old_sum[b * kKvWidth + j] += want[(b * kLen + t) * kKvWidth + j];
    for (int64_t b = 0; b < kBatch; ++b) {
      const auto k = testing::kv_key_row(&x[b * kKvWidth]);
      for (int64_t j = 0; j < kKvWidth; ++j) want[(b * kLen + pos) * kKvWidth + j] = k[j];
    }
    Status s = ctx->enqueue();
    ASSERT_TRUE(s.ok()) << s.to_string();
    for (size_t i = 0; i < cache.size(); ++i) ASSERT_FLOAT_EQ(cache[i], want[i]) << "step " << pos << " element " << i;
    for (int64_t b = 0; b < kBatch; ++b)
      for (int64_t j = 0; j < kKvWidth; ++j) {
        float sum = 0;
        for (int64_t t = 0; t < kLen; ++t) sum += want[(b * kLen + t) * kKvWidth + j];
        EXPECT_NEAR(y[b * kKvWidth + j], sum, 1e-4) << "step " << pos;
        // New minus old cache: the copy into the input buffer happened after every node had read the old one.
        if (has_z) EXPECT_NEAR(z[b * kKvWidth + j], sum - old_sum[b * kKvWidth + j], 1e-4) << "step " << pos;
      }
  }
}

TEST(AliasRun, CpuEnqueueUpdatesTheCacheBufferAcrossSteps) {
  decode_and_check(kv_cache_step("cache", "new_cache", 5), false);
}

TEST(AliasRun, CpuEnqueueWithTheOutputBoundToTheInputBuffer) {
  decode_and_check(kv_cache_step("cache", "new_cache", 5), true);
}

TEST(AliasRun, CpuEnqueueKeepsTheOldCacheForNodesReadingItAfterTheScatter) {
  decode_and_check(kv_cache_step("cache", "new_cache", 5, true), false);
}

TEST(AliasRun, AnOutputThatViewsTheCacheKeepsTheOldValues) {
  ModelBuilder b = kv_cache_step("cache", "new_cache", 3);
  b.node("Identity", {"cache"}, {"cache_view"}, "cache_view").output("cache_view", DType::kF32, {"batch", "3", "4"});
  auto e = build(b, {{"new_cache", "cache"}});
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = e->create_context();
  std::vector<float> cache(12), view(12, -1.f), x = {1, 2, 3, 4}, y(4);
  for (size_t i = 0; i < cache.size(); ++i) cache[i] = static_cast<float>(i);
  const std::vector<float> old = cache;
  int64_t pos = 1;
  ASSERT_TRUE(ctx->set_input_shape("x", {1, 4}).ok());
  ASSERT_TRUE(ctx->set_input_shape("cache", {1, 3, 4}).ok());
  ASSERT_TRUE(ctx->set_tensor_address("x", x.data(), 16).ok());
  ASSERT_TRUE(ctx->set_tensor_address("pos", &pos, 8).ok());
  ASSERT_TRUE(ctx->set_tensor_address("cache", cache.data(), 48).ok());
  ASSERT_TRUE(ctx->set_tensor_address("y", y.data(), 16).ok());
  ASSERT_TRUE(ctx->set_tensor_address("cache_view", view.data(), 48).ok());
  Status s = ctx->enqueue();
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(view, old);
  const auto k = testing::kv_key_row(x.data());
  for (int64_t j = 0; j < kKvWidth; ++j) EXPECT_FLOAT_EQ(cache[4 + j], k[j]);
  EXPECT_EQ(cache[0], 0.f);
  EXPECT_EQ(cache[8], 8.f);
}

TEST(AliasRun, AnUnaliasedOutputStillNeedsAnAddress) {
  auto e = build(kv_cache_step("cache", "new_cache", 5), {}, false);
  ASSERT_TRUE(e.ok());
  auto ctx = e->create_context();
  std::vector<float> cache(2 * 5 * 4), x(8), y(8);
  int64_t pos = 0;
  ASSERT_TRUE(ctx->set_input_shape("x", {2, 4}).ok());
  ASSERT_TRUE(ctx->set_input_shape("cache", {2, 5, 4}).ok());
  ASSERT_TRUE(ctx->set_tensor_address("x", x.data(), 32).ok());
  ASSERT_TRUE(ctx->set_tensor_address("pos", &pos, 8).ok());
  ASSERT_TRUE(ctx->set_tensor_address("cache", cache.data(), cache.size() * 4).ok());
  ASSERT_TRUE(ctx->set_tensor_address("y", y.data(), 32).ok());
  Status s = ctx->enqueue();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(has(s.message(), "output 'new_cache' has no address")) << s.message();
}

}  // namespace
}  // namespace kiln
