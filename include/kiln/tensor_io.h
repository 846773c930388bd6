// Tensors in files: NumPy .npy (format 1.0-3.0, little-endian, C order) and .npz (numpy.savez), and ONNX
// TensorProto .pb files, as `kiln run --input`, `kiln compare --inputs` and `kiln bench --input` read them.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln::io {

Result<Tensor> parse_npy(const std::string& bytes, const std::string& what);
Result<Tensor> load_npy(const std::string& path);
std::string to_npy(const Tensor& t);
Status save_npy(const Tensor& t, const std::string& path);
// .npy or ONNX TensorProto .pb, by extension (then by magic bytes).
Result<Tensor> load_tensor_file(const std::string& path);

// Members in archive order, named as numpy.load names them (the member name without ".npy"). A member
// compressed with deflate (numpy.savez_compressed) is an error that says how to save it instead.
Result<std::vector<std::pair<std::string, Tensor>>> parse_npz(const std::string& bytes, const std::string& what);
Result<std::vector<std::pair<std::string, Tensor>>> load_npz(const std::string& path);
// An uncompressed archive numpy.load reads.
std::string to_npz(const std::vector<std::pair<std::string, Tensor>>& arrays);

}  // namespace kiln::io
