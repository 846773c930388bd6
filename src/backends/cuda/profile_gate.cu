#include "backends/cuda/profile_gate.h"

#include "backends/cuda/cuda_check.h"

namespace kiln::cuda {

namespace {

// Spins until the host writes a non-zero flag or `timeout` clock cycles pass (a host that must wait for the
// stream while the gate is closed then waits at most that long instead of forever).
__global__ void gate_kernel(const volatile int* flag, long long timeout) {
  const long long start = clock64();
  while (*flag == 0 && clock64() - start < timeout) {
  }
}

}  // namespace

ProfileGate::~ProfileGate() {
  if (flag_) cudaFreeHost(const_cast<int*>(flag_));
}

Status ProfileGate::close(cudaStream_t stream) {
  if (!flag_) {
    int* p = nullptr;
    KILN_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&p), sizeof(int), cudaHostAllocMapped));
    flag_ = p;
    KILN_CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&device_flag_), p, 0));
  }
  *flag_ = 0;
  // About half a second at H100/H200 clocks: far longer than the host needs to enqueue a model.
  gate_kernel<<<1, 1, 0, stream>>>(device_flag_, 1'000'000'000LL);
  KILN_CUDA_CHECK_LAUNCH();
  closed_ = true;
  return Status();
}

void ProfileGate::open() {
  if (!closed_) return;
  *flag_ = 1;
  closed_ = false;
}

}  // namespace kiln::cuda
