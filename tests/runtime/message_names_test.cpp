// Names from a model reach messages escaped and cut: a corrupted name cannot put raw bytes into a terminal or
// a UTF-8 log, and a 10 kB name cannot flood it.
#include <gtest/gtest.h>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::i64_tensor;
using testing::ModelBuilder;

BuildConfig cpu_config() {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  return cfg;
}

bool valid_utf8_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c >= 0x80 || (c < 0x20 && c != '\n' && c != '\t')) return false;
  return true;
}

TEST(MessageNames, InvalidUtf8InputNameIsEscaped) {
  const std::string name = "f\xe3_b";
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2"}).node("Relu", {name}, {"y"}, "relu").output("y");
  auto engine = Builder::build_from_bytes(b.bytes(), cpu_config());
  ASSERT_FALSE(engine.ok());
  const std::string msg = engine.status().message();
  EXPECT_NE(msg.find("input 'f\\xe3_b' is not produced"), std::string::npos) << msg;
  EXPECT_TRUE(valid_utf8_ascii(msg)) << msg;
}

// The engine manifest is JSON, which cannot hold a name that is not UTF-8: the build says so as an error (it
// used to throw out of Builder::build_from_bytes).
TEST(MessageNames, InvalidUtf8GraphInputIsAnErrorNotAnException) {
  const std::string name = "f\xe3_b";
  ModelBuilder b(13);
  b.input(name, DType::kF32, {"2"}).node("Relu", {name}, {"y"}).output("y");
  auto engine = Builder::build_from_bytes(b.bytes(), cpu_config());
  ASSERT_FALSE(engine.ok());
  EXPECT_TRUE(valid_utf8_ascii(engine.status().message())) << engine.status().message();
  EXPECT_NE(engine.status().message().find("invalid UTF-8"), std::string::npos) << engine.status().message();
}

TEST(MessageNames, LongNodeNameIsCut) {
  const std::string node_name(10000, 'n');
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"4"});
  b.initializer("shape", i64_tensor({1}, {5}));
  b.node("Reshape", {"x", "shape"}, {"y"}, node_name).output("y");
  auto engine = Builder::build_from_bytes(b.bytes(), cpu_config());
  ASSERT_FALSE(engine.ok());
  const std::string msg = engine.status().message();
  EXPECT_NE(msg.find("node '" + std::string(200, 'n') + "\xe2\x80\xa6(10000 bytes)' (Reshape)"), std::string::npos)
      << msg.substr(0, 400);
  EXPECT_LT(msg.size(), 1000u);
  EXPECT_NE(msg.find("cannot reshape"), std::string::npos) << msg.substr(0, 400);
}

TEST(MessageNames, ControlCharactersInValueNamesAreEscaped) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"2"}).node("Relu", {"missing\x1b[2J"}, {"y"}, "relu").output("y");
  auto engine = Builder::build_from_bytes(b.bytes(), cpu_config());
  ASSERT_FALSE(engine.ok());
  const std::string msg = engine.status().message();
  EXPECT_NE(msg.find("input 'missing\\x1b[2J' is not produced"), std::string::npos) << msg;
  EXPECT_TRUE(valid_utf8_ascii(msg)) << msg;
}

}  // namespace
}  // namespace kiln
