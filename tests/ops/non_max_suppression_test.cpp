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

std::vector<int64_t> values(const Tensor& t) {
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

ModelBuilder nms_model(int64_t center, bool with_limits) {
  ModelBuilder b(11);
  b.input("boxes", DType::kF32, {"?", "?", "4"}).input("scores", DType::kF32, {"?", "?", "?"});
  if (with_limits) {
    b.initializer("max", testing::i64_tensor({1}, {3}))
        .initializer("iou", testing::f32_tensor({1}, {0.5f}))
        .initializer("score", testing::f32_tensor({1}, {0.4f}))
        .node("NonMaxSuppression", {"boxes", "scores", "max", "iou", "score"}, {"sel"});
  } else {
    b.node("NonMaxSuppression", {"boxes", "scores"}, {"sel"});
  }
  b.attr("center_point_box", center).output("sel");
  return b;
}

// Boxes 0-2 overlap heavily, 3-4 overlap, 5 stands alone (corners [y1, x1, y2, x2], some flipped).
const std::vector<float> kCorners = {0, 0, 1, 1,   0, 0.1f, 1, 1.1f,   1, 0.9f, 0, -0.1f,
                                     0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100, 1, 101};
const std::vector<float> kScores = {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f};

TEST(NonMaxSuppressionOp, SuppressesOverlapsAndLowScoresPerClass) {
  // Class 1 ranks the boxes the other way round.
  std::vector<float> scores = kScores;
  for (float s : {0.3f, 0.5f, 0.95f, 0.6f, 0.75f, 0.9f}) scores.push_back(s);
  auto out = run(nms_model(0, true), {{"boxes", testing::f32_tensor({1, 6, 4}, kCorners)},
                                      {"scores", testing::f32_tensor({1, 2, 6}, scores)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  ASSERT_EQ(out->at("sel").dims(), (std::vector<int64_t>{5, 3}));
  // Class 0: box 5 (0.3) is under the score threshold, 1, 2 and 4 overlap better boxes. Class 1 stops at the
  // limit of 3 boxes.
  EXPECT_EQ(values(out->at("sel")), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 1, 2, 0, 1, 5, 0, 1, 4}));
}

TEST(NonMaxSuppressionOp, CenterPointBoxes) {
  std::vector<float> centers;
  for (size_t i = 0; i < kCorners.size(); i += 4) {
    const float y1 = std::min(kCorners[i], kCorners[i + 2]), y2 = std::max(kCorners[i], kCorners[i + 2]);
    const float x1 = std::min(kCorners[i + 1], kCorners[i + 3]), x2 = std::max(kCorners[i + 1], kCorners[i + 3]);
    centers.insert(centers.end(), {(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1});
  }
  auto out = run(nms_model(1, true), {{"boxes", testing::f32_tensor({1, 6, 4}, centers)},
                                      {"scores", testing::f32_tensor({1, 1, 6}, kScores)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(values(out->at("sel")), (std::vector<int64_t>{0, 0, 3, 0, 0, 0}));
}

TEST(NonMaxSuppressionOp, NoLimitSelectsNothing) {
  auto out = run(nms_model(0, false), {{"boxes", testing::f32_tensor({1, 6, 4}, kCorners)},
                                       {"scores", testing::f32_tensor({1, 1, 6}, kScores)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("sel").dims(), (std::vector<int64_t>{0, 3}));
}

TEST(NonMaxSuppressionOp, BoxesWithFiveCoordinatesIsABuildError) {
  ModelBuilder b(11);
  b.input("boxes", DType::kF32, {"1", "6", "5"})
      .input("scores", DType::kF32, {"1", "1", "6"})
      .node("NonMaxSuppression", {"boxes", "scores"}, {"sel"})
      .output("sel");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("boxes must be [batch, boxes, 4], got [1,6,5]"), std::string::npos)
      << e.status().message();
}

}  // namespace
}  // namespace kiln
