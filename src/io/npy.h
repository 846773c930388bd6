// NumPy .npy files (format 1.0-3.0, little-endian, C order) <-> Tensor.
#pragma once
#include <string>

#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln::io {

Result<Tensor> parse_npy(const std::string& bytes, const std::string& what);
Result<Tensor> load_npy(const std::string& path);
std::string to_npy(const Tensor& t);
Status save_npy(const Tensor& t, const std::string& path);
// .npy or ONNX TensorProto .pb, by extension (then by magic bytes).
Result<Tensor> load_tensor_file(const std::string& path);

}  // namespace kiln::io
