#include <gtest/gtest.h>

#include "onnx/importer.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

TEST(Importer, ImportsSimpleGraphWithSymbolicDims) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "4"}).node("Relu", {"x"}, {"y"}).output("y", DType::kF32, {"batch", "4"});
  auto g = onnx::import_model_bytes(b.bytes(), ".", "test");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_EQ(g->inputs.size(), 1u);
  EXPECT_EQ(g->values["x"].shape.to_string(), "[batch,4]");
  EXPECT_EQ(g->nodes.size(), 1u);
  EXPECT_EQ(g->opset, 17);
}

TEST(Importer, RejectsEmptyAndGarbage) {
  auto e = onnx::import_model_bytes("", ".", "model 'x'");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("empty"), std::string::npos);
  auto r = onnx::import_model_bytes(std::string("\xff\xfe\x01garbage\x07\x00\x13", 12), ".", "model 'x'");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidModel);
}

TEST(Importer, ListsEveryUnknownOpWithNodeName) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2"})
      .node("FancyOp", {"x"}, {"a"}, "fancy1")
      .domain("com.example")
      .node("NotAnOnnxOp", {"a"}, {"y"}, "weird2")
      .output("y");
  auto g = onnx::import_model_bytes(b.bytes(), ".", "m");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(g.status().message().find("com.example::FancyOp (node 'fancy1')"), std::string::npos) << g.status().message();
  EXPECT_NE(g.status().message().find("NotAnOnnxOp (node 'weird2')"), std::string::npos);
}

TEST(Importer, DetectsCycle) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2"})
      .node("Add", {"x", "c"}, {"a"}, "n1")
      .node("Relu", {"a"}, {"c"}, "n2")
      .output("c");
  auto g = onnx::import_model_bytes(b.bytes(), ".", "m");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("cycle"), std::string::npos) << g.status().message();
  EXPECT_NE(g.status().message().find("n1"), std::string::npos);
}

TEST(Importer, MissingInputNamesNodeAndValue) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2"}).node("Add", {"x", "weight"}, {"y"}, "add0").output("y");
  auto g = onnx::import_model_bytes(b.bytes(), ".", "m");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("'weight'"), std::string::npos);
  EXPECT_NE(g.status().message().find("add0"), std::string::npos);
}

TEST(Importer, DuplicateOutputName) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2"}).node("Relu", {"x"}, {"y"}, "a").node("Neg", {"x"}, {"y"}, "b").output("y");
  auto g = onnx::import_model_bytes(b.bytes(), ".", "m");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("already produced"), std::string::npos) << g.status().message();
}

TEST(Importer, RejectsTooNewOpset) {
  ModelBuilder b(99);
  b.input("x", DType::kF32, {"2"}).node("Relu", {"x"}, {"y"}).output("y");
  auto g = onnx::import_model_bytes(b.bytes(), ".", "m");
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("opset 99"), std::string::npos);
}

}  // namespace
}  // namespace kiln
