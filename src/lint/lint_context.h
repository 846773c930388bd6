// What the lint checks share: the parsed model, the options and the report they add findings to. Checks of
// the file and its structure read the ModelProto itself (they must work on models the importer refuses);
// checks that need shapes read a LintGraph, an import of the model with what the importer refuses cut out.
#pragma once
#include <kiln_onnx/onnx.pb.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/lint.h"

namespace kiln::lint {

struct LintContext {
  const kiln_onnx::ModelProto& model;
  const LintOptions& options;
  std::string what;      // "model 'x.onnx'", for messages
  std::string base_dir;  // resolves external data
  LintReport& report;

  LintFinding& add(LintSeverity severity, std::string check, std::string node, std::string op,
                   std::string value, std::string message, std::string advice);
  void skip(std::string why) { report.skipped.push_back(std::move(why)); }
};

// "Op", or "domain::Op" outside the default domain.
std::string op_label(const kiln_onnx::NodeProto& n);
// The name the importer gives a node: its own, else "<Op>_<index>".
std::string node_name(const kiln_onnx::NodeProto& n, int index);
// The default-domain opset the model imports (1 when it names none, as the importer assumes).
int64_t default_opset(const kiln_onnx::ModelProto& m);
// Calls fn on g and on every subgraph below it (If branches, Loop/Scan bodies), parents first; depth 0 is g.
void for_each_graph(const kiln_onnx::GraphProto& g,
                    const std::function<void(const kiln_onnx::GraphProto&, int depth)>& fn, int depth = 0);
// Whether kiln has an implementation of the node's op (the importer's rule: known op, matching domain).
bool op_supported(const kiln_onnx::NodeProto& n);

// The model imported for the checks that need shapes and constants: unsupported nodes cut out (their outputs
// become inputs of unknown type), later duplicates renamed, versions clamped to what the importer reads, and
// weights turned into typed inputs (their data is checked for completeness, not copied).
// Shapes are inferred node by node; a node whose inference fails keeps unknown outputs and is remembered.
struct LintGraph {
  ir::Graph graph;
  // Values whose shapes are unknown because something upstream was cut out or failed to infer.
  std::set<std::string> tainted;
  // Initializers too large to be shape constants: typed graph inputs here, so that no weight is copied.
  std::set<std::string> weights;
  // Constant values known at build time: initializers and what folds from them (Constant nodes, small math).
  std::map<std::string, Tensor> constants;
};
// Null (with a skipped-check note or an error finding added) when even the cut-down model cannot be imported.
std::optional<LintGraph> import_for_lint(LintContext& ctx);

// The check groups, each in its own file.
void check_versions(LintContext& ctx);      // check_structure.cpp
void check_ops(LintContext& ctx);           // check_structure.cpp
void check_names(LintContext& ctx);         // check_structure.cpp
void check_usage(LintContext& ctx);         // check_structure.cpp
void check_input_dims(LintContext& ctx);    // check_structure.cpp
void check_values(LintContext& ctx);        // check_values.cpp: int64 range, f16 range of constants
void check_control_flow(LintContext& ctx);  // check_control_flow.cpp
void check_frozen_dims(LintContext& ctx, const LintGraph& g);  // check_frozen_dims.cpp
void check_precision(LintContext& ctx, const LintGraph& g);    // check_precision.cpp
void check_placement(LintContext& ctx, const LintGraph& g);    // check_placement.cpp

}  // namespace kiln::lint
