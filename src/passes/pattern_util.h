// Helpers for passes that match node chains: who produces and who reads a value, one-element constants, and
// the checks that make a rewrite safe (intermediates read only inside the chain).
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

class PatternGraph {
 public:
  explicit PatternGraph(const ir::Graph& g);

  const ir::Graph& graph() const { return g_; }
  const ir::Node& node(size_t i) const { return g_.nodes[i]; }
  // The node that writes v (false for graph inputs and initializers).
  bool producer(const std::string& v, size_t* i) const;
  // Distinct nodes reading v.
  const std::vector<size_t>& consumers(const std::string& v) const;
  // v is read by exactly one node and is not a graph output (nor read by a subgraph body).
  bool sole_consumer(const std::string& v, size_t* i) const;
  bool is_external(const std::string& v) const { return external_.count(v) != 0; }

  // v is a one-element numeric initializer; its value as double.
  bool scalar_value(const std::string& v, double* out) const;
  // v is a one-element initializer equal to target (within what its dtype can represent).
  bool scalar_is(const std::string& v, double target) const;
  // Node i is the commutative binary op with one input a one-element constant ≈ target; *other is the other
  // input.
  bool const_operand(size_t i, const char* op, double target, std::string* other) const;
  // Node i is op(operand, c) or op(c, operand) with c ≈ target; *out is its output.
  bool binary_with_const(size_t i, const char* op, const std::string& operand, double target,
                         std::string* out) const;
  // Node i is Div(other, c) with c ≈ target.
  bool const_divisor(size_t i, double target, std::string* other) const;

  // Node i is op (default domain) with exactly `inputs` inputs and one output.
  bool plain(size_t i, const char* op, size_t inputs) const;
  // Node i is Pow(x, 2) or Mul(x, x); *x is x.
  bool square_of(size_t i, std::string* x) const;
  // Reduce node n keeps its dims (keepdims 1) and reads its axes from a constant input (opset 18+) or the
  // attribute; *axes as written (empty: none given). False for keepdims 0 or axes computed at run time.
  bool kept_reduce_axes(const ir::Node& n, std::vector<int64_t>* axes) const;

  // Every output of the chain's nodes other than last's is read only by chain nodes and is not external.
  bool only_used_within(const std::set<size_t>& chain, size_t last) const;
  // Every constant input of the chain has one element and a rank no larger than x's (known) rank, so
  // broadcasting it leaves x's shape unchanged.
  bool constants_keep_shape(const std::set<size_t>& chain, const std::string& x) const;

 private:
  const ir::Graph& g_;
  std::map<std::string, size_t> producer_;
  std::map<std::string, std::vector<size_t>> consumers_;
  std::set<std::string> external_;
};

// Names read inside g's subgraph bodies (If/Loop/Scan, at any depth) and the bodies' outputs: values a rewrite
// of the outer graph must keep under their names.
std::set<std::string> subgraph_read_names(const ir::Graph& g);

// Drops the nodes marked removed, keeping the order of the rest.
void erase_removed(ir::Graph& g, const std::vector<bool>& removed);

// No node of the chain is marked removed yet (by an earlier, overlapping match).
bool none_removed(const std::set<size_t>& chain, const std::vector<bool>& removed);

// Puts n in place of the chain: n takes last's slot; the other nodes are marked removed and their outputs'
// value infos dropped (erase_removed deletes them once matching is done, so indices stay valid meanwhile).
void replace_chain(ir::Graph& g, const std::set<size_t>& chain, size_t last, ir::Node n,
                   std::vector<bool>& removed);

// A new initializer (and its value info) named after `base`, holding t; returns its name.
std::string add_constant(ir::Graph& g, const std::string& base, Tensor t);

// A float tensor [n] of ones in dt (f32, f64, f16, bf16).
Tensor float_ones(DType dt, int64_t n);

}  // namespace kiln::passes
