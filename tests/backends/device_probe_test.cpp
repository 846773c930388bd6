#include "backends/device_probe.h"

#include <gtest/gtest.h>

namespace kiln {
namespace {

constexpr const char* kInsufficient = "CUDA driver version is insufficient for CUDA runtime version";

TEST(DeviceProbe, NoDriverAtAllIsSaidPlainly) {
  const std::string m = no_gpu_message(kInsufficient, /*no_device_or_driver_error=*/true, /*driver_present=*/false);
  EXPECT_EQ(m.rfind("no NVIDIA GPU or driver found", 0), 0u) << m;
  EXPECT_NE(m.find(kInsufficient), std::string::npos) << "CUDA's own words stay, for whoever needs them: " << m;
}

TEST(DeviceProbe, AnInstalledDriverKeepsCudasMessage) {
  // A driver that is really too old for the runtime: CUDA's message is the right one.
  EXPECT_EQ(no_gpu_message(kInsufficient, true, /*driver_present=*/true), kInsufficient);
  // Other errors are never reworded.
  EXPECT_EQ(no_gpu_message("out of memory", false, false), "out of memory");
}

TEST(DeviceProbe, ReasonNamesWhyNoGpuIsUsed) {
  const std::string reason = cuda_unavailable_reason();
  if (cuda_backend_available()) GTEST_SKIP() << "a usable GPU is present";
  ASSERT_FALSE(reason.empty());
#ifdef KILN_WITH_CUDA
  // Without a driver (this is what a fresh CPU-only machine sees) the reason says so.
  if (!nvidia_driver_present()) EXPECT_NE(reason.find("no NVIDIA GPU or driver found"), std::string::npos) << reason;
#else
  EXPECT_NE(reason.find("without CUDA"), std::string::npos) << reason;
#endif
}

}  // namespace
}  // namespace kiln
