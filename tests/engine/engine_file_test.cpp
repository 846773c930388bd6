#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "backends/device_probe.h"
#include "engine/engine_file.h"
#include "kiln/kiln.h"
#include "support/engine_bytes.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;
using testing::with_manifest;

Engine build_small(std::vector<OptimizationProfile> profiles = {}) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "3"})
      .initializer("w", testing::f32_tensor({3}, {1, 2, 3}))
      .node("Mul", {"x", "w"}, {"y"})
      .output("y", DType::kF32, {"batch", "3"});
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.profiles = std::move(profiles);
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return *e;
}

TEST(EngineFile, RoundTripKeepsIoProfilesAndResults) {
  OptimizationProfile p;
  p.inputs["x"] = {{1, 3}, {4, 3}, {8, 3}};
  Engine e = build_small({p});
  auto bytes = e.serialize();
  ASSERT_TRUE(bytes.ok());
  auto back = Engine::deserialize(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->inputs().size(), 1u);
  EXPECT_EQ(back->inputs()[0].shape.to_string(), "[batch,3]");
  ASSERT_EQ(back->profiles().size(), 1u);
  EXPECT_EQ(back->profiles()[0].inputs.at("x").max, (std::vector<int64_t>{8, 3}));
  EXPECT_EQ(back->info().format_version, engine_file::kFormatVersion);
  auto ctx = back->create_context();
  ASSERT_TRUE(ctx.ok());
  auto out = ctx->infer({{"x", testing::f32_tensor({2, 3}, {1, 1, 1, 2, 2, 2})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_FLOAT_EQ(out->at("y").data<float>()[5], 6.f);
}

TEST(EngineFile, SerializationIsDeterministic) {
  auto a = build_small().serialize();
  auto b = build_small().serialize();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(EngineFile, TruncatedFileSaysTruncated) {
  std::string bytes = *build_small().serialize();
  for (size_t cut : {size_t{4}, size_t{20}, bytes.size() / 2, bytes.size() - 1}) {
    auto r = Engine::deserialize(std::string_view(bytes).substr(0, cut));
    ASSERT_FALSE(r.ok()) << cut;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidEngine);
    EXPECT_TRUE(r.status().message().find("truncated") != std::string::npos ||
                r.status().message().find("not a kiln engine") != std::string::npos)
        << r.status().message();
  }
}

TEST(EngineFile, FlippedByteFailsChecksum) {
  std::string bytes = *build_small().serialize();
  bytes[bytes.size() - 20] ^= 0x5a;
  auto r = Engine::deserialize(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("kiln build"), std::string::npos);
}

// Every part of the file is covered: a flip in the reserved header field, in the graph, in the weights or in
// the last byte before the trailer fails the check (the manifest's JSON would fail its own parse first).
TEST(EngineFile, FlipAnywhereAfterTheManifestFailsChecksum) {
  const std::string good = *build_small().serialize();
  uint64_t mlen = 0;
  std::memcpy(&mlen, good.data() + 16, 8);
  const size_t body = 24 + mlen;
  ASSERT_LT(body + 8, good.size());
  for (size_t pos : {size_t{13}, body, body + 1, (body + good.size()) / 2, good.size() - 9}) {
    for (unsigned char bit : {0x01, 0x80}) {
      std::string bytes = good;
      bytes[pos] = static_cast<char>(bytes[pos] ^ bit);
      auto r = Engine::deserialize(bytes);
      ASSERT_FALSE(r.ok()) << pos;
      EXPECT_NE(r.status().message().find("checksum"), std::string::npos) << pos << ": " << r.status().message();
    }
  }
}

// The manifest without the "checksum" key of a file written by a kiln from before it, the trailer byte-wise
// FNV-1a: it still loads and runs.
TEST(EngineFile, FileWithoutChecksumNameLoadsWithByteWiseFnv) {
  const std::string bytes = with_manifest(
      *build_small().serialize(), [](nlohmann::json& m) { m.erase("checksum"); }, engine_file::fnv1a64);
  auto e = Engine::deserialize(bytes);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = e->create_context();
  ASSERT_TRUE(ctx.ok());
  auto out = ctx->infer({{"x", testing::f32_tensor({1, 3}, {1, 1, 1})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_FLOAT_EQ(out->at("y").data<float>()[2], 3.f);
  // The same file with the new checksum in its trailer but no name for it is corrupted.
  const std::string mixed = with_manifest(
      *build_small().serialize(), [](nlohmann::json& m) { m.erase("checksum"); }, engine_file::fnv1a64x4);
  auto r = Engine::deserialize(mixed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos) << r.status().message();
}

TEST(EngineFile, UnknownChecksumNameSaysRebuild) {
  const std::string bytes = with_manifest(
      *build_small().serialize(), [](nlohmann::json& m) { m["checksum"] = "sha3"; }, engine_file::fnv1a64x4);
  auto r = Engine::deserialize(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("checksum 'sha3'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("kiln build"), std::string::npos);
}

// Lanes of 8-byte words plus a byte-wise tail: lengths around the 32-byte block edge all hash, differently.
TEST(EngineFile, LaneChecksumCoversTailBytesAndLength) {
  std::string data(70, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 37 + 11);
  std::set<uint64_t> seen;
  for (size_t n = 0; n <= data.size(); ++n) seen.insert(engine_file::fnv1a64x4(std::string_view(data).substr(0, n)));
  EXPECT_EQ(seen.size(), data.size() + 1);
  EXPECT_NE(engine_file::fnv1a64x4(std::string(40, '\0')), engine_file::fnv1a64x4(std::string(41, '\0')));
}

TEST(EngineFile, OtherFormatVersionSaysWhatDiffers) {
  std::string bytes = *build_small().serialize();
  uint32_t v = 7;
  std::memcpy(bytes.data() + 8, &v, 4);
  auto r = Engine::deserialize(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("format version 7"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("reads versions 1 (engines) and 2 (bundles)"), std::string::npos)
      << r.status().message();
}

TEST(EngineFile, UnknownBackendIsRefusedWithRebuildHint) {
  std::string bytes = *build_small().serialize();
  // Same-length edit of the manifest, checksum recomputed: a well-formed file for a backend kiln lacks.
  size_t pos = bytes.find("\"backend\":\"cpu\"");
  ASSERT_NE(pos, std::string::npos);
  bytes.replace(pos, 15, "\"backend\":\"tpu\"");
  uint64_t sum = engine_file::fnv1a64x4(std::string_view(bytes).substr(0, bytes.size() - 8));
  std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
  auto r = Engine::deserialize(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown backend 'tpu'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("kiln build"), std::string::npos);
}

TEST(EngineFile, CudaEngineOnMachineWithoutCudaBackend) {
  if (cuda_backend_available()) GTEST_SKIP() << "this machine runs CUDA engines; tests/gpu covers the GPU side";
  std::string bytes = *build_small().serialize();
  auto state = engine_file::deserialize(bytes);
  ASSERT_TRUE(state.ok());
  state->info.backend = BackendKind::kCuda;
  state->info.gpu_json = R"({"name":"NVIDIA H100","sm":"9.0"})";
  auto cuda_bytes = engine_file::serialize(*state);
  ASSERT_TRUE(cuda_bytes.ok());
  auto r = Engine::deserialize(*cuda_bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("built for backend 'cuda'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("NVIDIA H100"), std::string::npos);
  EXPECT_NE(r.status().message().find("--backend cpu"), std::string::npos);
}

TEST(EngineFile, SaveIsAtomicAndLoadReadsIt) {
  auto dir = std::filesystem::temp_directory_path() / "kiln_engine_file_test";
  std::filesystem::create_directories(dir);
  auto path = (dir / "e.kiln").string();
  ASSERT_TRUE(build_small().save(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto e = Engine::load(path);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  Status s = build_small().save((dir / "missing_dir" / "e.kiln").string());
  EXPECT_FALSE(s.ok());
  auto missing = Engine::load((dir / "nope.kiln").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(EngineFile, TacticChoicesRoundTrip) {
  auto bytes = build_small().serialize();
  ASSERT_TRUE(bytes.ok());
  auto state = engine_file::deserialize(*bytes);
  ASSERT_TRUE(state.ok()) << state.status().to_string();
  EXPECT_EQ(state->tactics->size(), 0u);
  EXPECT_EQ(state->info.tactics, 0u);
  state->tactics->put("FusedConv:1,2,3", "1 6 1 4096");
  state->tactics->put("cublasLt:m=3,n=5", "00ff");
  auto again = engine_file::serialize(*state);
  ASSERT_TRUE(again.ok());
  auto back = engine_file::deserialize(*again);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->info.tactics, 2u);
  EXPECT_EQ(back->tactics->find("FusedConv:1,2,3").value_or(""), "1 6 1 4096");
  EXPECT_EQ(back->tactics->find("cublasLt:m=3,n=5").value_or(""), "00ff");
  EXPECT_FALSE(back->tactics->find("other").has_value());
}

TEST(EngineFile, TimingCacheNeedsACudaEngine) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3"}).node("Relu", {"x"}, {"y"}).output("y", DType::kF32, {"3"});
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  cfg.timing_cache_path = "/tmp/kiln_unused_timing_cache.json";
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("--timing-cache needs tactic timing"), std::string::npos)
      << e.status().message();
  EXPECT_FALSE(std::filesystem::exists(cfg.timing_cache_path));
}

}  // namespace
}  // namespace kiln
