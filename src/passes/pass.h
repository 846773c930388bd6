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
// fold_shapes + fold_constants + infer_shapes until nothing changes: torch's shape chains collapse to constants
// wherever the dims they read are static.
Status fold_shape_subgraphs(ir::Graph& g);
// Drops Identity, inference Dropout and no-op Cast/Reshape/Expand, rewiring consumers.
Status remove_identities(ir::Graph& g);
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
