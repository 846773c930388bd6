// Runs nodes and whole graphs on the host with the reference kernels.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/kernel.h"
#include "ir/graph.h"
#include "kiln/context.h"
#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln::cpu {

// Infers the node's outputs from the concrete inputs, allocates them and runs the kernel.
// Used by the executor and by constant folding at build time.
// scope: values of enclosing graphs, for nodes with subgraphs (If/Loop/Scan).
Result<std::vector<Tensor>> run_node(const ir::Node& node, int64_t opset, const std::vector<const Tensor*>& inputs,
                                     const ValueLookup* scope = nullptr);

// Ops in the graph that have no CPU kernel, as "Op (node 'name')" strings.
std::vector<std::string> missing_kernels(const ir::Graph& graph);

class GraphExecutor {
 public:
  explicit GraphExecutor(std::shared_ptr<const ir::Graph> graph);
  // Inputs by name with concrete dims; returns every graph output. outer: values of enclosing graphs (for
  // subgraph bodies, which may read them by name).
  // timings: when given, one entry per node with its wall time.
  Result<std::map<std::string, Tensor>> run(const std::map<std::string, Tensor>& inputs,
                                            const ValueLookup* outer = nullptr,
                                            std::vector<LayerTiming>* timings = nullptr) const;
  Result<std::vector<LayerTiming>> profile(const std::map<std::string, Tensor>& inputs) const;

 private:
  std::shared_ptr<const ir::Graph> graph_;
  std::vector<std::vector<std::string>> release_after_;  // values whose last use is node i
};

}  // namespace kiln::cpu
