// The CUDA source the PointwiseChain kernel generates (pointwise_chain.cu), exposed so tests can compile it
// with NVRTC on machines without a GPU and read what a program turns into.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::cuda {

struct PointwiseChainSource {
  std::string key;     // what the module cache keys on: program, constants' bits, dtypes, vector width
  std::string source;  // CUDA C++ with kernels kiln_pw_flat, kiln_pw_bcast32 and kiln_pw_bcast64
};

// For node (a PointwiseChain) with inputs and outputs of these storage dtypes (f32/f16/bf16, bool
// conditions).
Result<PointwiseChainSource> pointwise_chain_source(const ir::Node& node, const std::vector<DType>& inputs,
                                                    const std::vector<DType>& outputs);

}  // namespace kiln::cuda
