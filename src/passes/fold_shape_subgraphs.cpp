#include "passes/pass.h"

namespace kiln::passes {

// Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains fold one link per round: folding a Shape makes the
// Gather constant, and re-inferring after a folded Reshape can make the next Shape static. Iterate to a fixpoint.
Status fold_shape_subgraphs(ir::Graph& g) {
  for (int round = 0; round < 64; ++round) {
    const size_t before = g.nodes.size();
    KILN_RETURN_IF_ERROR(fold_shapes(g));
    KILN_RETURN_IF_ERROR(fold_constants(g));
    // A condition computed from static shapes is constant by now; the branch it takes may fold further.
    KILN_RETURN_IF_ERROR(fold_static_if(g));
    KILN_RETURN_IF_ERROR(infer_shapes(g));
    if (g.nodes.size() == before) break;
  }
  return Status();
}

}  // namespace kiln::passes
