#include "passes/pass.h"

namespace kiln::passes {

const std::vector<Pass>& default_pipeline() {
  static const std::vector<Pass> kPasses = {
      {"infer_shapes", infer_shapes},
      {"fold_shape_subgraphs", fold_shape_subgraphs},
      {"remove_identities", remove_identities},
      {"lower_onnx_attention", lower_onnx_attention},
      {"fuse_attention", fuse_attention},
      {"fold_attention_layout", fold_attention_layout},
      {"fold_batch_norm", fold_batch_norm},
      {"lower_patch_conv", lower_patch_conv},
      {"fuse_conv_act", fuse_conv_act},
      {"fuse_layer_norm", fuse_layer_norm},
      {"fuse_rms_norm", fuse_rms_norm},
      {"fuse_gelu", fuse_gelu},
      {"fuse_matmul_epilogue", fuse_matmul_epilogue},
      {"pack_qkv", pack_qkv},
      {"fuse_add_layer_norm", fuse_add_layer_norm},
      {"fuse_pointwise", fuse_pointwise},
      {"eliminate_dead_code", eliminate_dead_code},
      {"infer_shapes", infer_shapes},
  };
  return kPasses;
}

Status run_pipeline(ir::Graph& g, const std::vector<Pass>& passes,
                    const std::function<void(std::string_view)>& progress) {
  for (const auto& p : passes) {
    if (progress) progress(std::string("pass ") + std::string(p.name));
    KILN_RETURN_IF_ERROR(p.run(g).with_context(std::string("pass ") + std::string(p.name)));
  }
  return Status();
}

}  // namespace kiln::passes
