// The device probe's internals beside its public half (kiln/device.h).
#pragma once
#include <string>

#include "kiln/device.h"

namespace kiln {

// Whether the machine has an NVIDIA driver at all: a /dev/nvidia* node, or libcuda in a system library dir.
bool nvidia_driver_present();
// What probe_gpu reports when CUDA finds no device. On a machine with no GPU and no driver, CUDA's own words
// ("CUDA driver version is insufficient for CUDA runtime version") send people hunting for driver updates, so
// when the error is one of "no device"/"insufficient driver" and no driver is present, it says so plainly.
std::string no_gpu_message(const std::string& cuda_error, bool no_device_or_driver_error, bool driver_present);

}  // namespace kiln
