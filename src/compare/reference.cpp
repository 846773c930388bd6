// kiln compare's reference: the CPU backend's kernels on the model as imported, before any optimization.
#include <fmt/format.h>

#include <set>

#include "backends/cpu/executor.h"
#include "compare/promote_f64.h"
#include "kiln/compare.h"
#include "onnx/importer.h"
#include "util/no_throw.h"

namespace kiln::compare {

struct Reference::Impl {
  ReferencePrecision precision = ReferencePrecision::kF32;
  std::vector<TensorDesc> inputs;  // as the model declares them (before promotion)
  std::vector<std::string> outputs;
  std::vector<Layer> layers;
  std::shared_ptr<cpu::GraphExecutor> outputs_only, with_layers;
};

Result<Reference> Reference::load(const std::string& onnx_path, ReferencePrecision precision) {
  return no_throw("Reference::load", [&]() -> Result<Reference> {
    KILN_ASSIGN_OR_RETURN(ir::Graph g, onnx::import_model_file(onnx_path));
    auto impl = std::make_shared<Impl>();
    impl->precision = precision;
    for (const auto& name : g.inputs) {
      const ir::ValueInfo* v = g.value(name);
      impl->inputs.push_back({name, v ? v->dtype : DType::kUndefined, v ? v->shape : Shape()});
    }
    impl->outputs = g.outputs;
    auto missing = cpu::missing_kernels(g);
    if (!missing.empty())
      return Status(StatusCode::kUnsupported,
                    fmt::format("the CPU reference has no kernel for: {}; compare against outputs saved elsewhere "
                                "with --reference DIR",
                                fmt::join(missing, ", ")));
    if (precision == ReferencePrecision::kF64) promote_to_f64(g);
    // Every node output is a layer, the model's outputs included, in the (topological) node order.
    std::set<std::string> seen(g.inputs.begin(), g.inputs.end());
    std::set<std::string> outputs(g.outputs.begin(), g.outputs.end());
    ir::Graph all = g;
    for (const auto& n : g.nodes)
      for (const auto& out : n.outputs) {
        if (out.empty() || !seen.insert(out).second) continue;
        impl->layers.push_back({out, n.name, n.op_type, n.inputs});
        if (!outputs.count(out)) all.outputs.push_back(out);
      }
    impl->outputs_only = std::make_shared<cpu::GraphExecutor>(std::make_shared<const ir::Graph>(std::move(g)));
    impl->with_layers = std::make_shared<cpu::GraphExecutor>(std::make_shared<const ir::Graph>(std::move(all)));
    Reference r;
    r.impl_ = std::move(impl);
    return r;
  });
}

Result<std::map<std::string, Tensor>> Reference::run(const std::map<std::string, Tensor>& inputs,
                                                     bool intermediates) const {
  std::map<std::string, Tensor> in;
  for (const auto& d : impl_->inputs) {
    auto it = inputs.find(d.name);
    if (it == inputs.end())
      return Status(StatusCode::kInvalidArgument, fmt::format("the reference needs input '{}'", d.name));
    Tensor t = convert(it->second, d.dtype == DType::kUndefined ? it->second.dtype() : d.dtype);
    if (impl_->precision == ReferencePrecision::kF64 && t.dtype() == DType::kF32) t = convert(t, DType::kF64);
    in[d.name] = std::move(t);
  }
  auto out = (intermediates ? impl_->with_layers : impl_->outputs_only)->run(in);
  if (!out.ok())
    return out.status().with_context(impl_->precision == ReferencePrecision::kF64
                                         ? "the f64 reference (try --reference-precision f32)"
                                         : "the reference");
  return out;
}

const std::vector<TensorDesc>& Reference::inputs() const { return impl_->inputs; }
const std::vector<std::string>& Reference::outputs() const { return impl_->outputs; }
const std::vector<Layer>& Reference::layers() const { return impl_->layers; }
ReferencePrecision Reference::precision() const { return impl_->precision; }

}  // namespace kiln::compare
