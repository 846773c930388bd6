// Where the CUDA executor will run each node of the four real models, predicted on the CPU with the executor's
// own placement rule: in f32 and after --fp16 conversion, no node may read a device value back to the host, or
// the model could not be captured as a CUDA graph (each read-back also blocks the host mid-run).
#include <gtest/gtest.h>

#ifdef KILN_WITH_CUDA
#include "backends/cuda/placement.h"
#include "onnx/importer.h"
#include "passes/convert_precision.h"
#include "passes/pass.h"
#include "support/skeleton.h"

namespace kiln {
namespace {

ir::Graph pipeline_graph(const std::string& name, DType target) {
  auto g = onnx::import_model_bytes(testing::load_skeleton(name), ".", name);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  if (!g.ok()) return {};
  EXPECT_TRUE(passes::run_pipeline(*g, passes::default_pipeline()).ok());
  if (target != DType::kF32) {
    passes::PrecisionOptions opt;
    opt.target = target;
    opt.supports = [](const ir::Node& n, const std::vector<DType>& dts) {
      const cuda::KernelDef* k = cuda::kernel_table().find(n.op_type);
      return k != nullptr && (k->supports == nullptr || k->supports(n, dts));
    };
    EXPECT_TRUE(passes::convert_precision(*g, opt).ok());
  }
  return std::move(*g);
}

std::map<std::string, std::vector<int64_t>> inputs_of(const std::string& name, int64_t batch) {
  if (name == "bert_base") return {{"input_ids", {batch, 128}}, {"attention_mask", {batch, 128}}};
  if (name == "gpt2") return {{"input_ids", {batch, 512}}};
  return {{"image", {batch, 3, 224, 224}}};
}

TEST(SkeletonPlacement, RealModelsNeverReadDeviceValuesBack) {
  for (const char* name : {"resnet50", "vit_b_16", "bert_base", "gpt2"})
    for (DType target : {DType::kF32, DType::kF16}) {
      SCOPED_TRACE(std::string(name) + " " + std::string(dtype_name(target)));
      ir::Graph g = pipeline_graph(name, target);
      for (int64_t batch : {1, 32}) {
        auto placed = cuda::predict_placement(g, inputs_of(name, batch));
        ASSERT_TRUE(placed.ok()) << placed.status().to_string();
        int gpu = 0;
        for (const auto& p : *placed) {
          gpu += p.where == cuda::Placement::kGpu;
          EXPECT_NE(p.where, cuda::Placement::kCpuFallback) << p.name << " (" << p.op << ") falls back to the CPU";
          for (const auto& v : p.downloads)
            ADD_FAILURE() << p.name << " (" << p.op << ", " << cuda::placement_name(p.where) << ") reads '" << v
                          << "' back from the GPU";
        }
        EXPECT_GT(gpu, 10);
      }
    }
}

}  // namespace
}  // namespace kiln
#endif
