// Models whose weights live in external-data files (how models over 2 GB are stored).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <kiln_onnx/onnx.pb.h>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// y = x + w, with w (4 floats) stored at `offset` in weights.bin next to the model.
fs::path write_model(const std::string& dir_name, int64_t offset, bool write_weights) {
  fs::path dir = fs::temp_directory_path() / dir_name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  testing::ModelBuilder b;
  b.input("x", DType::kF32, {"4"}).node("Add", {"x", "w"}, {"y"}).output("y");
  auto* init = b.proto().mutable_graph()->add_initializer();
  init->set_name("w");
  init->set_data_type(1);
  init->add_dims(4);
  init->set_data_location(kiln_onnx::TensorProto::EXTERNAL);
  auto add = [&](const char* k, const std::string& v) {
    auto* e = init->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add("location", "weights.bin");
  add("offset", std::to_string(offset));
  add("length", "16");
  b.save((dir / "model.onnx").string());
  if (write_weights) {
    std::ofstream f(dir / "weights.bin", std::ios::binary);
    std::string pad(static_cast<size_t>(offset), '\0');
    f << pad;
    float w[4] = {1, 2, 3, 4};
    f.write(reinterpret_cast<const char*>(w), sizeof(w));
  }
  return dir / "model.onnx";
}

TEST(ExternalData, LoadsWeightsAtOffset) {
  auto path = write_model("kiln_ext_ok", 4096, true);
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_file(path.string(), cfg);
  ASSERT_TRUE(e.ok()) << e.status().to_string();
  auto out = e->create_context()->infer({{"x", testing::f32_tensor({4}, {10, 10, 10, 10})}});
  ASSERT_TRUE(out.ok());
  EXPECT_FLOAT_EQ(out->at("y").data<float>()[3], 14.f);
}

TEST(ExternalData, MissingFileNamesIt) {
  auto path = write_model("kiln_ext_missing", 0, false);
  auto e = Builder::build_from_file(path.string(), {});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("weights.bin"), std::string::npos) << e.status().message();
  EXPECT_NE(e.status().message().find("initializer 'w'"), std::string::npos);
}

TEST(ExternalData, ShortFileIsAnError) {
  auto path = write_model("kiln_ext_short", 8, true);
  fs::resize_file(path.parent_path() / "weights.bin", 12);
  auto e = Builder::build_from_file(path.string(), {});
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("too short"), std::string::npos) << e.status().message();
}

}  // namespace
}  // namespace kiln
