// NVRTC compilation and the process-wide module cache (see nvrtc_compile.h).
#include "backends/cuda/nvrtc_compile.h"

#include <fmt/format.h>
#include <nvrtc.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>

#include "backends/cuda/cuda_check.h"

namespace kiln::cuda {

namespace {

struct Entry {
  std::mutex m;
  bool done = false;
  Status status;
  cudaLibrary_t library = nullptr;
  NvrtcKernels kernels;
};

std::mutex g_cache_mutex;
std::map<std::pair<std::string, int>, std::shared_ptr<Entry>>& cache() {
  static auto* c = new std::map<std::pair<std::string, int>, std::shared_ptr<Entry>>();  // never destroyed:
  return *c;  // libraries stay loaded until the process ends, and kernels may run during static destruction
}
std::atomic<int> g_compiles{0};

// "line 12: <text>" for each "(12): error" the log names, so the message shows the generated code at fault.
std::string quote_lines(const std::string& log, const std::string& source) {
  std::vector<std::string> lines;
  std::istringstream src(source);
  for (std::string l; std::getline(src, l);) lines.push_back(l);
  std::string out;
  size_t pos = 0;
  int quoted = 0;
  while ((pos = log.find("): ", pos)) != std::string::npos && quoted < 3) {
    const size_t open = log.rfind('(', pos);
    int line = 0;
    if (open != std::string::npos) line = std::atoi(log.c_str() + open + 1);
    if (line >= 1 && line <= static_cast<int>(lines.size()) &&
        out.find(fmt::format("line {}:", line)) == std::string::npos) {
      out += fmt::format("\n  generated line {}: {}", line, lines[line - 1]);
      ++quoted;
    }
    pos += 3;
  }
  return out;
}

// The newest architecture NVRTC can target that the device runs: the device's own (cubin), or an older one
// whose PTX the driver compiles for it.
int nvrtc_arch_for(int device_arch, bool* exact) {
  int n = 0;
  *exact = false;
  if (nvrtcGetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0) return device_arch;
  std::vector<int> archs(n);
  if (nvrtcGetSupportedArchs(archs.data()) != NVRTC_SUCCESS) return device_arch;
  int best = 0;
  for (int a : archs)
    if (a <= device_arch && a > best) best = a;
  *exact = best == device_arch;
  return best ? best : device_arch;
}

}  // namespace

Result<std::string> nvrtc_compile(const std::string& source, int arch, const std::string& label) {
  bool exact = false;
  const int target = nvrtc_arch_for(arch, &exact);
  nvrtcProgram prog = nullptr;
  if (nvrtcCreateProgram(&prog, source.c_str(), "kiln_generated.cu", 0, nullptr, nullptr) != NVRTC_SUCCESS)
    return Status(StatusCode::kInternal, label + ": nvrtcCreateProgram failed");
  struct Destroy {
    nvrtcProgram* p;
    ~Destroy() { nvrtcDestroyProgram(p); }
  } destroy{&prog};
  const std::string arch_opt = fmt::format("--gpu-architecture={}_{}", exact ? "sm" : "compute", target);
  const char* opts[] = {arch_opt.c_str(), "-std=c++17", "--fmad=true"};
  const nvrtcResult r = nvrtcCompileProgram(prog, 3, opts);
  size_t log_size = 0;
  nvrtcGetProgramLogSize(prog, &log_size);
  std::string log(log_size, '\0');
  if (log_size > 1) nvrtcGetProgramLog(prog, log.data());
  while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
  if (r != NVRTC_SUCCESS)
    return Status(StatusCode::kInternal,
                  fmt::format("{}: NVRTC could not compile the generated kernel for sm_{} ({}): "
                              "{}{}",
                              label, arch, nvrtcGetErrorString(r), log, quote_lines(log, source)));
  std::string image;
  size_t size = 0;
  if (exact) {
    nvrtcGetCUBINSize(prog, &size);
    image.resize(size);
    nvrtcGetCUBIN(prog, image.data());
  } else {
    nvrtcGetPTXSize(prog, &size);
    image.resize(size);
    nvrtcGetPTX(prog, image.data());
  }
  g_compiles++;
  return image;
}

namespace {

Status compile(Entry& e, const std::string& source, const std::vector<std::string>& names, int arch,
               const std::string& label) {
  KILN_ASSIGN_OR_RETURN(std::string image, nvrtc_compile(source, arch, label));
  // Loading a module is not a stream operation, but a capturing stream in global mode would still refuse it:
  // relaxed mode for this thread while loading.
  cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
  cudaThreadExchangeStreamCaptureMode(&mode);
  cudaError_t load = cudaLibraryLoadData(&e.library, image.data(), nullptr, nullptr, 0, nullptr, nullptr, 0);
  std::vector<cudaKernel_t> kernels;
  for (size_t i = 0; load == cudaSuccess && i < names.size(); ++i) {
    cudaKernel_t k = nullptr;
    load = cudaLibraryGetKernel(&k, e.library, names[i].c_str());
    kernels.push_back(k);
  }
  cudaThreadExchangeStreamCaptureMode(&mode);
  if (load != cudaSuccess) {
    cudaGetLastError();
    return Status(StatusCode::kInternal, fmt::format("{}: loading the generated kernel for sm_{} failed: {}",
                                                     label, arch, cudaGetErrorString(load)));
  }
  e.kernels.kernels = std::move(kernels);
  e.kernels.arch = arch;
  return Status();
}

}  // namespace

int current_device_arch() {
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return major * 10 + minor;
}

int nvrtc_compile_count() {
  return g_compiles.load();
}

Result<const NvrtcKernels*> nvrtc_kernels(const std::string& key,
                                          const std::function<std::string()>& make_source,
                                          const std::vector<std::string>& names, const std::string& label) {
  const int arch = current_device_arch();
  if (arch == 0) return Status(StatusCode::kUnsupported, label + ": no CUDA device to compile a kernel for");
  std::shared_ptr<Entry> e;
  {
    std::lock_guard<std::mutex> lock(g_cache_mutex);
    auto& slot = cache()[{key, arch}];
    if (!slot) slot = std::make_shared<Entry>();
    e = slot;
  }
  std::lock_guard<std::mutex> lock(e->m);  // one compile per entry; other entries compile in parallel
  if (!e->done) {
    e->status = compile(*e, make_source(), names, arch, label);
    e->done = true;
  }
  if (!e->status.ok()) return e->status;
  return &e->kernels;
}

}  // namespace kiln::cuda
