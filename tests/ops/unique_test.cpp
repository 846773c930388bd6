#include <gtest/gtest.h>

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

template <class T = int64_t>
std::vector<T> values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

ModelBuilder unique_model(DType dt, int64_t sorted, const int64_t* axis) {
  ModelBuilder b(11);
  b.input("x", dt, {"?"}).node("Unique", {"x"}, {"y", "idx", "inv", "cnt"}).attr("sorted", sorted);
  if (axis) b.attr("axis", *axis);
  b.output("y").output("idx").output("inv").output("cnt");
  return b;
}

TEST(UniqueOp, SortedFlat) {
  auto out = run(unique_model(DType::kF32, 1, nullptr), {{"x", testing::f32_tensor({6}, {2, 1, 1, 3, 4, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values<float>(out->at("y")), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(values(out->at("idx")), (std::vector<int64_t>{1, 0, 3, 4}));
  EXPECT_EQ(values(out->at("inv")), (std::vector<int64_t>{1, 0, 0, 2, 3, 2}));
  EXPECT_EQ(values(out->at("cnt")), (std::vector<int64_t>{2, 1, 2, 1}));
}

TEST(UniqueOp, UnsortedKeepsFirstOccurrenceOrder) {
  auto out = run(unique_model(DType::kF32, 0, nullptr), {{"x", testing::f32_tensor({6}, {2, 1, 1, 3, 4, 3})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values<float>(out->at("y")), (std::vector<float>{2, 1, 3, 4}));
  EXPECT_EQ(values(out->at("idx")), (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(values(out->at("inv")), (std::vector<int64_t>{0, 1, 1, 2, 3, 2}));
  EXPECT_EQ(values(out->at("cnt")), (std::vector<int64_t>{1, 2, 2, 1}));
}

TEST(UniqueOp, ColumnsWithNegativeAxis) {
  const int64_t axis = -1;
  ModelBuilder b(11);
  b.input("x", DType::kI64, {"2", "3"})
      .node("Unique", {"x"}, {"y", "idx", "inv", "cnt"})
      .attr("axis", axis)
      .output("y")
      .output("idx")
      .output("inv")
      .output("cnt");
  auto out = run(b, {{"x", testing::i64_tensor({2, 3}, {1, 0, 1, 2, 5, 2})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ(out->at("y").dims(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(values(out->at("y")), (std::vector<int64_t>{0, 1, 5, 2}));
  EXPECT_EQ(values(out->at("idx")), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(values(out->at("inv")), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(values(out->at("cnt")), (std::vector<int64_t>{1, 2}));
}

TEST(UniqueOp, EmptyInput) {
  auto out = run(unique_model(DType::kI64, 1, nullptr), {{"x", Tensor(DType::kI64, {0})}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").dims(), (std::vector<int64_t>{0}));
  EXPECT_EQ(out->at("cnt").dims(), (std::vector<int64_t>{0}));
}

TEST(UniqueOp, AxisOutOfRangeIsABuildError) {
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"2", "3"}).node("Unique", {"x"}, {"y"}).attr("axis", int64_t{2}).output("y");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("axis 2 is out of range for a tensor of rank 2"), std::string::npos)
      << e.status().message();
}

}  // namespace
}  // namespace kiln
