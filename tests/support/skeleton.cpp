#include "support/skeleton.h"

#include <kiln_onnx/onnx.pb.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace kiln::testing {

namespace {

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void fill(kiln_onnx::TensorProto& t, uint64_t seed) {
  int64_t n = 1;
  for (auto d : t.dims()) n *= d;
  std::string raw;
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  auto next = [&] {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return static_cast<float>((s >> 40) * (1.0 / (1ull << 24))) * 0.1f - 0.05f;
  };
  switch (t.data_type()) {
    case kiln_onnx::TensorProto::FLOAT: {
      raw.resize(n * 4);
      for (int64_t i = 0; i < n; ++i) {
        float v = next();
        std::memcpy(raw.data() + i * 4, &v, 4);
      }
      break;
    }
    default: raw.assign(n * 8, '\0');  // integer tables (position ids…) of the widest type; trimmed below
  }
  if (t.data_type() == kiln_onnx::TensorProto::INT32) raw.resize(n * 4);
  if (t.data_type() == kiln_onnx::TensorProto::BOOL || t.data_type() == kiln_onnx::TensorProto::UINT8 ||
      t.data_type() == kiln_onnx::TensorProto::INT8)
    raw.resize(n);
  t.set_raw_data(raw);
  t.clear_doc_string();
}

}  // namespace

std::string load_skeleton(const std::string& name) {
  kiln_onnx::ModelProto m;
  const std::string path = std::string(KILN_SOURCE_DIR) + "/tests/data/skeletons/" + name + ".skel.onnx";
  if (!m.ParseFromString(read_all(path))) throw std::runtime_error("cannot parse " + path);
  uint64_t seed = 1;
  for (auto& t : *m.mutable_graph()->mutable_initializer())
    if (t.doc_string() == "kiln-skeleton") fill(t, seed++);
  std::string out;
  m.SerializeToString(&out);
  return out;
}

}  // namespace kiln::testing
