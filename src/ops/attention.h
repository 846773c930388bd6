// The ONNX `Attention` op (opset 23): its geometry, read once from Q/K/V/past shapes and the head-count
// attributes, for shape inference (src/ops/attention.cpp), the CPU reference
// (src/backends/cpu/kernels/attention.cpp) and the lower_onnx_attention pass.
#pragma once
#include "ops/op.h"

namespace kiln::ops {

// Input and output slots of Attention.
enum AttentionSlot : size_t {
  kAttnQ = 0,
  kAttnK = 1,
  kAttnV = 2,
  kAttnMask = 3,
  kAttnPastKey = 4,
  kAttnPastValue = 5,
  kAttnNonpadKvSeqlen = 6,  // opset 24; rejected at 23
  kAttnY = 0,
  kAttnPresentKey = 1,
  kAttnPresentValue = 2,
  kAttnQkOutput = 3,
};

// Logical dims of one Attention node. 4-D inputs are Q [B, Hq, Sq, D], K [B, Hkv, Skv, D], V [B, Hkv, Skv,
// Dv]; 3-D inputs are Q [B, Sq, Hq*D], K [B, Skv, Hkv*D], V [B, Skv, Hkv*Dv] with Hq/Hkv from the q_num_heads
// / kv_num_heads attributes. past_key/past_value are always 4-D [B, Hkv, P, D|Dv]; total = P + Skv keys. Dims
// not known at build time are symbolic or unknown; everything known has been checked for consistency.
struct AttentionDims {
  bool three_d = false;
  Dim batch, q_heads, kv_heads, q_seq, kv_seq, past_seq, total_seq, head, v_head;
};

// Validates ranks, head counts, head sizes and batch/sequence agreement; errors name the node and the shapes.
// Needs every Q/K/V (and past) shape to have a rank; callers check that first.
Result<AttentionDims> attention_dims(const InferContext& ctx);

}  // namespace kiln::ops
