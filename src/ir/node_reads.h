// Every name a node reads, including those its subgraphs read from enclosing scopes: the uses an executor must
// count before freeing a value, and the values a body run on the host needs from its enclosing graph.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir {

// The node's inputs, then every name its subgraphs (If/Loop/Scan bodies, at any depth) read, which includes
// values of enclosing scopes (callers keep the names that exist in their scope).
std::vector<std::string> node_reads(const Node& node);

}  // namespace kiln::ir
