// ONNX TensorProto <-> kiln Tensor, including external data files.
#pragma once
#include <string>
#include <string_view>

#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln_onnx {
class TensorProto;
}

namespace kiln::onnx {

// base_dir resolves external-data locations; what = "initializer 'w'" for messages.
// weights: when set, external data with location "@weights" is read from it (kiln engine files).
Result<Tensor> tensor_from_proto(const kiln_onnx::TensorProto& p, const std::string& base_dir,
                                 const std::string& what, std::string_view weights = {});
// Fills name, dtype, dims and raw_data.
void tensor_to_proto(const Tensor& t, const std::string& name, kiln_onnx::TensorProto* p);
// A serialized TensorProto file (the ONNX test-data .pb format).
Result<Tensor> load_tensor_pb(const std::string& path);
Status save_tensor_pb(const Tensor& t, const std::string& name, const std::string& path);

}  // namespace kiln::onnx
