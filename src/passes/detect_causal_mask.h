// detect_causal_mask: a FusedAttention whose mask the model computes from input SHAPES only (torch's causal
// mask for GPT-2: Range, Unsqueeze, LessOrEqual, Expand, Equal, And, Where… of Shape(input_ids)) becomes
// causal=1 without the mask, so the CUDA kernel skips the masked tiles instead of reading an [Sq, Sk] tensor.
//
// The mask's subgraph is evaluated on the CPU reference at input shapes taken from the optimization profiles
// and must be exactly top-left causal at every one of them (src/passes/detect_causal_mask.cpp says which
// shapes, and why a finfo.min float mask is the same as causal=1). That is a check by evaluation over the
// profiles' ranges, not a proof for other shapes: the engine refuses inputs outside its profiles
// (check_input_dims in src/runtime/context.cpp), and a mask that reads an input the profiles do not bound (or
// any dynamic dim when the build has no profiles) is left alone.
// The builder runs it after the default pipeline, with the profiles (src/builder/builder.cpp).
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/engine.h"

namespace kiln::passes {

struct CausalMaskReport {
  int masked = 0;  // FusedAttention nodes that had a mask input
  int causal = 0;  // of those, the ones now causal=1 without the mask
  // One line per distinct mask left alone: its name and why ("reads the values of input 'attention_mask'").
  std::vector<std::string> kept;
};

// Rewrites in place and removes the mask subgraphs no longer read (eliminate_dead_code). Errors only for
// graphs that are malformed; a mask that cannot be shown causal is simply kept.
Status detect_causal_mask(ir::Graph& g, const std::vector<OptimizationProfile>& profiles,
                          CausalMaskReport* report = nullptr);

}  // namespace kiln::passes
