// What a node reads by name, subgraphs included: the uses an executor must count before freeing a value, the
// values a body run on the host needs from its enclosing graph, and the dependencies of a cut (kiln extract).
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir {

// Names read inside the If/Loop/Scan bodies of the node (at any depth) that those bodies do not define: the
// outer values the node depends on beyond its inputs, sorted, each once.
std::vector<std::string> outer_scope_reads(const Node& node);

// The node's inputs, then its outer_scope_reads.
std::vector<std::string> node_reads(const Node& node);

// Per node of g: the values whose last reader it is (reads from its bodies count, so an enclosing value a body
// reads lives until that node has run), graph outputs and constants excepted. Both executors free values by it.
std::vector<std::vector<std::string>> release_after(const Graph& g);

}  // namespace kiln::ir
