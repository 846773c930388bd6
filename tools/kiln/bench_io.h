// kiln bench's I/O buffers: what the timed runs read and write, bound with set_tensor_address (device memory
// for CUDA engines, host memory for CPU engines), and for --io host the host copies that the timed loop
// moves.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::cli {

#ifdef KILN_WITH_CUDA
// Status of a CUDA runtime call (an int, so this header does not pull in cuda_runtime.h).
Status cuda_status(int error, const std::string& what);
#endif

class IoBuffers {
 public:
  struct Binding {
    std::string name;
    bool input = false;
    void* bound = nullptr;  // the address given to set_tensor_address
    size_t bytes = 0;       // the tensor's bytes (0 for an empty tensor)
    void* host = nullptr;   // --io host on a CUDA engine: its page-locked host copy
  };

  explicit IoBuffers(bool device) : device_(device) {}
  IoBuffers(const IoBuffers&) = delete;
  IoBuffers& operator=(const IoBuffers&) = delete;
  ~IoBuffers();

  // Never null, even for an empty tensor (set_tensor_address rejects null), and 256-byte aligned.
  Result<void*> alloc(const std::string& name, size_t bytes);
  Status upload(void* dst, const Tensor& t, const std::string& name);
  void add_binding(Binding b) { bindings_.push_back(std::move(b)); }
  // --io host: a page-locked host copy of every binding, inputs filled from `inputs`; what a server copies
  // from and to, so the timed copies run at the bus's speed and not through a pageable bounce buffer.
  Status add_host_copies(const std::map<std::string, Tensor>& inputs);
  // Asynchronous copies of every input to the device, or of every output to the host, on `stream`.
  Status copy_inputs_to_device(void* stream);
  Status copy_outputs_to_host(void* stream);

  size_t bytes() const { return bytes_; }
  bool device() const { return device_; }

 private:
  struct AlignedDelete {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t(256)); }
  };
  bool device_;
  size_t bytes_ = 0;
  std::vector<std::unique_ptr<std::byte[], AlignedDelete>> host_;
  std::vector<void*> device_ptrs_, pinned_ptrs_;
  std::vector<Binding> bindings_;
};

// Binds every input (uploaded) and output (sized from the engine's output shapes) of ctx.
Status bind_all(ExecutionContext& ctx, const std::map<std::string, Tensor>& inputs, IoBuffers& bufs);

}  // namespace kiln::cli
