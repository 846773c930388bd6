#include "fuzz/model_mutator.h"

#include <fmt/format.h>
#include <kiln_onnx/onnx.pb.h>

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "support/engine_bytes.h"

namespace kiln::fuzz {

namespace {

using Rng = std::mt19937_64;

size_t pick(Rng& rng, size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); }

template <typename T>
T pick_of(Rng& rng, const std::vector<T>& v) {
  return v[pick(rng, v.size())];
}

// Values that sit on the edges shape and index code has to handle.
int64_t edge_int(Rng& rng) {
  return pick_of<int64_t>(rng, {0, 1, 2, 3, 7, -1, -2, -7, 127, 1 << 20, int64_t{1} << 40,
                                std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()});
}

float edge_float(Rng& rng) {
  return pick_of<float>(rng, {0.f, -1.f, 1e-30f, 1e30f, std::numeric_limits<float>::infinity(),
                              std::numeric_limits<float>::quiet_NaN(), -0.5f});
}

// Every tensor name the graph defines: inputs, initializers, node outputs.
std::vector<std::string> defined_names(const kiln_onnx::GraphProto& g) {
  std::vector<std::string> names;
  for (const auto& v : g.input()) names.push_back(v.name());
  for (const auto& t : g.initializer()) names.push_back(t.name());
  for (const auto& n : g.node())
    for (const auto& o : n.output()) names.push_back(o);
  return names;
}

std::string node_label(const kiln_onnx::GraphProto& g, int i) {
  return fmt::format("node {} ({})", i, g.node(i).op_type());
}

std::string mutate_dims(google::protobuf::RepeatedField<int64_t>* dims, Rng& rng) {
  const int kind = static_cast<int>(pick(rng, 3));
  if (kind == 0 || dims->empty()) {
    dims->Add(edge_int(rng));
    return "a dim appended";
  }
  const int at = static_cast<int>(pick(rng, dims->size()));
  if (kind == 1) {
    dims->Set(at, edge_int(rng));
    return fmt::format("dim {} = {}", at, dims->Get(at));
  }
  dims->erase(dims->begin() + at);
  return fmt::format("dim {} removed", at);
}

std::string mutate_value_info(kiln_onnx::ValueInfoProto& v, Rng& rng) {
  auto* tt = v.mutable_type()->mutable_tensor_type();
  switch (pick(rng, 4)) {
    case 0: {
      tt->set_elem_type(static_cast<int32_t>(pick_of<int>(rng, {0, 1, 2, 6, 7, 8, 9, 10, 11, 16, 17, 23, 99})));
      return fmt::format("elem_type = {}", tt->elem_type());
    }
    case 1: {
      auto* shape = tt->mutable_shape();
      if (shape->dim_size() == 0) {
        shape->add_dim()->set_dim_value(edge_int(rng));
        return "a dim appended";
      }
      const int at = static_cast<int>(pick(rng, shape->dim_size()));
      const int64_t v2 = edge_int(rng);
      shape->mutable_dim(at)->set_dim_value(v2);
      return fmt::format("dim {} = {}", at, v2);
    }
    case 2: {
      auto* shape = tt->mutable_shape();
      if (shape->dim_size() == 0) return "nothing (no dims)";
      const int at = static_cast<int>(pick(rng, shape->dim_size()));
      shape->mutable_dim(at)->set_dim_param(pick_of<std::string>(rng, {"batch", "n", "?"}));
      return fmt::format("dim {} symbolic", at);
    }
    default:
      tt->clear_shape();
      return "shape removed";
  }
}

std::string mutate_tensor(kiln_onnx::TensorProto& t, Rng& rng) {
  switch (pick(rng, 4)) {
    case 0:
      return mutate_dims(t.mutable_dims(), rng);
    case 1:
      t.set_data_type(static_cast<int32_t>(pick_of<int>(rng, {0, 1, 2, 6, 7, 8, 9, 10, 11, 16, 99})));
      return fmt::format("data_type = {}", t.data_type());
    case 2: {
      // A payload of the wrong length: one element short, or a byte short.
      if (!t.raw_data().empty()) {
        std::string* raw = t.mutable_raw_data();
        raw->resize(raw->size() - 1 - pick(rng, raw->size()));
        return fmt::format("raw_data cut to {} bytes", raw->size());
      }
      if (t.float_data_size() > 0) {
        t.mutable_float_data()->RemoveLast();
        return "float_data one short";
      }
      if (t.int64_data_size() > 0) {
        t.mutable_int64_data()->RemoveLast();
        return "int64_data one short";
      }
      if (t.int32_data_size() > 0) {
        t.mutable_int32_data()->RemoveLast();
        return "int32_data one short";
      }
      t.add_float_data(1.f);
      return "a float_data element added";
    }
    default: {
      // External data pointing nowhere, or past the end of a real file.
      auto* e = t.add_external_data();
      e->set_key("location");
      e->set_value(pick_of<std::string>(rng, {"missing.bin", "../../etc/passwd", "", "/dev/zero"}));
      t.set_data_location(kiln_onnx::TensorProto::EXTERNAL);
      return fmt::format("external data at '{}'", e->value());
    }
  }
}

std::string mutate_attribute(kiln_onnx::AttributeProto& a, Rng& rng) {
  switch (a.type()) {
    case kiln_onnx::AttributeProto::INT:
      a.set_i(edge_int(rng));
      return fmt::format("{} = {}", a.name(), a.i());
    case kiln_onnx::AttributeProto::FLOAT:
      a.set_f(edge_float(rng));
      return fmt::format("{} = {}", a.name(), a.f());
    case kiln_onnx::AttributeProto::STRING:
      a.set_s(pick_of<std::string>(rng, {"", "bogus", "NOTSET", "constant"}));
      return fmt::format("{} = '{}'", a.name(), a.s());
    case kiln_onnx::AttributeProto::INTS:
      return a.name() + ": " + mutate_dims(a.mutable_ints(), rng);
    case kiln_onnx::AttributeProto::FLOATS:
      if (a.floats_size() > 0 && pick(rng, 2) == 0) {
        a.mutable_floats()->RemoveLast();
        return a.name() + ": one float removed";
      }
      a.add_floats(edge_float(rng));
      return a.name() + ": a float appended";
    case kiln_onnx::AttributeProto::TENSOR:
      return a.name() + ": " + mutate_tensor(*a.mutable_t(), rng);
    default:
      // A type that does not match the attribute's name (an INT where the op reads a FLOAT, …).
      a.set_type(kiln_onnx::AttributeProto::INT);
      a.set_i(edge_int(rng));
      return fmt::format("{} retyped INT = {}", a.name(), a.i());
  }
}

std::string mutate_node(kiln_onnx::GraphProto& g, int i, Rng& rng) {
  kiln_onnx::NodeProto& n = *g.mutable_node(i);
  const std::string label = node_label(g, i);
  switch (pick(rng, 8)) {
    case 0: {
      if (n.attribute_size() == 0) break;
      return label + ": attribute " + mutate_attribute(*n.mutable_attribute(pick(rng, n.attribute_size())), rng);
    }
    case 1: {
      // An attribute the op reads, of an unexpected value or type.
      auto* a = n.add_attribute();
      a->set_name(pick_of<std::string>(rng, {"axis", "axes", "perm", "group", "kernel_shape", "pads", "strides",
                                             "keepdims", "to", "mode", "epsilon", "alpha", "transB", "value"}));
      a->set_type(kiln_onnx::AttributeProto::INT);
      a->set_i(edge_int(rng));
      return fmt::format("{}: attribute {} added = {}", label, a->name(), a->i());
    }
    case 2: {
      if (n.input_size() == 0) break;
      const int at = static_cast<int>(pick(rng, n.input_size()));
      const auto names = defined_names(g);
      // Loop without M and cond is legal and, with a body that keeps going, meant to run forever: not a hang
      // worth finding.
      const bool loop_control = n.op_type() == "Loop" && at < 2;
      std::vector<std::string> choices = {loop_control ? "no_such_tensor" : "", "no_such_tensor"};
      if (!names.empty()) choices.push_back(pick_of(rng, names));
      n.set_input(at, pick_of(rng, choices));
      return fmt::format("{}: input {} = '{}'", label, at, n.input(at));
    }
    case 3: {
      if (n.input_size() == 0) break;
      n.mutable_input()->RemoveLast();
      return label + ": last input dropped";
    }
    case 4: {
      const auto names = defined_names(g);
      if (names.empty()) break;
      n.add_input(pick_of(rng, names));
      return fmt::format("{}: extra input '{}'", label, n.input(n.input_size() - 1));
    }
    case 5: {
      if (n.output_size() == 0) break;
      const auto names = defined_names(g);
      n.set_output(0, pick_of(rng, names));  // may redefine a tensor
      return fmt::format("{}: output 0 = '{}'", label, n.output(0));
    }
    case 6: {
      n.set_op_type(pick_of<std::string>(rng, {"Conv", "MatMul", "Gemm", "Reshape", "Gather", "Concat", "Slice",
                                               "Softmax", "Transpose", "Add", "Where", "Expand", "Split", "Pad",
                                               "Resize", "TopK", "LayerNormalization", "NoSuchOp"}));
      return fmt::format("{}: op_type = {}", label, n.op_type());
    }
    default:
      break;
  }
  g.mutable_node()->DeleteSubrange(i, 1);
  return label + ": removed";
}

}  // namespace

std::string mutate_model(kiln_onnx::ModelProto& model, Rng& rng) {
  kiln_onnx::GraphProto& g = *model.mutable_graph();
  for (int attempt = 0; attempt < 8; ++attempt) {
    switch (pick(rng, 10)) {
      case 0:
      case 1:
      case 2:
      case 3:
        if (g.node_size() > 0) return mutate_node(g, static_cast<int>(pick(rng, g.node_size())), rng);
        break;
      case 4:
        if (g.initializer_size() > 0) {
          const int i = static_cast<int>(pick(rng, g.initializer_size()));
          return fmt::format("initializer '{}': {}", g.initializer(i).name(),
                             mutate_tensor(*g.mutable_initializer(i), rng));
        }
        break;
      case 5:
        if (g.input_size() > 0) {
          const int i = static_cast<int>(pick(rng, g.input_size()));
          return fmt::format("input '{}': {}", g.input(i).name(), mutate_value_info(*g.mutable_input(i), rng));
        }
        break;
      case 6:
        if (g.output_size() > 0) {
          const int i = static_cast<int>(pick(rng, g.output_size()));
          if (pick(rng, 2) == 0) {
            g.mutable_output(i)->set_name(pick_of<std::string>(rng, {"no_such_tensor", ""}));
            return fmt::format("output {} renamed '{}'", i, g.output(i).name());
          }
          return fmt::format("output '{}': {}", g.output(i).name(), mutate_value_info(*g.mutable_output(i), rng));
        }
        break;
      case 7:
        if (model.opset_import_size() > 0) {
          const int64_t v = pick_of<int64_t>(rng, {0, 1, 6, 7, 11, 13, 17, 21, 23, 24, 99, -1});
          model.mutable_opset_import(0)->set_version(v);
          return fmt::format("opset = {}", v);
        }
        break;
      case 8: {
        const int64_t v = pick_of<int64_t>(rng, {0, 1, 3, 7, 10, 11, 12, 99, -1});
        model.set_ir_version(v);
        return fmt::format("ir_version = {}", v);
      }
      default:
        if (g.initializer_size() > 0) {
          const int i = static_cast<int>(pick(rng, g.initializer_size()));
          const std::string name = g.initializer(i).name();
          g.mutable_initializer()->DeleteSubrange(i, 1);
          return fmt::format("initializer '{}' removed", name);
        }
        break;
    }
  }
  return "nothing";
}

std::string mutate_engine_file(std::string& bytes, Rng& rng) {
  using nlohmann::json;
  constexpr size_t kHeader = 24, kTrailer = 8;
  if (bytes.size() < kHeader + kTrailer) return "nothing (too short)";
  uint64_t mlen = 0;
  std::memcpy(&mlen, bytes.data() + 16, 8);
  if (pick(rng, 2) == 0) {
    // A byte of the graph or weights sections.
    const size_t body = kHeader + mlen, end = bytes.size() - kTrailer;
    if (body >= end) return "nothing (no sections)";
    const size_t at = body + pick(rng, end - body);
    bytes[at] = static_cast<char>(bytes[at] ^ (1 << pick(rng, 8)));
    testing::resign(bytes);
    return fmt::format("section byte {} flipped", at);
  }
  // One manifest value replaced: a number, a string, a container or null where the loader expects another.
  std::string what = "nothing (empty manifest)";
  bytes = testing::with_manifest(bytes, [&](json& m) {
    std::vector<std::string> leaves;
    const json flat = m.flatten();  // named: items() does not keep a temporary alive
    for (const auto& [k, v] : flat.items()) leaves.push_back(k);
    if (leaves.empty()) return;
    const json::json_pointer at(leaves[pick(rng, leaves.size())]);
    const json replacement = pick_of<json>(
        rng, {json(-1), json(0), json(int64_t{1} << 40), json(std::numeric_limits<uint64_t>::max()), json("x"),
              json::array(), json::object(), json(nullptr), json(3.5)});
    m[at] = replacement;
    what = fmt::format("manifest {} = {}", at.to_string(), replacement.dump());
  });
  return what;
}

}  // namespace kiln::fuzz
