// The four real models' optimized graphs against the CUDA kernel table (no GPU needed: the table is host
// data): every data-movement node (Transpose, Slice, Concat, Split, Gather*, CumSum, Range…) must have a CUDA
// kernel for its dtypes, so none of them falls back to the CPU reference on the GPU backend.
#include <gtest/gtest.h>

#include <set>

#include "kiln/kiln.h"
#include "engine/engine_state.h"
#include "support/skeleton.h"

#ifdef KILN_WITH_CUDA
#include "backends/cuda/kernel_coverage.h"
#endif

namespace kiln {
namespace {

#ifdef KILN_WITH_CUDA
TEST(SkeletonCudaCoverage, DataMovementHasCudaKernels) {
  const std::set<std::string> data_movement = {"Transpose", "Slice",           "Concat",          "Split",
                                               "Gather",    "GatherElements",  "GatherND",        "Tile",
                                               "Pad",       "Trilu",           "CumSum",          "Range",
                                               "ScatterND", "ScatterElements", "ConstantOfShape", "OneHot",
                                               "Resize",    "Expand",          "Where",           "Reshape",
                                               "Squeeze",   "Unsqueeze",       "Flatten",         "Identity"};
  for (const char* name : {"resnet50", "vit_b_16", "bert_base", "gpt2"}) {
    SCOPED_TRACE(name);
    BuildConfig cfg;
    cfg.backend = BackendKind::kCpu;  // the same passes as a CUDA build; the graph is what matters here
    auto e = Builder::build_from_bytes(testing::load_skeleton(name), cfg);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    std::map<std::string, int> other;
    for (const auto& gap : cuda::uncovered_nodes(*e->state()->graph)) {
      EXPECT_FALSE(data_movement.count(gap.op)) << gap.reason;
      ++other[gap.op];
    }
    for (const auto& [op, n] : other)
      std::cout << "  " << name << ": " << n << " x " << op << " without a CUDA kernel\n";
  }
}
#endif

}  // namespace
}  // namespace kiln
