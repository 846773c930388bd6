#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::run_model;

TEST(DetOps, BatchOfMatrices) {
  // [[1,2],[3,4]] -> -2; [[0,1],[1,0]] needs a pivot swap -> -1; [[2,4],[1,2]] is singular -> 0.
  Tensor x = f32_tensor({3, 2, 2}, {1, 2, 3, 4, 0, 1, 1, 0, 2, 4, 1, 2});
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"batch", "2", "2"}).node("Det", {"x"}, {"y"}).output("y");
  auto r = run_model(b, {{"x", x}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{3}));
  expect_near_all(r->at("y"), {-2, -1, 0});
}

TEST(DetOps, ThreeByThreeAndOneByOne) {
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"3", "3"}).node("Det", {"x"}, {"y"}).output("y");
  auto r = run_model(b, {{"x", f32_tensor({3, 3}, {2, -3, 1, 2, 0, -1, 1, 4, 5})}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->at("y").dims().empty());
  expect_near_all(r->at("y"), {49});
  ModelBuilder o(11);
  o.input("x", DType::kF32, {"1", "1"}).node("Det", {"x"}, {"y"}).output("y");
  r = run_model(o, {{"x", f32_tensor({1, 1}, {-7})}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {-7});
}

TEST(DetOps, NonSquareIsABuildError) {
  ModelBuilder b(11);
  b.input("x", DType::kF32, {"2", "3"}).node("Det", {"x"}, {"y"}, "det").output("y");
  EXPECT_NE(testing::build_error(b).find("node 'det' (Det): needs square matrices [..., M, M], got [2,3]"),
            std::string::npos)
      << testing::build_error(b);
}

}  // namespace
}  // namespace kiln
