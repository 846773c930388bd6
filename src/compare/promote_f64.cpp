#include "compare/promote_f64.h"

#include "backends/cpu/dispatch.h"

namespace kiln::compare {

namespace {

constexpr int64_t kOnnxFloat = static_cast<int64_t>(DType::kF32);
constexpr int64_t kOnnxDouble = static_cast<int64_t>(DType::kF64);

Tensor widen(const Tensor& t) { return t.dtype() == DType::kF32 ? cpu::convert_tensor(t, DType::kF64) : t; }

void promote_node(ir::Node& n) {
  // Attributes that name a float output dtype.
  for (const char* key : {"to", "dtype"}) {
    auto it = n.attrs.find(key);
    if (it != n.attrs.end() && it->second.kind == ir::Attribute::Kind::kInt && it->second.i == kOnnxFloat &&
        (n.op_type == "Cast" || n.op_type == "EyeLike" || n.op_type.rfind("Random", 0) == 0 ||
         n.op_type == "Bernoulli"))
      it->second.i = kOnnxDouble;
  }
  // Random* ops default to float when no dtype is given.
  if (n.op_type.rfind("Random", 0) == 0 && n.op_type.find("Like") == std::string::npos && !n.has_attr("dtype"))
    n.attrs["dtype"] = ir::Attribute::of_int(kOnnxDouble);
  if (n.op_type == "Constant") {
    if (auto it = n.attrs.find("value_float"); it != n.attrs.end()) {
      Tensor t(DType::kF64, {});
      t.data<double>()[0] = it->second.f;
      n.attrs.erase(it);
      n.attrs["value"] = ir::Attribute::of_tensor(t);
    } else if (auto it2 = n.attrs.find("value_floats"); it2 != n.attrs.end()) {
      const auto& f = it2->second.floats;
      Tensor t(DType::kF64, {static_cast<int64_t>(f.size())});
      for (size_t i = 0; i < f.size(); ++i) t.data<double>()[i] = f[i];
      n.attrs.erase(it2);
      n.attrs["value"] = ir::Attribute::of_tensor(t);
    }
  }
  for (auto& [key, a] : n.attrs) {
    if (a.kind == ir::Attribute::Kind::kTensor && (n.op_type == "Constant" || n.op_type == "ConstantOfShape"))
      a.t = widen(a.t);
    if (a.g) promote_to_f64(*a.g);
  }
}

}  // namespace

void promote_to_f64(ir::Graph& g) {
  for (auto& [name, t] : g.initializers) t = widen(t);
  for (auto& [name, v] : g.values)
    if (v.dtype == DType::kF32) v.dtype = DType::kF64;
  for (auto& n : g.nodes) promote_node(n);
}

}  // namespace kiln::compare
