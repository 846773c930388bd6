// IR graph -> ONNX ModelProto bytes; engine files store their optimized graph this way.
#pragma once
#include <string>

#include "ir/graph.h"

namespace kiln::onnx {

// Initializer bytes go to *weights (64-byte aligned) and are referenced as external data "@weights".
std::string export_model(const ir::Graph& g, std::string* weights);

}  // namespace kiln::onnx
