// kiln::inspect_json: the document kiln inspect prints, for a model and for an engine, with its errors.
#include "kiln/inspect.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kiln/builder.h"

namespace kiln {
namespace {

const std::string kModel = std::string(KILN_SOURCE_DIR) + "/models/tiny_cnn.onnx";

nlohmann::json inspect(const std::string& path, const InspectOptions& o = {}) {
  auto r = inspect_json(path, o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? nlohmann::json::parse(*r) : nlohmann::json();
}

class InspectEngine : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("kiln_inspect_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    BuildConfig cfg;
    cfg.backend = BackendKind::kCpu;
    auto engine = Builder::build_from_file(kModel, cfg);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    engine_path_ = (dir_ / "tiny_cnn.kiln").string();
    ASSERT_TRUE(engine->save(engine_path_).ok());
    bundle_members_ = bundle_members_json(*engine);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string engine_path_, bundle_members_;
};

TEST(Inspect, AModelHasItsIoAndOpsAndLayersOnlyWhenAsked) {
  const nlohmann::json j = inspect(kModel);
  EXPECT_EQ(j["kind"], "onnx model");
  ASSERT_EQ(j["inputs"].size(), 1u);
  EXPECT_EQ(j["inputs"][0]["dtype"], "f32");
  EXPECT_GT(j["ops"]["Conv"].get<int>(), 0);
  EXPECT_GT(j["parameters"].get<int64_t>(), 0);
  EXPECT_FALSE(j.contains("layers"));
  EXPECT_TRUE(j["control_flow"].empty());

  InspectOptions o;
  o.layers = true;
  const nlohmann::json built = inspect(kModel, o);
  ASSERT_TRUE(built.contains("layers"));
  EXPECT_FALSE(built["layers"].empty());
  // Fusion leaves fewer layers than the model has nodes.
  EXPECT_LT(built["layers"].size(), j["nodes"].get<size_t>());
  EXPECT_EQ(built["memory"]["weight_bytes"].get<int64_t>(), j["parameter_bytes"].get<int64_t>());
}

TEST(Inspect, AMissingFileOrAnUnparsableModelIsAnError) {
  auto missing = inspect_json("/nonexistent/model.onnx");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/model.onnx"), std::string::npos);
  auto not_engine = inspect_json(kModel + ".kiln");
  EXPECT_FALSE(not_engine.ok());
}

TEST_F(InspectEngine, AnEngineHasItsBackendLayersAndMemoryPlan) {
  const nlohmann::json j = inspect(engine_path_);
  EXPECT_EQ(j["kind"], "kiln engine");
  EXPECT_EQ(j["backend"], "cpu");
  EXPECT_FALSE(j["layers"].empty());
  EXPECT_FALSE(j.contains("cpu_fallback"));  // a CPU engine runs everything on the CPU by choice
  EXPECT_EQ(bundle_members_, "[]");          // one engine, not a bundle
  // The batch is dynamic and the engine has no profile: the memory plan says which dims it needs.
  ASSERT_EQ(j["memory"]["points"].size(), 1u);
  EXPECT_NE(j["memory"]["points"][0]["error"].get<std::string>().find("--shapes image:DIMS"), std::string::npos);

  InspectOptions o;
  OptimizationProfile p;
  p.inputs["image"] = InputRange{{1, 3, 32, 32}, {2, 3, 32, 32}, {8, 3, 32, 32}};
  o.shapes = {p};
  const nlohmann::json at = inspect(engine_path_, o);
  const nlohmann::json& points = at["memory"]["points"];
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[0]["point"], "min");
  EXPECT_EQ(points[2]["point"], "max");
  EXPECT_GT(points[0]["arena_bytes"].get<double>(), 0);
  EXPECT_GT(points[2]["arena_bytes"].get<double>(), points[0]["arena_bytes"].get<double>());
}

TEST_F(InspectEngine, MemberIsForBundlesOnly) {
  InspectOptions o;
  o.member = 1;
  auto r = inspect_json(engine_path_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("--member is for bundles"), std::string::npos);
}

TEST_F(InspectEngine, TimesForLayersNotInTheGraphAreAWarningOrAnError) {
  const nlohmann::json layers = inspect(engine_path_)["layers"];
  const std::string first = layers[0]["name"].get<std::string>();
  const auto times = dir_ / "times.txt";
  std::ofstream(times) << first << " 0.25\nno_such_layer 1.0\n";
  InspectOptions o;
  o.times_path = times.string();
  const nlohmann::json j = inspect(engine_path_, o);
  ASSERT_TRUE(j.contains("warnings"));
  EXPECT_EQ(j["warnings"][0], "1 of 2 timed layers are not in this graph");
  EXPECT_DOUBLE_EQ(j["layers"][0]["ms"].get<double>(), 0.25);

  std::ofstream(times) << "no_such_layer 1.0\n";
  auto none = inspect_json(engine_path_, o);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("none of the 1 timed layers"), std::string::npos);
}

TEST_F(InspectEngine, PicturesAreWrittenWhereAsked) {
  InspectOptions o;
  o.dot_path = (dir_ / "g.dot").string();
  o.svg_path = (dir_ / "g.svg").string();
  inspect(engine_path_, o);
  std::ifstream dot(o.dot_path), svg(o.svg_path);
  std::string dot_text((std::istreambuf_iterator<char>(dot)), {}), svg_text((std::istreambuf_iterator<char>(svg)), {});
  EXPECT_EQ(dot_text.rfind("digraph", 0), 0u);
  EXPECT_NE(svg_text.find("<svg"), std::string::npos);
}

}  // namespace
}  // namespace kiln
