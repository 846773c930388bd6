// Per-layer profiling without host overhead in the numbers: the profiled run first enqueues a kernel that
// holds the stream until the host has enqueued every layer (with its events), so the GPU then runs the layers
// back to back and each event pair measures GPU time only — not the host's shape inference and allocation
// between launches, which at batch 1 is larger than most kernels.
#pragma once
#include <cuda_runtime.h>

#include "kiln/status.h"

namespace kiln::cuda {

class ProfileGate {
 public:
  ProfileGate() = default;
  ProfileGate(const ProfileGate&) = delete;
  ProfileGate& operator=(const ProfileGate&) = delete;
  ~ProfileGate();
  // Enqueues the holding kernel on `stream`.
  Status close(cudaStream_t stream);
  // Lets the stream run; call before anything waits for the stream (a read-back) and after the last layer.
  void open();
  bool closed() const { return closed_; }

 private:
  volatile int* flag_ = nullptr;  // pinned, mapped host memory the kernel polls
  int* device_flag_ = nullptr;
  bool closed_ = false;
};

}  // namespace kiln::cuda
