#include "ops/body_inputs.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

ir::Graph untyped_body(std::vector<std::string> inputs) {
  ir::Graph g;
  g.inputs = std::move(inputs);
  return g;
}

TEST(BodyInputTypes, LoopGivesIterationConditionAndCarriedTypes) {
  ir::Node loop;
  loop.op_type = "Loop";
  ir::Graph body = untyped_body({"i", "cond", "acc"});
  const ir::ValueInfo acc{DType::kF16, Shape::from_dims({3, 5})};
  auto types = ops::body_input_types(loop, body, {nullptr, nullptr, &acc});
  ASSERT_EQ(types.size(), 3u);
  EXPECT_EQ(types["i"].dtype, DType::kI64);
  EXPECT_EQ(types["cond"].dtype, DType::kBool);
  EXPECT_EQ(types["acc"].dtype, DType::kF16);
  EXPECT_EQ(types["acc"].shape.static_dims(), (std::vector<int64_t>{3, 5}));
}

TEST(BodyInputTypes, ScanGivesStatesWholeAndScanInputsTheirElementType) {
  ir::Node scan;
  scan.op_type = "Scan";
  scan.attrs["num_scan_inputs"].kind = ir::Attribute::Kind::kInt;
  scan.attrs["num_scan_inputs"].i = 1;
  ir::Graph body = untyped_body({"state", "x_t"});
  body.values["state"] = {DType::kF32, Shape::from_dims({2})};  // declared: kept as the body says
  const ir::ValueInfo state{DType::kF64, Shape::from_dims({2})}, xs{DType::kI32, Shape::from_dims({7, 2})};
  auto types = ops::body_input_types(scan, body, {&state, &xs});
  ASSERT_EQ(types.size(), 1u);
  EXPECT_EQ(types["x_t"].dtype, DType::kI32);
  EXPECT_FALSE(types["x_t"].shape.has_rank());
}

}  // namespace
}  // namespace kiln
