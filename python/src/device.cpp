// The few CUDA runtime calls the Python layer needs itself (IOBinding's synchronous runs and host copies of
// caller-owned device buffers); without CUDA they say so.
#ifdef KILN_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include "kiln/device.h"
#include "bindings.h"

namespace kiln::python {

namespace {

#ifdef KILN_WITH_CUDA
void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw StatusError(Status(StatusCode::kInternal, std::string(what) + " failed: " + cudaGetErrorString(e)));
}
#endif

void synchronize(uintptr_t stream) {
#ifdef KILN_WITH_CUDA
  py::gil_scoped_release nogil;
  check_cuda(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
#else
  (void)stream;  // CPU engines run synchronously
#endif
}

void copy_device_to_host(uintptr_t dst, uintptr_t src, size_t nbytes) {
#ifdef KILN_WITH_CUDA
  py::gil_scoped_release nogil;
  check_cuda(cudaMemcpy(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), nbytes, cudaMemcpyDeviceToHost),
             "cudaMemcpy (device to host)");
#else
  (void)dst, (void)src, (void)nbytes;
  throw StatusError(Status(StatusCode::kUnsupported, "kiln was built without CUDA; there is no device memory to copy"));
#endif
}

}  // namespace

void bind_device(py::module_& m) {
  m.def("synchronize", &synchronize, py::arg("stream"), "Waits for STREAM (a cudaStream_t as int); no-op without CUDA.");
  m.def("copy_device_to_host", &copy_device_to_host, py::arg("dst"), py::arg("src"), py::arg("nbytes"));
  m.def("has_cuda", [] {
#ifdef KILN_WITH_CUDA
    return true;
#else
    return false;
#endif
  }, "Whether this build of kiln has the CUDA backend compiled in.");
  m.def("cuda_unavailable_reason", &cuda_unavailable_reason,
        "Why the CUDA backend cannot run here, in one sentence; empty when it can.");
}

}  // namespace kiln::python
