#include "onnx/exporter.h"

#include <kiln_onnx/onnx.pb.h>

#include "onnx/tensor_proto.h"
#include "ops/op.h"

namespace kiln::onnx {

namespace {

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

void external_tensor(const Tensor& t, const std::string& name, std::string* weights, kiln_onnx::TensorProto* p) {
  p->set_name(name);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.dims()) p->add_dims(d);
  weights->resize((weights->size() + 63) / 64 * 64, '\0');
  const size_t offset = weights->size();
  weights->append(static_cast<const char*>(t.raw()), t.nbytes());
  p->set_data_location(kiln_onnx::TensorProto::EXTERNAL);
  auto add = [&](const char* k, const std::string& v) {
    auto* e = p->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add("location", "@weights");
  add("offset", std::to_string(offset));
  add("length", std::to_string(t.nbytes()));
}

void export_graph(const ir::Graph& g, std::string* weights, kiln_onnx::GraphProto* gp) {
  gp->set_name(g.name);
  for (const auto& [name, t] : g.initializers) external_tensor(t, name, weights, gp->add_initializer());
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
        case K::kTensor: ap->set_type(AP::TENSOR); external_tensor(a.t, "", weights, ap->mutable_t()); break;
        case K::kGraph: ap->set_type(AP::GRAPH); export_graph(*a.g, weights, ap->mutable_g()); break;
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

}  // namespace

std::string export_model(const ir::Graph& g, std::string* weights) {
  kiln_onnx::ModelProto m;
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
  export_graph(g, weights, m.mutable_graph());
  std::string out;
  m.SerializeToString(&out);
  return out;
}

}  // namespace kiln::onnx
