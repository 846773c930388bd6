// Builds small ONNX models in tests without Python: inputs, initializers, nodes, outputs.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kiln/tensor.h"

namespace kiln_onnx {
class ModelProto;
class NodeProto;
}

namespace kiln::testing {

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 17);
  ~ModelBuilder();
  ModelBuilder(const ModelBuilder& other);
  ModelBuilder& operator=(const ModelBuilder& other);
  ModelBuilder(ModelBuilder&&) noexcept;
  ModelBuilder& operator=(ModelBuilder&&) noexcept;
  // dims: "3", "batch" (symbolic) or "?" (unknown).
  ModelBuilder& input(const std::string& name, DType dt, const std::vector<std::string>& dims);
  ModelBuilder& output(const std::string& name, DType dt, const std::vector<std::string>& dims);
  ModelBuilder& output(const std::string& name);  // no type info
  ModelBuilder& initializer(const std::string& name, const Tensor& t);
  ModelBuilder& node(const std::string& op, const std::vector<std::string>& inputs,
                     const std::vector<std::string>& outputs, const std::string& name = "");
  // Attributes of the last node added.
  ModelBuilder& attr(const std::string& key, int64_t v);
  ModelBuilder& attr(const std::string& key, float v);
  ModelBuilder& attr(const std::string& key, const std::string& v);
  ModelBuilder& attr(const std::string& key, const std::vector<int64_t>& v);
  ModelBuilder& attr(const std::string& key, const Tensor& t);
  ModelBuilder& domain(const std::string& d);  // of the last node
  std::string bytes() const;
  void save(const std::string& path) const;
  kiln_onnx::ModelProto& proto() { return *model_; }

 private:
  std::unique_ptr<kiln_onnx::ModelProto> model_;
  kiln_onnx::NodeProto* last_ = nullptr;
};

Tensor f32_tensor(std::vector<int64_t> dims, std::vector<float> values);
Tensor i64_tensor(std::vector<int64_t> dims, std::vector<int64_t> values);
// Deterministic pseudo-random floats in [-1, 1).
Tensor random_f32(std::vector<int64_t> dims, uint64_t seed);

}  // namespace kiln::testing
