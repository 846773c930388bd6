// Shared pieces of the kiln Python module: errors as Python exceptions, array bridges, the bound classes.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::python {

namespace py = pybind11;

// Carries a kiln Status to the module boundary, where it becomes the kiln.Error subclass of its code.
class StatusError : public std::exception {
 public:
  explicit StatusError(Status status) : status_(std::move(status)) {}
  const char* what() const noexcept override { return status_.message().c_str(); }
  const Status& status() const { return status_; }

 private:
  Status status_;
};

inline void check(const Status& s) {
  if (!s.ok()) throw StatusError(s);
}
template <class T>
T unwrap(Result<T> r) {
  if (!r.ok()) throw StatusError(r.status());
  return std::move(r).value();
}

// numpy dtype of a kiln dtype (bf16: ml_dtypes.bfloat16 when installed, else uint16 holding the bits).
py::dtype numpy_dtype(DType t);
// "float32", "float16", "bfloat16", "int64", "bool"…: the names users see in numpy and torch.
std::string user_dtype_name(DType t);
// The kiln dtype of a numpy array; kUndefined for dtypes kiln has no equivalent of.
DType array_dtype(const py::array& a);
// A numpy array viewing the tensor's storage (kept alive by the array), no copy.
py::array to_numpy(const Tensor& t);

// One DLPack tensor (from obj.__dlpack__()), read without copying; the producer keeps the memory alive for
// as long as the Python object lives.
struct DlpackView {
  void* data = nullptr;
  DType dtype = DType::kUndefined;
  std::vector<int64_t> dims;
  int device_type = 0;  // DLDeviceType: 1 CPU, 2 CUDA
  int device_id = 0;
  bool contiguous = true;
  size_t nbytes = 0;
  std::string dtype_text;  // for messages when dtype is kUndefined
};
// KNOWN_ON_GPU (the caller checked, as the torch path does) skips asking the producer for its device.
DlpackView dlpack_view(py::handle obj, const std::string& name, bool known_on_gpu);

// Optimization profiles as Python gives them (kiln/engine.py's _normalize_shapes): per profile, input name ->
// [min, opt, max] shapes.
using ProfileSpecs = std::vector<std::map<std::string, std::vector<std::vector<int64_t>>>>;
std::vector<OptimizationProfile> to_profiles(const ProfileSpecs& profiles);

void bind_errors(py::module_& m);
void bind_engine(py::module_& m);
void bind_context(py::module_& m);
void bind_device(py::module_& m);
void bind_inspect(py::module_& m);

}  // namespace kiln::python
