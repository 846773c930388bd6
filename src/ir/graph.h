// The IR: a graph of nodes connected by named values, close to ONNX so import stays simple.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ir/attribute.h"
#include "kiln/dtype.h"
#include "kiln/shape.h"
#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln::ir {

struct ValueInfo {
  DType dtype = DType::kUndefined;
  Shape shape;  // unknown rank until inferred
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;                // "" for the default ONNX domain
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::map<std::string, Attribute> attrs;

  bool has_attr(const std::string& key) const { return attrs.count(key) != 0; }
  int64_t attr_int(const std::string& key, int64_t fallback) const;
  float attr_float(const std::string& key, float fallback) const;
  std::string attr_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> fallback = {}) const;
  std::vector<float> attr_floats(const std::string& key, std::vector<float> fallback = {}) const;
  const Attribute* attr(const std::string& key) const;
  // "node 'conv1' (Conv)" — the prefix every node error message starts with.
  std::string label() const;
};

struct Graph {
  std::string name;
  int64_t opset = 0;     // default-domain opset the model was exported with
  int64_t ir_version = 0;
  std::vector<Node> nodes;  // topologically sorted after import
  std::vector<std::string> inputs;   // runtime inputs (initializers excluded)
  std::vector<std::string> outputs;
  std::map<std::string, ValueInfo> values;     // every value's dtype and shape, when known
  std::map<std::string, Tensor> initializers;  // constant tensors (weights, folded constants)
  std::map<std::string, std::string> metadata;

  const ValueInfo* value(const std::string& n) const;
  bool is_constant(const std::string& n) const { return initializers.count(n) != 0; }
  // Name not used by any value yet, built from base.
  std::string unique_name(const std::string& base) const;
  // Names of consumers, per value.
  std::map<std::string, std::vector<size_t>> consumers() const;
};

// Orders nodes so every node comes after its producers; an error names the nodes in a cycle.
Status topological_sort(Graph& g);

}  // namespace kiln::ir
