#include "backends/cpu/executor.h"

#include <chrono>
#include <limits>
#include <new>
#include <set>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel.h"
#include "ir/node_reads.h"
#include "ops/op.h"
#include "util/error.h"
#include "util/safe_text.h"

namespace kiln::cpu {

namespace {
bool is_half(DType t) { return t == DType::kF16 || t == DType::kBF16; }
}  // namespace

Result<std::vector<Tensor>> run_node(const ir::Node& node, int64_t opset, const std::vector<const Tensor*>& inputs,
                                     const ValueLookup* scope) {
  const KernelDef* kernel = kernel_table().find(node.op_type);
  if (!kernel) return unsupported("{}: the CPU backend has no kernel for op '{}'", node.label(),
                                   printable(node.op_type));

  std::vector<ir::ValueInfo> infos(inputs.size());
  std::vector<const ir::ValueInfo*> info_ptrs(inputs.size(), nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i]) continue;
    infos[i] = {inputs[i]->dtype(), Shape::from_dims(inputs[i]->dims())};
    info_ptrs[i] = &infos[i];
  }
  ops::InferContext ictx(node, opset, info_ptrs, inputs);
  KILN_RETURN_IF_ERROR(ops::infer_node(node, opset, ictx));

  // Widen f16/bf16 so the kernel computes in f32.
  std::vector<Tensor> widened;
  widened.reserve(inputs.size());
  std::vector<const Tensor*> kin = inputs;
  if (kernel->half_via_f32) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i] && is_half(inputs[i]->dtype())) {
        widened.push_back(convert_tensor(*inputs[i], DType::kF32));
        kin[i] = &widened.back();
      }
    }
  }

  const auto& inferred = ictx.outputs();
  std::vector<Tensor> outputs(node.outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (node.outputs[i].empty() || inferred[i].dtype == DType::kUndefined || !inferred[i].shape.is_static()) continue;
    DType dt = inferred[i].dtype;
    if (kernel->half_via_f32 && is_half(dt)) dt = DType::kF32;
    // A shape from corrupt data (a 2^40-long dim) is an error that names the node, not a bad_alloc or a kill by
    // the OOM killer halfway through zero-filling.
    KILN_ASSIGN_OR_RETURN(outputs[i], Tensor::allocate(dt, inferred[i].shape.static_dims(),
                                                       fmt::format("{}: output {} ('{}')", node.label(), i,
                                                                   printable(node.outputs[i]))));
  }
  KernelContext kctx(node, opset, kin, &outputs, scope);
  try {
    KILN_RETURN_IF_ERROR(kernel->run(kctx));
  } catch (const std::bad_alloc&) {
    return make_error(StatusCode::kInvalidArgument,
                      "{}: the kernel ran out of host memory; use smaller shapes or free memory", node.label());
  }

  for (size_t i = 0; i < outputs.size(); ++i) {
    if (node.outputs[i].empty()) continue;
    if (!outputs[i].defined())
      return internal_error("{}: the kernel did not produce output {} ('{}')", node.label(), i,
                            printable(node.outputs[i]));
    const auto& want = inferred[i];
    if (kernel->half_via_f32 && is_half(want.dtype) && outputs[i].dtype() == DType::kF32)
      outputs[i] = convert_tensor(outputs[i], want.dtype);
    if (want.dtype != DType::kUndefined && outputs[i].dtype() != want.dtype)
      return internal_error("{}: output {} is {} but inference said {}", node.label(), i,
                            dtype_name(outputs[i].dtype()), dtype_name(want.dtype));
    if (want.shape.is_static() && outputs[i].dims() != want.shape.static_dims())
      return internal_error("{}: output {} has dims {} but inference said {}", node.label(), i,
                            dims_to_string(outputs[i].dims()), want.shape.to_string());
  }
  return outputs;
}

std::vector<std::string> missing_kernels(const ir::Graph& graph) {
  std::set<std::string> out;
  for (const auto& n : graph.nodes)
    if (!kernel_table().find(n.op_type)) out.insert(n.op_type + " (" + n.label() + ")");
  return {out.begin(), out.end()};
}

GraphExecutor::GraphExecutor(std::shared_ptr<const ir::Graph> graph)
    : graph_(std::move(graph)), release_after_(ir::release_after(*graph_)) {}

Result<std::vector<LayerTiming>> GraphExecutor::profile(const std::map<std::string, Tensor>& inputs) const {
  std::vector<LayerTiming> timings;
  KILN_RETURN_IF_ERROR(run(inputs, nullptr, &timings).status());
  return timings;
}

Result<std::map<std::string, Tensor>> GraphExecutor::run(const std::map<std::string, Tensor>& inputs,
                                                         const ValueLookup* outer,
                                                         std::vector<LayerTiming>* timings) const {
  const ir::Graph& g = *graph_;
  std::map<std::string, Tensor> live;
  // What a subgraph of one of our nodes can see: our live values, our constants, then our enclosing scope.
  const ValueLookup scope = [&](const std::string& name) -> const Tensor* {
    if (auto it = live.find(name); it != live.end()) return &it->second;
    if (auto c = g.initializers.find(name); c != g.initializers.end()) return &c->second;
    return outer ? (*outer)(name) : nullptr;
  };
  for (const auto& name : g.inputs) {
    auto it = inputs.find(name);
    if (it == inputs.end()) return invalid_argument("input '{}' was not given", printable(name));
    live[name] = it->second;
  }
  std::vector<const Tensor*> ins;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& node = g.nodes[i];
    ins.assign(node.inputs.size(), nullptr);
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const std::string& name = node.inputs[k];
      if (name.empty()) continue;
      auto it = live.find(name);
      if (it != live.end()) {
        ins[k] = &it->second;
      } else if (auto c = g.initializers.find(name); c != g.initializers.end()) {
        ins[k] = &c->second;
      } else if (const Tensor* o = outer ? (*outer)(name) : nullptr) {
        ins[k] = o;
      } else {
        return internal_error("{}: input '{}' has no value at run time", node.label(), printable(name));
      }
    }
    const auto start = std::chrono::steady_clock::now();
    auto outs = run_node(node, g.opset, ins, &scope);
    if (!outs.ok()) return outs.status();
    if (timings)
      timings->push_back({node.name, node.op_type, "cpu", "",
                          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count()});
    for (size_t k = 0; k < node.outputs.size(); ++k)
      if (!node.outputs[k].empty()) live[node.outputs[k]] = std::move((*outs)[k]);
    for (const auto& name : release_after_[i]) live.erase(name);
  }
  std::map<std::string, Tensor> result;
  for (const auto& name : g.outputs) {
    if (auto it = live.find(name); it != live.end()) result[name] = it->second;
    else if (auto c = g.initializers.find(name); c != g.initializers.end()) result[name] = c->second;
    else if (const Tensor* o = outer ? (*outer)(name) : nullptr) result[name] = *o;
    else return internal_error("graph output '{}' was not produced", printable(name));
  }
  return result;
}

}  // namespace kiln::cpu
