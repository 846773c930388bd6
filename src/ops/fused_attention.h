// FusedAttention's operand geometry (op semantics: src/ops/fused_attention.cpp), shared by shape inference,
// both kernels and the passes that read Q/K/V lengths (detect_causal_mask).
#pragma once
#include <optional>

#include "ir/graph.h"
#include "kiln/shape.h"

namespace kiln::ops {

// packed=1: input 0 holds Q, K and V side by side in each row of [B, S, W], as one QKV projection writes them
// (inputs 1 and 2 are empty). Q is q_num_heads x head_size values at element qkv_offsets[0] of a row; K and V
// are kv_num_heads x head_size each at qkv_offsets[1] and [2]. All three are [B, S, H, D] (BSHD) views.
struct PackedQkv {
  int64_t q_heads = 0, kv_heads = 0, head_size = 0;
  int64_t q_off = 0, k_off = 0, v_off = 0;
  // Elements a row must hold: the end of the furthest operand.
  int64_t row_needed() const;
};

// The node's packing, or nullopt when it takes separate Q, K, V. Attribute values are validated by shape
// inference (infer_fused_attention); this only reads them.
std::optional<PackedQkv> packed_qkv(const ir::Node& n);

// Stored shapes of Q, K, V as the unpacked op would take them ([B, S, H, D] for packed: q_bshd-style), from
// the node's input shapes. Unranked inputs give unranked shapes.
struct AttentionOperands {
  Shape q, k, v;
  bool q_bshd = false, k_bshd = false, v_bshd = false;
};
AttentionOperands attention_operands(const ir::Node& n, const Shape& in0, const Shape& in1, const Shape& in2);

}  // namespace kiln::ops
