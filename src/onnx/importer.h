// ONNX ModelProto -> IR graph, with the structural checks that make later stages safe.
#pragma once
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace kiln::onnx {

inline constexpr int64_t kMinOpset = 1;   // older opsets import; ops check their own version rules
inline constexpr int64_t kMaxOpset = 23;
inline constexpr int64_t kMaxIrVersion = 11;

// Where the file kept its weights, for tools that write a model back out (kiln extract keeps external data
// external).
struct ImportDetails {
  int64_t external_initializers = 0;  // main-graph initializers whose bytes sat in external data files
  int64_t external_bytes = 0;
};

Result<ir::Graph> import_model_file(const std::string& path, ImportDetails* details = nullptr);
// weights: the blob that "@weights" external data refers to (kiln engine files); empty for plain models.
Result<ir::Graph> import_model_bytes(const std::string& bytes, const std::string& base_dir, const std::string& what,
                                     std::string_view weights = {}, ImportDetails* details = nullptr);

}  // namespace kiln::onnx
