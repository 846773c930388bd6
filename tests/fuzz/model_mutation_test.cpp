// A short fixed-seed fuzz run over the shipped models (kiln_fuzz runs the long ones), and one test per bug such
// runs found: each broken model or engine file must give an error that names what is wrong, never an escaped
// exception, a crash, a hang or a huge allocation.
#include <gtest/gtest.h>
#include <kiln_onnx/onnx.pb.h>

#include <chrono>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_runner.h"
#include "fuzz/model_mutator.h"
#include "kiln/kiln.h"
#include "support/engine_bytes.h"
#include "support/model_builder.h"
#include "util/file.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

const std::string kModels = std::string(KILN_SOURCE_DIR) + "/models/";

Result<Engine> build_cpu(const std::string& bytes) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  return Builder::build_from_bytes(bytes, cfg, ::testing::TempDir());
}

std::string build_error(const std::string& bytes) {
  auto e = build_cpu(bytes);
  return e.ok() ? std::string("(built)") : e.status().message();
}

TEST(Fuzz, ShippedModelsSurviveMutants) {
  for (const char* name : {"tiny_cnn.onnx", "tiny_attention.onnx"}) {
    auto bytes = read_file(kModels + name);
    ASSERT_TRUE(bytes.ok());
    kiln_onnx::ModelProto original;
    ASSERT_TRUE(original.ParseFromString(*bytes));
    std::mt19937_64 rng(7);
    std::map<fuzz::Stage, int> stages;
    for (int k = 0; k < 300; ++k) {
      kiln_onnx::ModelProto m = original;
      std::string what;
      for (int j = 0; j < 1 + k % 3; ++j) what += fuzz::mutate_model(m, rng) + "; ";
      const fuzz::Outcome o = fuzz::run_model(m.SerializeAsString(), ::testing::TempDir(), {});
      ++stages[o.stage];
      EXPECT_NE(o.stage, fuzz::Stage::kThrew) << name << " mutant " << k << ": " << what << o.message;
      if (o.stage != fuzz::Stage::kRan) EXPECT_FALSE(o.message.empty()) << name << " mutant " << k << ": " << what;
    }
    // The mutants reach every stage: the fuzzing gets past the parser and the builder.
    EXPECT_GT(stages[fuzz::Stage::kBuild], 30) << name;
    EXPECT_GT(stages[fuzz::Stage::kRan], 30) << name;

    auto engine = build_cpu(*bytes);
    ASSERT_TRUE(engine.ok());
    auto file = engine->serialize();
    ASSERT_TRUE(file.ok());
    int loaded = 0;
    for (int k = 0; k < 100; ++k) {
      std::string b = *file;
      const std::string what = fuzz::mutate_engine_file(b, rng);
      const fuzz::Outcome o = fuzz::run_engine_file(b, {});
      EXPECT_NE(o.stage, fuzz::Stage::kThrew) << name << " engine mutant " << k << ": " << what << o.message;
      loaded += o.stage != fuzz::Stage::kLoad;
    }
    EXPECT_GT(loaded, 0) << name << ": no engine mutant got past the loader";
  }
}

TEST(Fuzz, RequiredInputLeftEmptyIsNamed) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "2"});
  b.node("MatMul", {"", "x"}, {"y"}, "mm");
  b.output("y");
  EXPECT_NE(build_error(b.bytes()).find("input 0 is required"), std::string::npos) << build_error(b.bytes());
  // A trailing '' in a variadic op's inputs is not an omitted optional input.
  ModelBuilder c;
  c.input("x", DType::kF32, {"2"});
  c.node("Concat", {"x", ""}, {"y"}, "cat").attr("axis", int64_t{0});
  c.output("y");
  EXPECT_NE(build_error(c.bytes()).find("input 1 is required"), std::string::npos) << build_error(c.bytes());
}

TEST(Fuzz, ReshapeWithoutShapeInputIsAnError) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2", "3"});
  b.node("Reshape", {"x"}, {"y"});
  b.output("y");
  EXPECT_NE(build_error(b.bytes()).find("needs its shape input"), std::string::npos) << build_error(b.bytes());
}

TEST(Fuzz, InitializerDimsAreCheckedBeforeAllocating) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"4"});
  b.initializer("w", testing::random_f32({4}, 1));
  b.node("Add", {"x", "w"}, {"y"});
  b.output("y");
  auto* w = b.proto().mutable_graph()->mutable_initializer(0);
  w->set_dims(0, int64_t{1} << 40);  // 4 TiB of f32 claimed, 16 bytes given
  std::string err = build_error(b.bytes());
  EXPECT_NE(err.find("'w'"), std::string::npos) << err;
  w->set_dims(0, std::numeric_limits<int64_t>::max());
  err = build_error(b.bytes());
  EXPECT_NE(err.find("more bytes than fit in 64 bits"), std::string::npos) << err;
}

TEST(Fuzz, ExternalDataOutsideTheModelFolderIsRefused) {
  for (const char* where : {"../secret.bin", "/etc/hostname", "a/../../b.bin"}) {
    ModelBuilder b;
    b.input("x", DType::kF32, {"1"});
    b.initializer("w", testing::random_f32({1}, 1));
    b.node("Add", {"x", "w"}, {"y"});
    b.output("y");
    auto* w = b.proto().mutable_graph()->mutable_initializer(0);
    w->clear_raw_data();
    w->clear_float_data();
    auto* e = w->add_external_data();
    e->set_key("location");
    e->set_value(where);
    w->set_data_location(kiln_onnx::TensorProto::EXTERNAL);
    const std::string err = build_error(b.bytes());
    EXPECT_NE(err.find("outside the model's folder"), std::string::npos) << where << ": " << err;
  }
}

TEST(Fuzz, EngineManifestOfWrongTypesOrRangesIsAnError) {
  auto engine = build_cpu(*read_file(kModels + "tiny_cnn.onnx"));
  ASSERT_TRUE(engine.ok());
  const std::string file = *engine->serialize();
  struct Case {
    const char* pointer;
    nlohmann::json value;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"/backend", 7, "malformed field"},
      {"/precision", nlohmann::json::array(), "malformed field"},
      {"/checksum", nullptr, "malformed field"},
      {"/cuda_graphs", 3.5, "malformed field"},
      {"/sections/0/offset", int64_t{1} << 40, "lies outside"},
      {"/sections/1/offset", 1, "overlaps"},
  };
  for (const Case& c : cases) {
    auto r = Engine::deserialize(testing::with_manifest(
        file, [&](nlohmann::json& m) { m[nlohmann::json::json_pointer(c.pointer)] = c.value; }));
    ASSERT_FALSE(r.ok()) << c.pointer;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos) << c.pointer << ": " << r.status().message();
  }
}

// A window far larger than the input visits only the input's taps: it finishes at once, and with
// count_include_pad=0 every output is the mean of the whole input.
TEST(Fuzz, HugePoolWindowCostsOnlyTheInput) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "1", "3", "5"});
  b.node("AveragePool", {"x"}, {"y"})
      .attr("kernel_shape", std::vector<int64_t>{int64_t{1} << 40, int64_t{1} << 40})
      .attr("auto_pad", std::string("SAME_UPPER"));
  b.output("y");
  auto e = build_cpu(b.bytes());
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  const Tensor x = testing::random_f32({1, 1, 3, 5}, 3);
  const auto t0 = std::chrono::steady_clock::now();
  auto out = e->create_context()->infer({{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  double mean = 0;
  for (int i = 0; i < 15; ++i) mean += x.data<float>()[i] / 15.0;
  const Tensor& y = out->at("y");
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 1, 3, 5}));
  for (int i = 0; i < 15; ++i) EXPECT_NEAR(y.data<float>()[i], mean, 1e-5) << i;
}

TEST(Fuzz, GatherElementsIndicesLongerOffTheAxisAreAnError) {
  ModelBuilder b;
  b.input("data", DType::kF32, {"2", "3"});
  b.input("idx", DType::kI64, {"4", "1"});
  b.node("GatherElements", {"data", "idx"}, {"y"}).attr("axis", int64_t{1});
  b.output("y");
  const std::string err = build_error(b.bytes());
  EXPECT_NE(err.find("longer than the data"), std::string::npos) << err;
}

TEST(Fuzz, OutputTooLargeToAllocateNamesTheNode) {
  ModelBuilder b;
  b.input("shape", DType::kI64, {"2"});
  b.node("ConstantOfShape", {"shape"}, {"y"}, "fill");
  b.output("y");
  auto e = build_cpu(b.bytes());
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  const Tensor shape = testing::i64_tensor({2}, {int64_t{1} << 40, int64_t{1} << 40});
  auto out = e->create_context()->infer({{"shape", shape}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("fill"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("f32[1099511627776,1099511627776], whose size overflows"), std::string::npos)
      << out.status().message();
}

// An input that must be one value (MelWeightMatrix's dft_length) given as an empty tensor is named, not read
// past.
TEST(Fuzz, ScalarInputsMustHoldOneValue) {
  ModelBuilder b(17);
  for (const char* name : {"bins", "dft", "rate"}) b.input(name, DType::kI64, {name == std::string("dft") ? "n" : "1"});
  b.input("lo", DType::kF32, {});
  b.input("hi", DType::kF32, {});
  b.node("MelWeightMatrix", {"bins", "dft", "rate", "lo", "hi"}, {"y"}, "mel");
  b.output("y");
  auto e = build_cpu(b.bytes());
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto ctx = e->create_context();
  ASSERT_TRUE(ctx.ok());
  std::map<std::string, Tensor> in = {{"bins", testing::i64_tensor({1}, {4})},
                                      {"dft", Tensor(DType::kI64, {0})},
                                      {"rate", testing::i64_tensor({1}, {16000})},
                                      {"lo", Tensor::scalar_f32(20.f)},
                                      {"hi", Tensor::scalar_f32(4000.f)}};
  auto out = ctx->infer(in);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("('dft') must hold one value"), std::string::npos) << out.status().message();
  // One value runs: a [dft/2 + 1, bins] matrix.
  in["dft"] = testing::i64_tensor({1}, {16});
  out = ctx->infer(in);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").dims(), (std::vector<int64_t>{9, 4}));
}

}  // namespace
}  // namespace kiln
