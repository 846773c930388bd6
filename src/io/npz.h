// NumPy .npz archives: a ZIP of .npy members, as numpy.savez writes them (stored, ZIP64 headers included).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln::io {

// Members in archive order, named as numpy.load names them (the member name without ".npy"). A member
// compressed with deflate (numpy.savez_compressed) is an error that says how to save it instead.
Result<std::vector<std::pair<std::string, Tensor>>> parse_npz(const std::string& bytes, const std::string& what);
Result<std::vector<std::pair<std::string, Tensor>>> load_npz(const std::string& path);
// An uncompressed archive numpy.load reads.
std::string to_npz(const std::vector<std::pair<std::string, Tensor>>& arrays);

}  // namespace kiln::io
