// kiln bench's I/O buffers (see bench_io.h).
#include "bench_io.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <new>

#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace kiln::cli {

#ifdef KILN_WITH_CUDA
Status cuda_status(int error, const std::string& what) {
  const auto e = static_cast<cudaError_t>(error);
  if (e == cudaSuccess) return Status();
  return Status(StatusCode::kInternal,
                fmt::format("{}: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e)));
}
#endif

IoBuffers::~IoBuffers() {
#ifdef KILN_WITH_CUDA
  for (void* p : device_ptrs_) cudaFree(p);
  for (void* p : pinned_ptrs_) cudaFreeHost(p);
#endif
}

Result<void*> IoBuffers::alloc(const std::string& name, size_t bytes) {
  const size_t n = std::max<size_t>(bytes, 256);
  bytes_ += n;
  if (!device_) {
    host_.emplace_back(new (std::align_val_t(256)) std::byte[n]);
    return static_cast<void*>(host_.back().get());
  }
#ifdef KILN_WITH_CUDA
  void* p = nullptr;
  KILN_RETURN_IF_ERROR(
      cuda_status(cudaMalloc(&p, n), fmt::format("cudaMalloc of {} bytes for '{}'", n, name)));
  device_ptrs_.push_back(p);
  return p;
#else
  return Status(StatusCode::kUnsupported,
                fmt::format("tensor '{}': device buffers need a CUDA build of kiln", name));
#endif
}

Status IoBuffers::upload(void* dst, const Tensor& t, const std::string& name) {
  if (!t.nbytes()) return Status();
  if (!device_) {
    std::memcpy(dst, t.raw(), t.nbytes());
    return Status();
  }
#ifdef KILN_WITH_CUDA
  return cuda_status(cudaMemcpy(dst, t.raw(), t.nbytes(), cudaMemcpyHostToDevice),
                     "copying input '" + name + "' to the GPU");
#else
  (void)name;
  return Status(StatusCode::kUnsupported, "device buffers need a CUDA build of kiln");
#endif
}

Status IoBuffers::add_host_copies(const std::map<std::string, Tensor>& inputs) {
  if (!device_) return Status();  // CPU engines read and write the bound host buffers: nothing to copy
#ifdef KILN_WITH_CUDA
  for (auto& b : bindings_) {
    void* p = nullptr;
    const size_t n = std::max<size_t>(b.bytes, 256);
    KILN_RETURN_IF_ERROR(
        cuda_status(cudaMallocHost(&p, n), fmt::format("cudaMallocHost of {} bytes for '{}'", n, b.name)));
    pinned_ptrs_.push_back(p);
    b.host = p;
    if (b.input && b.bytes) std::memcpy(p, inputs.at(b.name).raw(), b.bytes);
  }
  return Status();
#else
  (void)inputs;
  return Status(StatusCode::kUnsupported, "--io host on a device engine needs a CUDA build of kiln");
#endif
}

#ifdef KILN_WITH_CUDA
namespace {
Status copy_all(const std::vector<IoBuffers::Binding>& bindings, bool inputs, void* stream) {
  for (const auto& b : bindings) {
    if (b.input != inputs || !b.bytes) continue;
    if (!b.host)
      return Status(StatusCode::kInternal,
                    "no host copy of '" + b.name + "' (add_host_copies was not called)");
    const cudaError_t e = inputs ? cudaMemcpyAsync(b.bound, b.host, b.bytes, cudaMemcpyHostToDevice,
                                                   static_cast<cudaStream_t>(stream))
                                 : cudaMemcpyAsync(b.host, b.bound, b.bytes, cudaMemcpyDeviceToHost,
                                                   static_cast<cudaStream_t>(stream));
    KILN_RETURN_IF_ERROR(
        cuda_status(e, fmt::format("copying {} '{}' ({} bytes) {}", inputs ? "input" : "output", b.name,
                                   b.bytes, inputs ? "to the GPU" : "to the host")));
  }
  return Status();
}
}  // namespace
#endif

Status IoBuffers::copy_inputs_to_device(void* stream) {
#ifdef KILN_WITH_CUDA
  if (device_) return copy_all(bindings_, true, stream);
#endif
  (void)stream;
  return Status();
}

Status IoBuffers::copy_outputs_to_host(void* stream) {
#ifdef KILN_WITH_CUDA
  if (device_) return copy_all(bindings_, false, stream);
#endif
  (void)stream;
  return Status();
}

Status bind_all(ExecutionContext& ctx, const std::map<std::string, Tensor>& inputs, IoBuffers& bufs) {
  const Engine& e = ctx.engine();
  for (const auto& d : e.inputs()) {
    const Tensor& t = inputs.at(d.name);
    KILN_RETURN_IF_ERROR(ctx.set_input_shape(d.name, t.dims()));
    void* p = nullptr;
    KILN_ASSIGN_OR_RETURN(p, bufs.alloc(d.name, t.nbytes()));
    KILN_RETURN_IF_ERROR(bufs.upload(p, t, d.name));
    KILN_RETURN_IF_ERROR(ctx.set_tensor_address(d.name, p, std::max<size_t>(t.nbytes(), 256)));
    bufs.add_binding({d.name, true, p, t.nbytes(), nullptr});
  }
  // Outputs whose size depends on data: one host run tells their dims.
  std::map<std::string, std::vector<int64_t>> out_dims;
  bool need_run = false;
  for (const auto& d : e.outputs()) {
    auto dims = ctx.output_shape(d.name);
    if (dims.ok())
      out_dims[d.name] = *dims;
    else
      need_run = true;
  }
  if (need_run) {
    auto outs = ctx.infer(inputs);
    if (!outs.ok()) return outs.status().with_context("sizing the output buffers");
    for (const auto& [name, t] : *outs) out_dims[name] = t.dims();
  }
  for (const auto& d : e.outputs()) {
    int64_t n = 1;
    for (int64_t v : out_dims[d.name]) n *= v;
    const size_t bytes = static_cast<size_t>(n) * dtype_size(d.dtype);
    void* p = nullptr;
    KILN_ASSIGN_OR_RETURN(p, bufs.alloc(d.name, bytes));
    KILN_RETURN_IF_ERROR(ctx.set_tensor_address(d.name, p, std::max<size_t>(bytes, 256)));
    bufs.add_binding({d.name, false, p, bytes, nullptr});
  }
  return Status();
}

}  // namespace kiln::cli
