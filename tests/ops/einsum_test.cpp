#include "ops/math_ops_test_util.h"

namespace kiln {
namespace {

using testing::expect_near_all;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::run_model;

Result<std::map<std::string, Tensor>> einsum(const std::string& eq, const std::vector<Tensor>& xs) {
  ModelBuilder b(12);
  std::vector<std::string> names;
  std::map<std::string, Tensor> feeds;
  for (size_t i = 0; i < xs.size(); ++i) {
    names.push_back("x" + std::to_string(i));
    b.input(names.back(), xs[i].dtype(), testing::dim_strings(xs[i]));
    feeds[names.back()] = xs[i];
  }
  b.node("Einsum", names, {"y"}, "es").attr("equation", eq).output("y");
  return run_model(b, feeds);
}

const Tensor kA = f32_tensor({2, 3}, {1, 2, 3, 4, 5, 6});
const Tensor kB = f32_tensor({3, 2}, {1, 0, 0, 1, 2, -1});

TEST(EinsumOps, MatmulExplicitAndImplicit) {
  for (const char* eq : {"ij,jk->ik", "ij, jk", "ab,bc->ac"}) {
    auto r = einsum(eq, {kA, kB});
    ASSERT_TRUE(r.ok()) << eq << ": " << r.status().to_string();
    EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{2, 2})) << eq;
    expect_near_all(r->at("y"), {7, -1, 16, -1});
  }
  auto r = einsum("ji,kj", {kB, kA});  // implicit output is alphabetical: "ik"
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{2, 2}));
  expect_near_all(r->at("y"), {7, 16, -1, -1});
}

TEST(EinsumOps, TransposeSumDiagonalTraceOuter) {
  auto r = einsum("ij->ji", {kA});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {1, 4, 2, 5, 3, 6});
  r = einsum("ij->", {kA});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {21});
  Tensor sq = f32_tensor({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  r = einsum("ii->i", {sq});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {1, 5, 9});
  r = einsum("ii", {sq});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {15});
  r = einsum("i,j->ij", {f32_tensor({2}, {1, 2}), f32_tensor({3}, {1, 10, 100})});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_near_all(r->at("y"), {1, 10, 100, 2, 20, 200});
}

TEST(EinsumOps, EllipsisBroadcasts) {
  // x0 [2, 1, 3] against x1 [3]: "...j,j->..." is a batched dot product.
  auto r = einsum("...j,j->...", {f32_tensor({2, 1, 3}, {1, 1, 1, 1, 2, 3}), f32_tensor({3}, {1, 0, -1})});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{2, 1}));
  expect_near_all(r->at("y"), {0, -2});
  // Batch dims [2] and [1] broadcast.
  r = einsum("...ij,...jk->...ik", {f32_tensor({2, 1, 2}, {1, 2, 3, 4}), f32_tensor({1, 2, 1}, {10, 1})});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->at("y").dims(), (std::vector<int64_t>{2, 1, 1}));
  expect_near_all(r->at("y"), {12, 34});
}

TEST(EinsumOps, BadEquationsAreBuildErrors) {
  auto r = einsum("ij,jk->il", {kA, kB});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.status().message().find("node 'es' (Einsum): output label 'l' of equation 'ij,jk->il' is not in any "
                                "input"),
      std::string::npos)
      << r.status().message();
  r = einsum("ijk,jk->i", {kA, kB});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.status().message().find("term 'ijk' of equation 'ijk,jk->i' names 3 dims but input 0 has rank 2"),
      std::string::npos)
      << r.status().message();
  r = einsum("ij,jk->ik", {kA, kA});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("dim 0 of input 1 [2,3] is 2 but the same label has size 3"),
            std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace kiln
