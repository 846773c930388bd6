// Which nodes of a graph the CUDA backend runs with kernels of its own (as opposed to the CPU fallback): used
// by the conformance runner's --backend cuda to tell a test that ran on the GPU from one that only ran the
// CPU reference through the CUDA executor. CPU-only code can include this header; it needs no CUDA headers.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::cuda {

struct UncoveredNode {
  std::string op;  // op type
  std::string
      reason;  // "no CUDA kernel for Foo" / "the CUDA kernel for Foo does not take this node (inputs …)"
};

// Every node of g that has no CUDA kernel taking its input dtypes, in graph order, the nodes of If/Loop/Scan
// bodies included (the executor runs bodies node by node; Scan before opset 9 is reported itself). Empty:
// every node has one.
std::vector<UncoveredNode> uncovered_nodes(const ir::Graph& g);

}  // namespace kiln::cuda
