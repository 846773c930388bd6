// An engine's tactic choices as people read them. The TacticCache is keyed by problem (a convolution's or a
// GEMM's geometry and dtype), not by node: layers of one geometry share a choice and a choice is stored per
// profile shape. This decodes the keys the CUDA kernels write (formats in backends/cuda/lt_matmul.cu
// tactic_key, kernels/fused_conv.cu fused_conv_typed, kernels/attention.cu run_flash) and maps each to the
// layers whose static geometry matches it: a FusedConv by weights, groups, strides, dilations and pads (and
// the input dims that are static), a GEMM by K and N of its constant weight. Keys of other kinds, or that match
// no layer, are kept as unmapped.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

struct DecodedTactic {
  std::string key, value;    // as stored
  std::string kind;          // "conv", "gemm", "gemm-pad", "attention"; "" for a key this kiln cannot read
  std::string problem;       // e.g. "f16 NHWC n=8 c=64 m=64 in=56x56 k=3x3 stride=1x1"
  std::string choice;        // e.g. "cudnn conv+epilogue implicit_precomp_gemm tensor_op ws=0"
  std::vector<std::string> layers;  // node names it maps to
};

struct TacticMap {
  std::vector<DecodedTactic> tactics;                   // in key order
  std::map<std::string, std::vector<size_t>> by_layer;  // node name -> indices into tactics
};

TacticMap map_tactics(const ir::Graph& g, const std::map<std::string, std::string>& entries);

}  // namespace kiln
