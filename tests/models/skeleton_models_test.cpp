// The four real models' graphs (tests/data/skeletons, exported by torch on the GPU machine) import, build and run
// on the CPU backend with filled-in weights: the structure kiln's passes and kernels must handle.
#include <gtest/gtest.h>

#include <cmath>

#include "kiln/kiln.h"
#include "support/skeleton.h"

namespace kiln {
namespace {

Engine build_cpu(const std::string& name) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(testing::load_skeleton(name), cfg);
  EXPECT_TRUE(e.ok()) << name << ": " << e.status().to_string();
  return e.ok() ? *e : Engine();
}

void expect_finite(const Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i) ASSERT_TRUE(std::isfinite(t.get_as_double(i))) << "element " << i;
}

TEST(SkeletonModels, AllFourBuild) {
  for (const char* name : {"resnet50", "vit_b_16", "bert_base", "gpt2"}) {
    Engine e = build_cpu(name);
    EXPECT_FALSE(e.inputs().empty()) << name;
  }
}

TEST(SkeletonModels, BertRunsAtShortSequence) {
  Engine e = build_cpu("bert_base");
  ASSERT_FALSE(e.inputs().empty());
  Tensor ids(DType::kI64, {2, 9}), mask(DType::kI64, {2, 9});
  for (int64_t i = 0; i < 18; ++i) {
    ids.data<int64_t>()[i] = (i * 37) % 30522;
    mask.data<int64_t>()[i] = i % 9 < 7 ? 1 : 0;  // the second half of each row padded
  }
  auto out = e.create_context()->infer({{"input_ids", ids}, {"attention_mask", mask}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = out->at("output");
  EXPECT_EQ(y.dims(), (std::vector<int64_t>{2, 9, 768}));
  expect_finite(y);
}

}  // namespace
}  // namespace kiln
