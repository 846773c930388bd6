// kiln extract's library side: cut and write a part (builder/cut_subgraph.h does the cut), check it against the model.
#include "kiln/extract.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "kiln/builder.h"
#include "kiln/context.h"
#include "kiln/random_tensor.h"
#include "ir/node_reads.h"
#include "onnx/exporter.h"
#include "builder/cut_subgraph.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#include "util/error.h"
#include "util/no_throw.h"
#include "util/safe_text.h"

namespace kiln {

namespace {

std::vector<TensorDesc> descs(const ir::Graph& g, const std::vector<std::string>& names) {
  std::vector<TensorDesc> out;
  for (const auto& n : names) {
    const ir::ValueInfo* v = g.value(n);
    out.push_back({n, v ? v->dtype : DType::kUndefined, v ? v->shape : Shape()});
  }
  return out;
}


Result<std::map<std::string, std::vector<int64_t>>> input_dims(const ir::Graph& g, const std::string& model_path,
                                                               const ExtractCheckConfig& config) {
  for (const auto& [name, d] : config.dims)
    if (std::find(g.inputs.begin(), g.inputs.end(), name) == g.inputs.end())
      return invalid_argument("--shapes names '{}', which is not an input of {} (its inputs: {}); --shapes gives the "
                              "whole model's input dims, the part's inputs come from running it",
                              printable(name), model_path, fmt::join(g.inputs, ", "));
  std::map<std::string, std::vector<int64_t>> dims;
  for (const auto& name : g.inputs) {
    const ir::ValueInfo* v = g.value(name);
    const Shape shape = v ? v->shape : Shape();
    if (auto it = config.dims.find(name); it != config.dims.end()) {
      if (shape.has_rank() && shape.rank() != it->second.size())
        return invalid_argument("--shapes {}: the model declares {} (rank {}), but {} dims were given",
                                printable(name), shape.to_string(), shape.rank(), it->second.size());
      for (size_t i = 0; shape.has_rank() && i < shape.rank(); ++i)
        if (shape[i].is_static() && shape[i].value() != it->second[i])
          return invalid_argument("--shapes {}: dim {} is fixed at {} in the model, not {}", printable(name), i,
                                  shape[i].value(), it->second[i]);
      dims[name] = it->second;
      continue;
    }
    if (!shape.has_rank())
      return invalid_argument("model input '{}' has unknown rank; give its dims with --shapes {}:DIMS",
                              printable(name), printable(name));
    std::vector<int64_t> d;
    for (const Dim& dim : shape.dims()) d.push_back(dim.is_static() ? dim.value() : 1);
    dims[name] = d;
  }
  return dims;
}

Result<Engine> build_cpu(const ir::Graph& g, const std::string& what) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  if (auto bytes = onnx::export_model_inline(g); bytes.ok()) {
    auto e = Builder::build_from_bytes(*bytes, cfg);
    if (!e.ok()) return e.status().with_context("building " + what + " on the CPU backend");
    return e;
  }
  // Too large for one ONNX message: through a temporary folder with external data.
  std::error_code ec;
  const auto dir = std::filesystem::temp_directory_path(ec) /
                   fmt::format("kiln_extract_check_{}", std::random_device{}());
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error(StatusCode::kIoError, "cannot create a temporary folder for {}: {}", what, ec.message());
  const std::string path = (dir / "model.onnx").string();
  onnx::WriteOptions w;
  w.external_data = onnx::ExternalData::kAlways;
  auto written = onnx::write_model_file(g, path, w);
  Result<Engine> e = written.ok() ? Builder::build_from_file(path, cfg) : Result<Engine>(written.status());
  std::filesystem::remove_all(dir, ec);
  if (!e.ok()) return e.status().with_context("building " + what + " on the CPU backend");
  return e;
}

Result<std::map<std::string, Tensor>> run(const Engine& e, const std::map<std::string, Tensor>& inputs,
                                          const std::string& what) {
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, e.create_context());
  auto out = ctx.infer(inputs);
  if (!out.ok()) return out.status().with_context("running " + what);
  return out;
}

ExtractCheckValue compare(const std::string& name, const Tensor& part, const Tensor& whole,
                          const ExtractCheckConfig& config) {
  ExtractCheckValue v;
  v.name = name;
  v.dims = part.dims();
  if (part.dims() != whole.dims()) {
    v.shape_mismatch = true;
    v.mismatches = std::max(part.numel(), whole.numel());
    v.max_abs_error = INFINITY;
    return v;
  }
  for (int64_t i = 0; i < part.numel(); ++i) {
    const double a = part.get_as_double(i), b = whole.get_as_double(i);
    double err = std::fabs(a - b);
    bool ok = err <= config.atol + config.rtol * std::fabs(b);
    if (std::isnan(a) || std::isnan(b)) {
      ok = std::isnan(a) && std::isnan(b);
      err = ok ? 0.0 : INFINITY;
    } else if (std::isinf(a) || std::isinf(b)) {
      ok = a == b;
      err = ok ? 0.0 : INFINITY;
    }
    if (std::isfinite(b)) v.max_abs_reference = std::max(v.max_abs_reference, std::fabs(b));
    if (!ok) ++v.mismatches;
    if (v.worst_index < 0 || err > v.max_abs_error) {
      v.max_abs_error = err;
      v.worst_index = i;
    }
  }
  return v;
}

}  // namespace

Result<ExtractReport> extract_model(const std::string& model_path, const std::string& part_path,
                                    const ExtractConfig& config) {
  return no_throw("extract_model", [&]() -> Result<ExtractReport> {
    onnx::ImportDetails details;
    KILN_ASSIGN_OR_RETURN(ir::Graph g, onnx::import_model_file(model_path, &details));
    ExtractReport r;
    r.model_nodes = g.nodes.size();
    r.source_external_data = details.external_initializers > 0;
    CutReport cut;
    KILN_ASSIGN_OR_RETURN(ir::Graph part, cut_subgraph(std::move(g), config.inputs, config.outputs, &cut));
    if (!cut.unused_inputs.empty() && config.strict_inputs)
      return invalid_argument("--inputs {}: no node needed for the --outputs reads {}; drop {} from --inputs",
                              fmt::join(cut.unused_inputs, ", "), cut.unused_inputs.size() == 1 ? "it" : "them",
                              cut.unused_inputs.size() == 1 ? "it" : "them");
    for (const auto& in : cut.unused_inputs)
      r.warnings.push_back(fmt::format("--inputs '{}': no node needed for the --outputs reads it; the part keeps it "
                                       "as an input that nothing reads (drop it from --inputs)",
                                       printable(in)));
    if (!cut.inference_note.empty())
      r.warnings.push_back("shape inference over the model failed (" + cut.inference_note +
                           "); the part declares the dtypes and shapes the model declares");
    onnx::WriteOptions w;
    switch (config.external_data) {
      case ExternalDataChoice::kAuto:
        w.external_data = r.source_external_data ? onnx::ExternalData::kAlways : onnx::ExternalData::kAuto;
        break;
      case ExternalDataChoice::kAlways: w.external_data = onnx::ExternalData::kAlways; break;
      case ExternalDataChoice::kNever: w.external_data = onnx::ExternalData::kNever; break;
    }
    KILN_ASSIGN_OR_RETURN(onnx::WrittenModel written, onnx::write_model_file(part, part_path, w));
    r.inputs = descs(part, part.inputs);
    r.outputs = descs(part, part.outputs);
    for (const auto& n : part.nodes) r.nodes.push_back(n.name);
    r.initializers = part.initializers.size();
    for (const auto& [name, t] : part.initializers) r.initializer_bytes += static_cast<int64_t>(t.nbytes());
    r.part_path = written.model_path;
    r.data_path = written.data_path;
    r.external_tensors = written.external_tensors;
    return r;
  });
}

Result<ExtractCheckReport> check_extracted(const std::string& model_path, const std::string& part_path,
                                           const ExtractCheckConfig& config) {
  return no_throw("check_extracted", [&]() -> Result<ExtractCheckReport> {
    KILN_ASSIGN_OR_RETURN(ir::Graph whole, onnx::import_model_file(model_path));
    KILN_ASSIGN_OR_RETURN(ir::Graph part, onnx::import_model_file(part_path));
    ExtractCheckReport r;
    KILN_ASSIGN_OR_RETURN(r.model_input_dims, input_dims(whole, model_path, config));
    std::mt19937_64 rng(config.seed);
    std::map<std::string, Tensor> whole_inputs;
    for (const auto& name : whole.inputs) {
      const ir::ValueInfo* v = whole.value(name);
      KILN_ASSIGN_OR_RETURN(whole_inputs[name],
                            random_tensor(v ? v->dtype : DType::kUndefined, r.model_input_dims[name], rng,
                                          "model input '" + printable(name) + "'"));
    }
    // The part's inputs and outputs that the model computes become model outputs, so one run yields them all.
    std::vector<std::string> exposed;
    for (const auto* names : {&part.inputs, &part.outputs})
      for (const auto& n : *names)
        if (!whole_inputs.count(n) && !whole.is_constant(n)) exposed.push_back(n);
    for (const auto& n : exposed) {
      ir::ValueInfo& slot = whole.values[n];
      if (slot.dtype == DType::kUndefined && part.value(n)) slot.dtype = part.value(n)->dtype;
    }
    KILN_RETURN_IF_ERROR(expose_values(whole, exposed));
    KILN_ASSIGN_OR_RETURN(Engine whole_engine, build_cpu(whole, "the model " + model_path));
    KILN_ASSIGN_OR_RETURN(auto whole_out, run(whole_engine, whole_inputs, "the model " + model_path));
    auto model_tensor = [&](const std::string& n) -> Result<Tensor> {
      if (auto it = whole_inputs.find(n); it != whole_inputs.end()) return it->second;
      if (auto it = whole.initializers.find(n); it != whole.initializers.end()) return it->second;
      if (auto it = whole_out.find(n); it != whole_out.end()) return it->second;
      return not_found("the model {} has no value '{}' that the part {} names; was the part extracted from it?",
                       model_path, printable(n), part_path);
    };
    std::map<std::string, Tensor> part_inputs;
    for (const auto& n : part.inputs) {
      KILN_ASSIGN_OR_RETURN(part_inputs[n], model_tensor(n));
    }
    KILN_ASSIGN_OR_RETURN(Engine part_engine, build_cpu(part, "the part " + part_path));
    KILN_ASSIGN_OR_RETURN(auto part_out, run(part_engine, part_inputs, "the part " + part_path));
    for (const auto& n : part.outputs) {
      KILN_ASSIGN_OR_RETURN(Tensor ref, model_tensor(n));
      auto it = part_out.find(n);
      if (it == part_out.end()) return internal_error("the part's engine returned no output '{}'", printable(n));
      r.outputs.push_back(compare(n, it->second, ref, config));
      r.match = r.match && r.outputs.back().mismatches == 0;
    }
    return r;
  });
}

Result<std::vector<ModelValue>> list_model_values(const std::string& model_path) {
  return no_throw("list_model_values", [&]() -> Result<std::vector<ModelValue>> {
    KILN_ASSIGN_OR_RETURN(ir::Graph g, onnx::import_model_file(model_path));
    ir::Graph inferred = g;
    if (passes::infer_shapes(inferred).ok()) g.values = std::move(inferred.values);
    std::map<std::string, std::vector<std::string>> readers;
    for (const auto& n : g.nodes) {
      std::set<std::string> reads(n.inputs.begin(), n.inputs.end());
      for (const auto& v : ir::outer_scope_reads(n)) reads.insert(v);
      for (const auto& v : reads)
        if (!v.empty()) readers[v].push_back(n.name);
    }
    std::vector<ModelValue> out;
    auto add = [&](const std::string& name, const ir::Node* producer) {
      ModelValue m;
      m.name = name;
      if (const ir::ValueInfo* v = g.value(name)) m.dtype = v->dtype, m.shape = v->shape;
      if (producer) m.producer = producer->name, m.op = producer->op_type;
      m.readers = readers[name];
      out.push_back(std::move(m));
    };
    for (const auto& in : g.inputs) add(in, nullptr);
    for (const auto& n : g.nodes)
      for (const auto& o : n.outputs)
        if (!o.empty()) add(o, &n);
    return out;
  });
}

}  // namespace kiln
