// CPU reference kernels: plain, obviously correct loops. Every other backend is tested against these.
#pragma once
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"
#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln::cpu {

// Finds a value visible at a node by name (enclosing graphs' values, for If/Loop/Scan bodies); null if none.
using ValueLookup = std::function<const Tensor*(const std::string&)>;

class KernelContext {
 public:
  KernelContext(const ir::Node& node, int64_t opset, std::vector<const Tensor*> inputs,
                std::vector<Tensor>* outputs, const ValueLookup* scope = nullptr)
      : node_(node), opset_(opset), inputs_(std::move(inputs)), outputs_(outputs), scope_(scope) {}

  const ir::Node& node() const { return node_; }
  int64_t opset() const { return opset_; }
  size_t num_inputs() const { return inputs_.size(); }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  const Tensor& input(size_t i) const { return *inputs_[i]; }
  size_t num_outputs() const { return outputs_->size(); }
  bool has_output(size_t i) const { return i < node_.outputs.size() && !node_.outputs[i].empty(); }
  // Pre-allocated from shape inference when the output shape does not depend on data.
  Tensor& output(size_t i) { return (*outputs_)[i]; }
  // For outputs whose shape depends on input values (NonZero, Unique…), or to replace one.
  Tensor& allocate_output(size_t i, DType dtype, std::vector<int64_t> dims) {
    (*outputs_)[i] = Tensor(dtype, std::move(dims));
    return (*outputs_)[i];
  }
  void set_output(size_t i, Tensor t) { (*outputs_)[i] = std::move(t); }
  // Values of the enclosing graph(s) visible to this node's subgraphs; may be null at the top level.
  const ValueLookup* scope() const { return scope_; }

  // The value of input i, which must hold exactly one element (a scalar or a one-element tensor): the error
  // names the input, where reading element 0 of an empty tensor would read past it.
  Result<int64_t> scalar_int(size_t i) const {
    KILN_RETURN_IF_ERROR(check_scalar(i));
    return input(i).get_as_int(0);
  }
  Result<double> scalar_double(size_t i) const {
    KILN_RETURN_IF_ERROR(check_scalar(i));
    return input(i).get_as_double(0);
  }

  template <class... A>
  Status error(fmt::format_string<A...> f, A&&... a) const {
    return Status(StatusCode::kInvalidArgument, node_.label() + ": " + fmt::format(f, std::forward<A>(a)...));
  }
  template <class... A>
  Status unsupported(fmt::format_string<A...> f, A&&... a) const {
    return Status(StatusCode::kUnsupported, node_.label() + ": " + fmt::format(f, std::forward<A>(a)...));
  }

 private:
  Status check_scalar(size_t i) const {
    if (!has_input(i)) return error("input {} is missing", i);
    if (input(i).numel() != 1)
      return error("input {} ('{}') must hold one value, got {}", i, node_.inputs[i], input(i).describe());
    return Status();
  }

  const ir::Node& node_;
  int64_t opset_;
  std::vector<const Tensor*> inputs_;
  std::vector<Tensor>* outputs_;
  const ValueLookup* scope_;
};

using KernelFn = Status (*)(KernelContext&);

struct KernelDef {
  std::string_view op_type;
  KernelFn run = nullptr;
  // f16/bf16 inputs are widened to f32 before the kernel and f16/bf16 outputs narrowed after, so the
  // kernel only sees f32/f64/integers. Ops that move bits without arithmetic (Cast, Reshape…) turn it off.
  bool half_via_f32 = true;
};

class KernelTable {
 public:
  void add(const KernelDef& def) { defs_[std::string(def.op_type)] = def; }
  const KernelDef* find(std::string_view op_type) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, KernelDef, std::less<>> defs_;
};

const KernelTable& kernel_table();

}  // namespace kiln::cpu
