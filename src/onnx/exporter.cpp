#include "onnx/exporter.h"

#include <kiln_onnx/onnx.pb.h>

#include <filesystem>
#include <functional>
#include <optional>

#include "onnx/tensor_proto.h"
#include "ops/op.h"
#include "util/content_hash.h"
#include "util/error.h"
#include "util/file.h"

namespace kiln::onnx {

namespace {

// Where an initializer's bytes go: the engine's weights blob, inline, or an external data file.
using TensorSink = std::function<void(const Tensor&, const std::string&, kiln_onnx::TensorProto*)>;

void value_info_to_proto(const std::string& name, const ir::ValueInfo& v, kiln_onnx::ValueInfoProto* p) {
  p->set_name(name);
  auto* tt = p->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(v.dtype));
  if (!v.shape.has_rank()) return;
  auto* shape = tt->mutable_shape();
  for (const auto& d : v.shape.dims()) {
    auto* dp = shape->add_dim();
    if (d.is_static()) dp->set_dim_value(d.value());
    else if (d.is_symbolic()) dp->set_dim_param(d.symbol_name());
  }
}

// Appends t to blob (64-byte aligned), or finds its bytes there through `shared`, and points p at them under
// `location`.
void external_tensor(const Tensor& t, const std::string& name, const std::string& location, std::string* blob,
                     kiln_onnx::TensorProto* p, WeightIndex* shared = nullptr) {
  p->set_name(name);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.dims()) p->add_dims(d);
  const std::string_view bytes(static_cast<const char*>(t.raw()), t.nbytes());
  const uint64_t hash = shared ? fnv1a64x4(bytes) : 0;
  std::optional<size_t> found;
  if (shared) {
    auto [first, last] = shared->spans.equal_range(hash);
    for (auto it = first; it != last; ++it)
      if (it->second.second == bytes.size() && std::string_view(*blob).substr(it->second.first, bytes.size()) == bytes) {
        found = it->second.first;
        break;
      }
  }
  if (!found) {
    blob->resize((blob->size() + 63) / 64 * 64, '\0');
    found = blob->size();
    blob->append(bytes);
    if (shared) shared->spans.emplace(hash, std::make_pair(*found, bytes.size()));
  }
  const size_t offset = *found;
  p->set_data_location(kiln_onnx::TensorProto::EXTERNAL);
  auto add = [&](const char* k, const std::string& v) {
    auto* e = p->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add("location", location);
  add("offset", std::to_string(offset));
  add("length", std::to_string(t.nbytes()));
}

// Initializers go to `initializers`; node attribute tensors (Constant values) to `attributes`.
void export_graph(const ir::Graph& g, const TensorSink& initializers, const TensorSink& attributes,
                  kiln_onnx::GraphProto* gp) {
  gp->set_name(g.name);
  for (const auto& [name, t] : g.initializers) initializers(t, name, gp->add_initializer());
  for (const auto& name : g.inputs) value_info_to_proto(name, g.values.count(name) ? g.values.at(name) : ir::ValueInfo{}, gp->add_input());
  for (const auto& name : g.outputs) value_info_to_proto(name, g.values.count(name) ? g.values.at(name) : ir::ValueInfo{}, gp->add_output());
  for (const auto& [name, v] : g.values)
    if (!g.initializers.count(name)) value_info_to_proto(name, v, gp->add_value_info());
  for (const auto& n : g.nodes) {
    auto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(n.op_type);
    np->set_domain(n.domain);
    for (const auto& in : n.inputs) np->add_input(in);
    for (const auto& out : n.outputs) np->add_output(out);
    for (const auto& [key, a] : n.attrs) {
      auto* ap = np->add_attribute();
      ap->set_name(key);
      using K = ir::Attribute::Kind;
      using AP = kiln_onnx::AttributeProto;
      switch (a.kind) {
        case K::kInt: ap->set_type(AP::INT); ap->set_i(a.i); break;
        case K::kFloat: ap->set_type(AP::FLOAT); ap->set_f(a.f); break;
        case K::kString: ap->set_type(AP::STRING); ap->set_s(a.s); break;
        case K::kInts: ap->set_type(AP::INTS); for (auto v : a.ints) ap->add_ints(v); break;
        case K::kFloats: ap->set_type(AP::FLOATS); for (auto v : a.floats) ap->add_floats(v); break;
        case K::kStrings: ap->set_type(AP::STRINGS); for (const auto& v : a.strings) ap->add_strings(v); break;
        case K::kTensor: ap->set_type(AP::TENSOR); attributes(a.t, "", ap->mutable_t()); break;
        case K::kGraph: ap->set_type(AP::GRAPH); export_graph(*a.g, initializers, attributes, ap->mutable_g()); break;
        default: break;
      }
    }
  }
}

bool uses_kiln_domain(const ir::Graph& g) {
  for (const auto& n : g.nodes) {
    if (n.domain == ops::kKilnDomain) return true;
    for (const auto& [k, a] : n.attrs)
      if (a.g && uses_kiln_domain(*a.g)) return true;
  }
  return false;
}

void model_header(const ir::Graph& g, kiln_onnx::ModelProto& m) {
  m.set_ir_version(g.ir_version ? g.ir_version : 8);
  m.set_producer_name("kiln");
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(g.opset);
  if (uses_kiln_domain(g)) {
    auto* k = m.add_opset_import();
    k->set_domain(std::string(ops::kKilnDomain));
    k->set_version(1);
  }
  for (const auto& [k, v] : g.metadata) {
    auto* kv = m.add_metadata_props();
    kv->set_key(k);
    kv->set_value(v);
  }
}

int64_t initializer_bytes(const ir::Graph& g) {
  int64_t total = 0;
  for (const auto& [name, t] : g.initializers) total += static_cast<int64_t>(t.nbytes());
  for (const auto& n : g.nodes)
    for (const auto& [k, a] : n.attrs) {
      if (a.kind == ir::Attribute::Kind::kTensor) total += static_cast<int64_t>(a.t.nbytes());
      if (a.g) total += initializer_bytes(*a.g);
    }
  return total;
}

}  // namespace

std::string export_model(const ir::Graph& g, std::string* weights, WeightIndex* shared) {
  kiln_onnx::ModelProto m;
  model_header(g, m);
  const TensorSink to_weights = [&](const Tensor& t, const std::string& name, kiln_onnx::TensorProto* p) {
    external_tensor(t, name, "@weights", weights, p, shared);
  };
  export_graph(g, to_weights, to_weights, m.mutable_graph());
  std::string out;
  m.SerializeToString(&out);
  return out;
}

Result<std::string> export_model_inline(const ir::Graph& g) {
  if (initializer_bytes(g) > kMaxInlineModelBytes)
    return invalid_argument("graph '{}' holds {} bytes of weights, more than one ONNX file can hold inline (1900 MiB); "
                            "write it with external data",
                            g.name, initializer_bytes(g));
  kiln_onnx::ModelProto m;
  model_header(g, m);
  const TensorSink inline_tensor = [](const Tensor& t, const std::string& name, kiln_onnx::TensorProto* p) {
    tensor_to_proto(t, name, p);
  };
  export_graph(g, inline_tensor, inline_tensor, m.mutable_graph());
  std::string out;
  if (!m.SerializeToString(&out)) return internal_error("serializing graph '{}' as an ONNX model failed", g.name);
  return out;
}

Result<WrittenModel> write_model_file(const ir::Graph& g, const std::string& path, const WriteOptions& options) {
  const int64_t weight_bytes = initializer_bytes(g);
  const bool external = options.external_data == ExternalData::kAlways ||
                        (options.external_data == ExternalData::kAuto && weight_bytes > kMaxInlineModelBytes);
  if (!external && weight_bytes > kMaxInlineModelBytes)
    return invalid_argument("the model holds {} bytes of weights, more than one ONNX file can hold inline (1900 MiB); "
                            "write it with external data",
                            weight_bytes);
  WrittenModel written;
  written.model_path = path;
  std::string blob;
  kiln_onnx::ModelProto m;
  model_header(g, m);
  const std::string location = std::filesystem::path(path).filename().string() + ".data";
  const TensorSink inline_tensor = [](const Tensor& t, const std::string& name, kiln_onnx::TensorProto* p) {
    tensor_to_proto(t, name, p);
  };
  // Small tensors stay inline even with external data: shape constants are read at build time, and a
  // separate file read for each of them would only cost.
  const TensorSink maybe_external = [&](const Tensor& t, const std::string& name, kiln_onnx::TensorProto* p) {
    if (static_cast<int64_t>(t.nbytes()) < options.external_min_bytes) return tensor_to_proto(t, name, p);
    external_tensor(t, name, location, &blob, p);
    ++written.external_tensors;
  };
  export_graph(g, external ? maybe_external : inline_tensor, inline_tensor, m.mutable_graph());
  std::string bytes;
  if (!m.SerializeToString(&bytes)) return internal_error("serializing the model for '{}' failed", path);
  const std::filesystem::path data_path = std::filesystem::path(path).parent_path() / location;
  if (written.external_tensors > 0) {
    KILN_RETURN_IF_ERROR(write_file_atomic(data_path.string(), blob));
    written.data_path = data_path.string();
    written.data_bytes = static_cast<int64_t>(blob.size());
  } else {
    // A stale data file from an earlier write would sit beside the model and mislead.
    std::error_code ec;
    std::filesystem::remove(data_path, ec);
  }
  KILN_RETURN_IF_ERROR(write_file_atomic(path, bytes));
  written.model_bytes = static_cast<int64_t>(bytes.size());
  return written;
}

}  // namespace kiln::onnx
