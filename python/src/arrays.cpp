// numpy and DLPack <-> kiln tensors, without copies where the layouts agree.
#include <cstring>

#include "bindings.h"

#ifdef KILN_DLPACK_FLAT_HEADER
#include <dlpack.h>
#else
#include <dlpack/dlpack.h>
#endif

namespace kiln::python {

std::string user_dtype_name(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    case DType::kF64: return "float64";
    case DType::kI8: return "int8";
    case DType::kI16: return "int16";
    case DType::kI32: return "int32";
    case DType::kI64: return "int64";
    case DType::kU8: return "uint8";
    case DType::kU16: return "uint16";
    case DType::kU32: return "uint32";
    case DType::kU64: return "uint64";
    case DType::kBool: return "bool";
    default: return std::string(dtype_name(t));
  }
}

py::dtype numpy_dtype(DType t) {
  if (t == DType::kBF16) {
    try {
      return py::dtype::from_args(py::module_::import("ml_dtypes").attr("bfloat16"));
    } catch (const py::error_already_set&) {
      return py::dtype::from_args(py::str("uint16"));
    }
  }
  if (dtype_size(t) == 0)
    throw StatusError(Status(StatusCode::kUnsupported, "dtype " + std::string(dtype_name(t)) + " has no numpy equivalent"));
  return py::dtype::from_args(py::str(user_dtype_name(t)));
}

DType array_dtype(const py::array& a) {
  const py::dtype dt = a.dtype();
  const char kind = dt.kind();
  const auto size = dt.itemsize();
  switch (kind) {
    case 'f':
      return size == 4 ? DType::kF32 : size == 2 ? DType::kF16 : size == 8 ? DType::kF64 : DType::kUndefined;
    case 'i':
      return size == 1 ? DType::kI8 : size == 2 ? DType::kI16 : size == 4 ? DType::kI32 : size == 8 ? DType::kI64
                                                                                          : DType::kUndefined;
    case 'u':
      return size == 1 ? DType::kU8 : size == 2 ? DType::kU16 : size == 4 ? DType::kU32 : size == 8 ? DType::kU64
                                                                                          : DType::kUndefined;
    case 'b': return DType::kBool;
    case 'V':
      // ml_dtypes.bfloat16 is a numpy "void"-kind extension type.
      if (size == 2 && py::str(dt.attr("name")).cast<std::string>() == "bfloat16") return DType::kBF16;
      return DType::kUndefined;
    default: return DType::kUndefined;
  }
}

py::array to_numpy(const Tensor& t) {
  auto* keep = new Tensor(t);  // shares the storage; freed with the array
  py::capsule owner(keep, [](void* p) { delete static_cast<Tensor*>(p); });
  std::vector<py::ssize_t> shape(t.dims().begin(), t.dims().end());
  return py::array(numpy_dtype(t.dtype()), shape, {}, keep->raw(), owner);
}

namespace {

DType dlpack_dtype(const DLDataType& d) {
  if (d.lanes != 1) return DType::kUndefined;
  switch (d.code) {
    case kDLFloat: return d.bits == 32 ? DType::kF32 : d.bits == 16 ? DType::kF16 : d.bits == 64 ? DType::kF64 : DType::kUndefined;
    case kDLInt:
      return d.bits == 8 ? DType::kI8 : d.bits == 16 ? DType::kI16 : d.bits == 32 ? DType::kI32 : d.bits == 64 ? DType::kI64
                                                                                                     : DType::kUndefined;
    case kDLUInt:
      // Before DLPack 0.8 added kDLBool, producers exported bool as 8-bit unsigned.
      return d.bits == 8 ? DType::kU8 : d.bits == 16 ? DType::kU16 : d.bits == 32 ? DType::kU32 : d.bits == 64 ? DType::kU64
                                                                                                      : DType::kUndefined;
    case kDLBfloat: return d.bits == 16 ? DType::kBF16 : DType::kUndefined;
    case 6: return d.bits == 8 ? DType::kBool : DType::kUndefined;  // kDLBool (DLPack >= 0.8)
    default: return DType::kUndefined;
  }
}

}  // namespace

DlpackView dlpack_view(py::handle obj, const std::string& name, bool known_on_gpu) {
  if (!py::hasattr(obj, "__dlpack__"))
    throw StatusError(Status(StatusCode::kInvalidArgument,
                             "tensor '" + name + "' is a " + std::string(Py_TYPE(obj.ptr())->tp_name) +
                                 ", which has no __dlpack__; pass a numpy array or a torch tensor"));
  // On a GPU, stream=-1: no synchronisation by the producer, as kiln runs on the caller's (torch's current)
  // stream itself. Host producers take no stream (numpy refuses one).
  bool on_host = false;
  if (!known_on_gpu && py::hasattr(obj, "__dlpack_device__")) {
    py::tuple dev = obj.attr("__dlpack_device__")();
    on_host = dev.size() > 0 && dev[0].cast<int>() == static_cast<int>(kDLCPU);
  }
  py::object capsule = on_host ? obj.attr("__dlpack__")() : obj.attr("__dlpack__")(py::arg("stream") = -1);
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  if (!managed) {
    PyErr_Clear();
    throw StatusError(Status(StatusCode::kInvalidArgument,
                             "tensor '" + name + "': __dlpack__ did not return a DLPack 'dltensor' capsule"));
  }
  const DLTensor& t = managed->dl_tensor;
  DlpackView v;
  v.data = static_cast<char*>(t.data) + t.byte_offset;
  v.dtype = dlpack_dtype(t.dtype);
  v.dtype_text = "DLPack type code " + std::to_string(t.dtype.code) + " bits " + std::to_string(t.dtype.bits);
  v.dims.assign(t.shape, t.shape + t.ndim);
  v.device_type = static_cast<int>(t.device.device_type);
  v.device_id = t.device.device_id;
  int64_t expected = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    if (t.strides && t.shape[i] != 1 && t.strides[i] != expected) v.contiguous = false;
    expected *= t.shape[i];
  }
  v.nbytes = static_cast<size_t>(expected) * (t.dtype.bits / 8);
  // The capsule's destructor (still named "dltensor") calls the producer's deleter; the Python object keeps
  // the memory alive.
  return v;
}

}  // namespace kiln::python
