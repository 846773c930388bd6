#include "gpu/gpu_harness.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

TEST(GpuViews, ReshapeAndFlattenAliasWithoutCopy) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    ModelBuilder b;
    b.input("x", dt, {"3", "4", "5"})
        .initializer("shape", testing::i64_tensor({2}, {12, 5}))
        .node("Reshape", {"x", "shape"}, {"r"})
        .node("Flatten", {"r"}, {"y"})
        .attr("axis", int64_t{1})
        .output("y");
    gputest::expect_gpu_matches_cpu(b, {{"x", gputest::random_tensor(dt, {3, 4, 5}, 1)}}, 2);
  }
}

}  // namespace
}  // namespace kiln
