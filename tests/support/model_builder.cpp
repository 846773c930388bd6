#include "support/model_builder.h"

#include <fstream>
#include <kiln_onnx/onnx.pb.h>
#include <random>

#include "onnx/tensor_proto.h"

namespace kiln::testing {

namespace {
void set_type(kiln_onnx::ValueInfoProto* v, DType dt, const std::vector<std::string>& dims) {
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(dt));
  auto* shape = tt->mutable_shape();
  for (const auto& d : dims) {
    auto* dp = shape->add_dim();
    if (d == "?") continue;
    if (!d.empty() && std::isdigit(static_cast<unsigned char>(d[0]))) dp->set_dim_value(std::stoll(d));
    else dp->set_dim_param(d);
  }
}
}  // namespace

ModelBuilder::ModelBuilder(int64_t opset) : model_(std::make_unique<kiln_onnx::ModelProto>()) {
  model_->set_ir_version(8);
  auto* op = model_->add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_->mutable_graph()->set_name("test");
}
ModelBuilder::~ModelBuilder() = default;
ModelBuilder::ModelBuilder(const ModelBuilder& other)
    : model_(std::make_unique<kiln_onnx::ModelProto>(*other.model_)) {
  const int n = model_->graph().node_size();
  last_ = n ? model_->mutable_graph()->mutable_node(n - 1) : nullptr;
}
ModelBuilder& ModelBuilder::operator=(const ModelBuilder& other) {
  if (this != &other) *this = ModelBuilder(other);
  return *this;
}
ModelBuilder::ModelBuilder(ModelBuilder&&) noexcept = default;
ModelBuilder& ModelBuilder::operator=(ModelBuilder&&) noexcept = default;

ModelBuilder& ModelBuilder::input(const std::string& name, DType dt, const std::vector<std::string>& dims) {
  auto* v = model_->mutable_graph()->add_input();
  v->set_name(name);
  set_type(v, dt, dims);
  return *this;
}
ModelBuilder& ModelBuilder::output(const std::string& name, DType dt, const std::vector<std::string>& dims) {
  auto* v = model_->mutable_graph()->add_output();
  v->set_name(name);
  set_type(v, dt, dims);
  return *this;
}
ModelBuilder& ModelBuilder::output(const std::string& name) {
  model_->mutable_graph()->add_output()->set_name(name);
  return *this;
}
ModelBuilder& ModelBuilder::initializer(const std::string& name, const Tensor& t) {
  onnx::tensor_to_proto(t, name, model_->mutable_graph()->add_initializer());
  return *this;
}
ModelBuilder& ModelBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                 const std::vector<std::string>& outputs, const std::string& name) {
  last_ = model_->mutable_graph()->add_node();
  last_->set_op_type(op);
  last_->set_name(name.empty() ? op + "_" + std::to_string(model_->graph().node_size()) : name);
  for (const auto& i : inputs) last_->add_input(i);
  for (const auto& o : outputs) last_->add_output(o);
  return *this;
}
ModelBuilder& ModelBuilder::attr(const std::string& key, int64_t v) {
  auto* a = last_->add_attribute();
  a->set_name(key);
  a->set_type(kiln_onnx::AttributeProto::INT);
  a->set_i(v);
  return *this;
}
ModelBuilder& ModelBuilder::attr(const std::string& key, float v) {
  auto* a = last_->add_attribute();
  a->set_name(key);
  a->set_type(kiln_onnx::AttributeProto::FLOAT);
  a->set_f(v);
  return *this;
}
ModelBuilder& ModelBuilder::attr(const std::string& key, const std::string& v) {
  auto* a = last_->add_attribute();
  a->set_name(key);
  a->set_type(kiln_onnx::AttributeProto::STRING);
  a->set_s(v);
  return *this;
}
ModelBuilder& ModelBuilder::attr(const std::string& key, const std::vector<int64_t>& v) {
  auto* a = last_->add_attribute();
  a->set_name(key);
  a->set_type(kiln_onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
  return *this;
}
ModelBuilder& ModelBuilder::attr(const std::string& key, const Tensor& t) {
  auto* a = last_->add_attribute();
  a->set_name(key);
  a->set_type(kiln_onnx::AttributeProto::TENSOR);
  onnx::tensor_to_proto(t, "", a->mutable_t());
  return *this;
}
ModelBuilder& ModelBuilder::domain(const std::string& d) {
  last_->set_domain(d);
  return *this;
}
std::string ModelBuilder::bytes() const { return model_->SerializeAsString(); }
void ModelBuilder::save(const std::string& path) const {
  std::ofstream f(path, std::ios::binary);
  f << bytes();
}

Tensor f32_tensor(std::vector<int64_t> dims, std::vector<float> values) {
  return Tensor::from_vector(DType::kF32, std::move(dims), values);
}
Tensor i64_tensor(std::vector<int64_t> dims, std::vector<int64_t> values) {
  return Tensor::from_vector(DType::kI64, std::move(dims), values);
}
Tensor random_f32(std::vector<int64_t> dims, uint64_t seed) {
  Tensor t(DType::kF32, std::move(dims));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

}  // namespace kiln::testing
