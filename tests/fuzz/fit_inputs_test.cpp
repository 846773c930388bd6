// The fuzz harness itself must be free of undefined behaviour, or the sanitizer run (scripts/sanitize.sh)
// reports the harness instead of kiln. These run under UBSan there; a plain build checks the outcome.
#include <gtest/gtest.h>

#include "fuzz/fuzz_runner.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

// An input [batch, 2^62] with no tensor given: the runner sizes `batch` as 2, so the element count 2 * 2^62
// would overflow int64; it must be seen as too big before multiplying and the input left out.
TEST(FuzzHarness, InputsTooLargeToFitAreLeftOutWithoutOverflow) {
  testing::ModelBuilder b;
  b.input("x", DType::kF32, {"batch", std::to_string(int64_t{1} << 62)});
  b.node("Identity", {"x"}, {"y"}, "id");
  b.output("y");
  const fuzz::Outcome o = fuzz::run_model(b.bytes(), ::testing::TempDir(), {});
  EXPECT_NE(o.stage, fuzz::Stage::kThrew) << o.message;
  EXPECT_NE(o.stage, fuzz::Stage::kRan) << "a 2^63-element input cannot have been run";
  EXPECT_FALSE(o.message.empty());
  // Past the build, the only thing missing is the input the runner refused to allocate.
  if (o.stage == fuzz::Stage::kRun) EXPECT_NE(o.message.find("'x'"), std::string::npos) << o.message;
}

}  // namespace
}  // namespace kiln
