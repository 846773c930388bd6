// IR graph -> ONNX ModelProto bytes; engine files store their optimized graph this way.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>

#include "ir/graph.h"

namespace kiln::onnx {

// Where weights already written to a shared blob lie, by content, so graphs written into one blob (the
// members of an engine bundle) store each distinct tensor's bytes once.
struct WeightIndex {
  std::unordered_multimap<uint64_t, std::pair<size_t, size_t>> spans;  // content hash -> {offset, length}
};

// Initializer bytes go to *weights (64-byte aligned) and are referenced as external data "@weights". With
// `shared`, bytes equal to a tensor already in *weights point at that copy instead of being appended.
std::string export_model(const ir::Graph& g, std::string* weights, WeightIndex* shared = nullptr);

// Protobuf refuses messages over 2 GiB; weights past this much go to external data instead.
inline constexpr int64_t kMaxInlineModelBytes = int64_t{1900} << 20;

// A standalone ONNX model, every tensor inline (errors past kMaxInlineModelBytes of weights).
Result<std::string> export_model_inline(const ir::Graph& g);

enum class ExternalData {
  kAuto,    // external only when the weights do not fit one ONNX file
  kAlways,  // initializers of external_min_bytes or more go to PATH.data
  kNever,
};
struct WriteOptions {
  ExternalData external_data = ExternalData::kAuto;
  int64_t external_min_bytes = 1024;
};
struct WrittenModel {
  std::string model_path, data_path;  // data_path empty when every tensor is inline
  int64_t model_bytes = 0, data_bytes = 0, external_tensors = 0;
};
// Writes g as a standalone ONNX model at path; external data goes to "<file name>.data" beside it, referenced
// by that relative name so the pair can be moved together.
Result<WrittenModel> write_model_file(const ir::Graph& g, const std::string& path, const WriteOptions& options = {});

}  // namespace kiln::onnx
