// Op schemas: arity, attribute validation and type/shape inference, one file per op (kind).
// The same infer function runs at build time (symbolic dims, constants where known) and at run time
// (every dim and value known), so build-time and run-time shapes cannot disagree.
#pragma once
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"

namespace kiln::ops {

class InferContext {
 public:
  InferContext(const ir::Node& node, int64_t opset, std::vector<const ir::ValueInfo*> inputs,
               std::vector<const Tensor*> values);

  const ir::Node& node() const { return node_; }
  int64_t opset() const { return opset_; }
  size_t num_inputs() const { return inputs_.size(); }
  // Present and not an omitted optional ("").
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  // An absent input reads as undefined dtype and unknown rank, so an infer function that looks at an input the
  // model left out sees nothing rather than reading past the node's inputs.
  DType input_dtype(size_t i) const { return has_input(i) ? inputs_[i]->dtype : DType::kUndefined; }
  const Shape& input_shape(size_t i) const { return has_input(i) ? inputs_[i]->shape : absent_shape(); }
  // The input's value when known (a constant at build time; always at run time), else null.
  const Tensor* input_value(size_t i) const { return i < values_.size() ? values_[i] : nullptr; }

  size_t num_outputs() const { return outputs_.size(); }
  bool has_output(size_t i) const { return i < node_.outputs.size() && !node_.outputs[i].empty(); }
  void set_output(size_t i, DType dtype, Shape shape);
  const std::vector<ir::ValueInfo>& outputs() const { return outputs_; }

  // An error that starts with the node's name and op: "node 'x' (Reshape): <message>".
  template <class... A>
  Status error(fmt::format_string<A...> f, A&&... a) const {
    return Status(StatusCode::kInvalidModel,
                  node_.label() + ": " + fmt::format(f, std::forward<A>(a)...));
  }
  // dim_add / dim_mul whose overflow error names this node and op.
  Result<Dim> add_dims(const Dim& a, const Dim& b) const;
  Result<Dim> mul_dims(const Dim& a, const Dim& b) const;

  template <class... A>
  Status unsupported(fmt::format_string<A...> f, A&&... a) const {
    return Status(StatusCode::kUnsupported, node_.label() + ": " + fmt::format(f, std::forward<A>(a)...));
  }

 private:
  static const Shape& absent_shape();
  const ir::Node& node_;
  int64_t opset_;
  std::vector<const ir::ValueInfo*> inputs_;
  std::vector<const Tensor*> values_;
  std::vector<ir::ValueInfo> outputs_;
};

using InferFn = Status (*)(InferContext&);

struct OpDef {
  std::string_view op_type;
  int min_inputs = 0;
  int max_inputs = 0;  // -1: variadic
  int min_outputs = 1;
  int max_outputs = 1;
  InferFn infer = nullptr;
  // "" for ONNX ops; kKilnDomain for kiln's own fused ops, which only passes create (a model may not use them).
  std::string_view domain = "";
  // Inputs that infer_node would otherwise require to be named (those below min_inputs, and an ONNX op's
  // variadic tail) but that may be left empty (bit i: input i): Loop's M and cond, Scan-8's sequence_lens.
  uint32_t optional_inputs = 0;
};

// Domain of the fused ops kiln's passes create (FusedMatMul, Attention…); engine files carry them.
inline constexpr std::string_view kKilnDomain = "kiln";

class OpRegistry {
 public:
  void add(const OpDef& def) { defs_[std::string(def.op_type)] = def; }
  const OpDef* find(std::string_view op_type) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, OpDef, std::less<>> defs_;
};

// The one registry of every default-domain op kiln knows, built on first use from the explicit table.
const OpRegistry& op_registry();

// Checks arity, then runs inference; errors name the node.
Status infer_node(const ir::Node& node, int64_t opset, InferContext& ctx);

}  // namespace kiln::ops
