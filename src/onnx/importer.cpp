#include "onnx/importer.h"

#include <filesystem>
#include <functional>
#include <kiln_onnx/onnx.pb.h>
#include <set>

#include "onnx/tensor_proto.h"
#include "ops/op.h"
#include "util/error.h"
#include "util/checked_math.h"
#include "util/file.h"
#include "util/safe_text.h"

namespace kiln::onnx {

namespace {

ir::ValueInfo value_info_from_proto(const kiln_onnx::ValueInfoProto& v) {
  ir::ValueInfo info;
  if (!v.has_type() || !v.type().has_tensor_type()) return info;
  const auto& tt = v.type().tensor_type();
  if (auto dt = dtype_from_onnx(tt.elem_type())) info.dtype = *dt;
  if (tt.has_shape()) {
    std::vector<Dim> dims;
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value() && d.dim_value() >= 0) dims.emplace_back(d.dim_value());
      else if (d.has_dim_param() && !d.dim_param().empty()) dims.push_back(Dim::symbol(d.dim_param()));
      else dims.push_back(Dim::unknown());
    }
    info.shape = Shape(dims);
  }
  return info;
}

struct ImportEnv {
  int64_t opset;
  std::string base_dir;
  std::string_view weights;
  ImportDetails* details;  // filled for the main graph only (null inside bodies)
};

Result<ir::Graph> import_graph(const kiln_onnx::GraphProto& gp, const ImportEnv& env,
                               const std::set<std::string>& outer_scope);

Result<ir::Attribute> import_attribute(const kiln_onnx::AttributeProto& a, const std::string& node_label,
                                       const ImportEnv& env, const std::set<std::string>& scope) {
  using K = ir::Attribute::Kind;
  using AP = kiln_onnx::AttributeProto;
  ir::Attribute out;
  switch (a.type()) {
    case AP::INT: out.kind = K::kInt; out.i = a.i(); break;
    case AP::FLOAT: out.kind = K::kFloat; out.f = a.f(); break;
    case AP::STRING: out.kind = K::kString; out.s = a.s(); break;
    case AP::INTS: out.kind = K::kInts; out.ints.assign(a.ints().begin(), a.ints().end()); break;
    case AP::FLOATS: out.kind = K::kFloats; out.floats.assign(a.floats().begin(), a.floats().end()); break;
    case AP::STRINGS: out.kind = K::kStrings; out.strings.assign(a.strings().begin(), a.strings().end()); break;
    case AP::TENSOR: {
      out.kind = K::kTensor;
      KILN_ASSIGN_OR_RETURN(out.t, tensor_from_proto(a.t(), env.base_dir, node_label + " attribute '" + a.name() + "'",
                                                     env.weights));
      break;
    }
    case AP::GRAPH: {
      out.kind = K::kGraph;
      ImportEnv body_env = env;
      body_env.details = nullptr;
      KILN_ASSIGN_OR_RETURN(ir::Graph g, import_graph(a.g(), body_env, scope));
      out.g = std::make_shared<ir::Graph>(std::move(g));
      break;
    }
    default:
      return unsupported("{}: attribute '{}' has a type kiln does not support ({})", node_label, printable(a.name()),
                         static_cast<int>(a.type()));
  }
  return out;
}

Result<ir::Graph> import_graph(const kiln_onnx::GraphProto& gp, const ImportEnv& env,
                               const std::set<std::string>& outer_scope) {
  ir::Graph g;
  g.name = gp.name();
  g.opset = env.opset;
  if (gp.sparse_initializer_size() > 0)
    return unsupported("graph '{}' has sparse initializers, which kiln does not support", printable(gp.name()));

  for (const auto& init : gp.initializer()) {
    if (init.name().empty()) return invalid_model("an initializer has no name");
    if (g.initializers.count(init.name()))
      return invalid_model("initializer '{}' is defined twice", printable(init.name()));
    KILN_ASSIGN_OR_RETURN(
        Tensor t, tensor_from_proto(init, env.base_dir, "initializer '" + printable(init.name()) + "'", env.weights));
    if (env.details && init.data_location() == kiln_onnx::TensorProto::EXTERNAL) {
      ++env.details->external_initializers;
      env.details->external_bytes += static_cast<int64_t>(t.nbytes());
    }
    g.values[init.name()] = {t.dtype(), Shape::from_dims(t.dims())};
    g.initializers[init.name()] = std::move(t);
  }
  std::set<std::string> defined(outer_scope.begin(), outer_scope.end());
  for (const auto& [n, t] : g.initializers) defined.insert(n);
  for (const auto& in : gp.input()) {
    if (g.initializers.count(in.name())) continue;  // IR < 4 lists initializers as inputs too
    if (in.name().empty()) return invalid_model("a graph input has no name");
    if (!defined.insert(in.name()).second)
      return invalid_model("graph input '{}' is declared twice", printable(in.name()));
    g.inputs.push_back(in.name());
    g.values[in.name()] = value_info_from_proto(in);
    // Every later size is derived from the inputs' dims, so one that cannot exist is refused where it is read.
    const ir::ValueInfo& info = g.values[in.name()];
    std::vector<int64_t> known;
    for (const Dim& d : info.shape.dims())
      if (d.is_static()) known.push_back(d.value());
    if (info.dtype != DType::kUndefined && !checked_nbytes(info.dtype, known))
      return invalid_model("graph input '{}' is declared {}{}, whose size overflows a 64-bit byte count; fix the "
                           "input's dims in the model",
                           printable(in.name()), dtype_name(info.dtype), info.shape.to_string());
  }
  for (const auto& vi : gp.value_info()) {
    auto info = value_info_from_proto(vi);
    if (!g.values.count(vi.name())) g.values[vi.name()] = info;
  }
  std::map<std::string, std::string> producer;  // value -> node label
  std::set<std::string> node_names;
  for (int i = 0; i < gp.node_size(); ++i) {
    const auto& np = gp.node(i);
    ir::Node n;
    n.op_type = np.op_type();
    n.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    n.name = np.name().empty() ? fmt::format("{}_{}", np.op_type(), i) : np.name();
    while (!node_names.insert(n.name).second) n.name += "_";
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (const auto& a : np.attribute()) {
      if (!a.ref_attr_name().empty())
        return unsupported("{}: attribute references (function bodies) are not supported", n.label());
      std::set<std::string> scope = defined;
      for (const auto& [k, v] : producer) scope.insert(k);
      KILN_ASSIGN_OR_RETURN(ir::Attribute attr, import_attribute(a, n.label(), env, scope));
      n.attrs[a.name()] = std::move(attr);
    }
    for (const auto& o : n.outputs) {
      if (o.empty()) continue;
      if (defined.count(o) || producer.count(o))
        return invalid_model("{}: output '{}' is already produced by {}; every value must have one producer", n.label(),
                             printable(o), producer.count(o) ? producer[o] : "a graph input or initializer");
      producer[o] = n.label();
    }
    g.nodes.push_back(std::move(n));
  }
  // Every input must exist somewhere (outer scope counts for subgraphs).
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) {
      if (in.empty() || defined.count(in) || producer.count(in)) continue;
      return invalid_model("{}: input '{}' is not produced by any node, graph input or initializer (missing initializer?)",
                           n.label(), printable(in));
    }
  }
  for (const auto& out : gp.output()) {
    if (!defined.count(out.name()) && !producer.count(out.name()))
      return invalid_model("graph output '{}' is not produced by any node", printable(out.name()));
    g.outputs.push_back(out.name());
    auto info = value_info_from_proto(out);
    auto& slot = g.values[out.name()];
    if (slot.dtype == DType::kUndefined) slot.dtype = info.dtype;
    if (!slot.shape.has_rank()) slot.shape = info.shape;
  }
  KILN_RETURN_IF_ERROR(ir::topological_sort(g));
  return g;
}

}  // namespace

Result<ir::Graph> import_model_bytes(const std::string& bytes, const std::string& base_dir, const std::string& what,
                                     std::string_view weights, ImportDetails* details) {
  if (bytes.empty()) return invalid_model("{} is empty (0 bytes); expected an ONNX model", what);
  kiln_onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    return invalid_model("{} is not an ONNX model: protobuf parsing failed (truncated or not a .onnx file?)", what);
  if (!model.has_graph() || (model.graph().node_size() == 0 && model.graph().output_size() == 0))
    return invalid_model("{} has no graph; is it an ONNX model? (truncated or not a .onnx file?)", what);
  if (model.ir_version() > kMaxIrVersion)
    return unsupported("{} has IR version {}, newer than kiln reads (max {}); re-export with an older exporter",
                       what, model.ir_version(), kMaxIrVersion);
  int64_t opset = -1;
  for (const auto& imp : model.opset_import())
    if (imp.domain().empty() || imp.domain() == "ai.onnx") opset = imp.version();
  if (opset < 0) opset = 1;
  if (opset > kMaxOpset)
    return unsupported("{} uses opset {}, newer than kiln supports ({}..{}); export with opset_version<={}", what,
                       opset, kMinOpset, kMaxOpset, kMaxOpset);

  // Ops outside the default domain, or unknown to kiln, are listed together so one build shows them all.
  std::vector<std::string> unknown;
  std::function<void(const kiln_onnx::GraphProto&)> scan = [&](const kiln_onnx::GraphProto& gp) {
    for (int i = 0; i < gp.node_size(); ++i) {
      const auto& n = gp.node(i);
      std::string name = n.name().empty() ? fmt::format("{}_{}", n.op_type(), i) : n.name();
      const std::string_view domain = n.domain() == "ai.onnx" ? std::string_view() : std::string_view(n.domain());
      const ops::OpDef* def = ops::op_registry().find(n.op_type());
      // kiln's fused ops come back from engine files under their own domain; elsewhere they are unknown.
      if (!def || def->domain != domain)
        unknown.push_back(domain.empty()
                              ? fmt::format("{} (node '{}')", printable(n.op_type()), printable(name))
                              : fmt::format("{}::{} (node '{}')", printable(domain), printable(n.op_type()),
                                            printable(name)));
      for (const auto& a : n.attribute())
        if (a.has_g()) scan(a.g());
    }
  };
  scan(model.graph());
  if (!unknown.empty()) {
    if (unknown.size() > 20) unknown.resize(20), unknown.push_back("…");
    return unsupported("{} uses ops kiln does not support: {}. Replace them with standard ONNX ops kiln runs "
                       "(custom-domain ops, sequence and optional types are not supported)",
                       what, fmt::join(unknown, ", "));
  }
  KILN_ASSIGN_OR_RETURN(ir::Graph g, import_graph(model.graph(), ImportEnv{opset, base_dir, weights, details}, {}));
  g.ir_version = model.ir_version();
  for (const auto& kv : model.metadata_props()) g.metadata[kv.key()] = kv.value();
  if (!model.producer_name().empty()) g.metadata["producer"] = model.producer_name() + " " + model.producer_version();
  return g;
}

Result<ir::Graph> import_model_file(const std::string& path, ImportDetails* details) {
  KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  std::string dir = std::filesystem::path(path).parent_path().string();
  return import_model_bytes(bytes, dir.empty() ? "." : dir, "model '" + path + "'", {}, details);
}

}  // namespace kiln::onnx
