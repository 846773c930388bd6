// Graph passes: each one file, named by its verb, testable alone; run in order by the pipeline.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

// Infers every value's dtype and shape; an error names the node. Declared dtypes in the model that disagree
// with inference are reported as dtype mismatches.
Status infer_shapes(ir::Graph& g);
// Evaluates nodes whose inputs are all constants (Constant nodes too) and stores results as initializers.
Status fold_constants(ir::Graph& g);
// Replaces Shape/Size of inputs with static dims by constants, so shape chains fold.
Status fold_shapes(ir::Graph& g);
// An If whose condition is constant becomes the nodes of the branch it takes (names kept, made unique where
// they clash; an Identity per output); data-dependent Ifs are left as they are. Each fold is recorded in
// g.metadata as kFoldedIfKey + node name -> "then_branch|else_branch<TAB>condition value".
inline constexpr const char* kFoldedIfKey = "kiln.folded_if.";
Status fold_static_if(ir::Graph& g);
// fold_shapes + fold_constants + fold_static_if + infer_shapes until nothing changes: torch's shape chains collapse to constants
// wherever the dims they read are static.
Status fold_shape_subgraphs(ir::Graph& g);
// Drops Identity, inference Dropout and no-op Cast/Reshape/Expand, rewiring consumers.
Status remove_identities(ir::Graph& g);
// ONNX opset-23 Attention nodes without a KV cache, softcap or extra outputs into FusedAttention (3-D inputs
// through head-splitting Reshapes and the [B, S, H, X] layout attributes); the rest stay Attention.
Status lower_onnx_attention(ir::Graph& g);
// Scaled dot-product attention (MatMul, scale, mask, Softmax, [IsNaN guard], MatMul, as torch exports it)
// into one FusedAttention (kiln domain) where the intermediates have no other reader.
Status fuse_attention(ir::Graph& g);
// Head Transposes (perm [0,2,1,3]) that produce FusedAttention's Q/K/V or consume its Y, with no other
// reader, become the node's q_bshd/k_bshd/v_bshd/y_bshd layout attributes.
// nn.MultiheadAttention's seq-first chains (batch_first ViT) go too: in_proj split into Q/K/V thirds on X.
Status fold_attention_layout(ir::Graph& g);
// FusedAttention whose Q/K/V are head splits of three same-input projections (concatenated into one QKV
// FusedMatMul) or of one last-axis Split (dropped) reads the packed rows directly (packed=1). Runs after
// fuse_matmul_epilogue.
Status pack_qkv(ir::Graph& g);
// Folds BatchNormalization (inference, constant stats) and per-channel constant Mul/Div/Add/Sub that follow a
// Conv with constant weights into the Conv's weights and bias.
Status fold_batch_norm(ir::Graph& g);
// Patchify Convs (2-D, kernel == stride > 1x1, no pads or dilation, one group, constant weight: ViT's patch
// embedding) into Reshape -> Transpose -> MatMul [+ Add bias], with ViT's flatten-and-transpose tail absorbed.
Status lower_patch_conv(ir::Graph& g);
// Conv -> [Add(residual)] -> Relu, Conv -> Sigmoid and Conv -> SiLU into one FusedConv (kiln domain) where the
// intermediates have no other reader.
// Every other Conv becomes FusedConv too (activation none; Conv -> Add(same-shape residual) takes Z).
Status fuse_conv_act(ir::Graph& g);
// For CUDA f16/bf16 builds (the builder runs it after convert_precision): 2-D FusedConvs with a constant
// weight become channels-last (layout NHWC, weight permuted at build time, Transposes at the NCHW edges), then
// Transpose pairs that cancel are removed so consecutive convs exchange NHWC tensors directly.
Status conv_layout(ir::Graph& g);
// RMSNorm written out (Pow/Mul square, ReduceMean over the last axis, + eps, Sqrt, Reciprocal+Mul or Div,
// optional constant weight) into one RMSNormalization where the intermediates have no other reader.
Status fuse_rms_norm(ir::Graph& g);
// LayerNorm written out (ReduceMean, Sub, Pow/Mul square, ReduceMean, + eps, Sqrt, Div or Reciprocal+Mul,
// optional constant gamma and beta, over the trailing axes) into one LayerNormalization where the
// intermediates have no other reader. Runs before fuse_rms_norm, which would take the variance half.
Status fuse_layer_norm(ir::Graph& g);
// Add(X, R) of one shape -> LayerNormalization over the last axis into one FusedAddLayerNorm (kiln domain),
// which also writes the sum S where it has other readers. Runs after fuse_matmul_epilogue, whose residual
// epilogue moves no more bytes (post-norm) or fewer (pre-norm, S needed) for the Adds right after a GEMM.
Status fuse_add_layer_norm(ir::Graph& g);
// GELU written out (0.5*x*(1+Erf(x/sqrt2)), or the Tanh form with Pow/Mul) into one ONNX Gelu (approximate
// none/tanh) where the chain's intermediates have no other reader.
Status fuse_gelu(ir::Graph& g);
// MatMul/Gemm (constant 2-D weight) -> [Add bias] -> [Add residual] -> [Relu/Gelu] into one FusedMatMul (kiln
// domain) where the intermediates have no other reader.
Status fuse_matmul_epilogue(ir::Graph& g);
// Chains of elementwise nodes (unary, broadcasting binary, Where, Clip, Gelu, casts between floats…) into one
// PointwiseChain (kiln domain); runs after the epilogue fusions, whose nodes it leaves alone.
Status fuse_pointwise(ir::Graph& g);
// Drops nodes whose outputs reach no graph output, and unused initializers.
Status eliminate_dead_code(ir::Graph& g);

struct Pass {
  std::string_view name;
  Status (*run)(ir::Graph&);
};

// The default pipeline, in order.
const std::vector<Pass>& default_pipeline();
Status run_pipeline(ir::Graph& g, const std::vector<Pass>& passes,
                    const std::function<void(std::string_view)>& progress = {});

}  // namespace kiln::passes
