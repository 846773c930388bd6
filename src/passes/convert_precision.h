// convert_precision: rewrites an f32 graph to compute in f16 or bf16 (kiln build --fp16 / --bf16).
//
// - float32 initializers that feed converted nodes become the target dtype, saturated to its finite range
//   (torch's finfo(float32).min mask constants stay finite); a weight also read in f32 keeps an f32 copy.
// - Graph inputs and outputs keep the dtypes the model declares: float inputs get a Cast to the target
//   before their first converted consumer; float outputs produced in the target get a Cast back, under
//   their own name.
// - A node stays in f32 (Casts around it) when fp32_layers names it, when the op table in
//   convert_precision.cpp keeps its op in f32 (Range, Cast, nodes with subgraphs…), or when the backend
//   predicate says its kernel cannot run it at the target dtype.
// - Inputs that are parameters with their own type (Resize scales/roi, BatchNormalization running stats
//   from opset 15, Pow's exponent, Shape's input) are listed in that table too and are not converted.
// - Cast chains the rewrite creates (f16 -> f32 -> f16, int -> f32 -> f16) collapse to one Cast or none.
// The pass depends on no backend: the builder passes the CUDA kernel table's supports() as `supports`.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

struct PrecisionOptions {
  DType target = DType::kF16;  // kF16 or kBF16
  // Node names that keep computing in f32; each must name a node of the graph.
  std::vector<std::string> fp32_layers;
  // Whether the backend runs `node` with these input dtypes (those it would get after conversion). Null:
  // every node can run at the target dtype.
  std::function<bool(const ir::Node& node, const std::vector<DType>& input_dtypes)> supports;
};

struct PrecisionReport {
  int converted_nodes = 0;  // nodes now computing in the target dtype
  int casts_added = 0;      // Cast nodes in the final graph that the pass added
  // Nodes with f32 inputs left in f32, with why: "fp32_layers", "op kept in f32", "no f16 kernel"…
  std::vector<std::pair<std::string, std::string>> kept_f32;
};

// Needs a graph whose dtypes are known (it runs infer_shapes first and last). Errors name the node.
Status convert_precision(ir::Graph& g, const PrecisionOptions& options, PrecisionReport* report = nullptr);

// kiln build --reduced-precision-io: f32 graph inputs and outputs take `target` (f16/bf16), the Casts at the
// edges that convert_precision added disappear (src/passes/reduce_io_precision.cpp). Run after
// convert_precision; on a graph that computes in f32 it only moves the Casts inside the engine.
Status reduce_io_precision(ir::Graph& g, DType target);

// Every name must be a node of g; otherwise an error listing, per unknown name, the nearest node names.
// `what` names the option in the message ("--fp32-layers").
Status check_node_names(const ir::Graph& g, const std::vector<std::string>& names, const std::string& what);

}  // namespace kiln::passes
