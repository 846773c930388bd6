// kiln doctor [FILE.kiln]: this machine's GPU and libraries, and whether an engine can run here.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "kiln/device.h"
#include "cli_common.h"

namespace kiln::cli {

namespace {

struct DoctorOptions {
  std::string engine;
  bool json = false;
};

std::string cuda_version(int v) { return v ? fmt::format("{}.{}", v / 1000, (v % 1000) / 10) : "none"; }

int run_doctor(const DoctorOptions& o) {
  GpuInfo g = probe_gpu();
  nlohmann::json j = {{"kiln_version", kVersion},
                      {"gpu_count", g.count},
                      {"gpu", g.name},
                      {"sm", g.count ? fmt::format("{}.{}", g.sm_major, g.sm_minor) : ""},
                      {"cuda_driver", cuda_version(g.driver_version)},
                      {"cuda_runtime", cuda_version(g.runtime_version)},
                      {"cublaslt", g.cublaslt_version ? fmt::format("{}.{}.{}", g.cublaslt_version / 10000, (g.cublaslt_version / 100) % 100, g.cublaslt_version % 100) : "none"},
                      {"cudnn", g.cudnn_version ? fmt::format("{}.{}.{}", g.cudnn_version / 10000, (g.cudnn_version / 100) % 100, g.cudnn_version % 100) : "none"},
                      {"nvrtc", g.nvrtc_major ? fmt::format("{}.{}", g.nvrtc_major, g.nvrtc_minor) : "none"},
                      {"cuda_kernels_sm", compiled_sm()},
                      {"cuda_backend", cuda_backend_available()},
                      {"note", g.count ? "" : g.error}};
  int rc = 0;
  if (!o.engine.empty()) {
    auto e = Engine::load(o.engine);
    j["engine"] = {{"path", o.engine}, {"runs_here", e.ok()}, {"reason", e.ok() ? "compatible" : e.status().message()}};
    if (!e.ok()) rc = 1;
  }
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return rc;
  }
  std::cout << fmt::format("kiln {}\n", kVersion);
  if (g.count)
    std::cout << fmt::format("GPU: {} (sm_{}{}), {} device(s)\n", g.name, g.sm_major, g.sm_minor, g.count);
  else
    std::cout << fmt::format("GPU: none ({})\n", g.error);
  std::cout << fmt::format("CUDA driver: {}, CUDA runtime: {}, cuBLASLt: {}, cuDNN: {}, NVRTC: {}, kernels built for "
                           "sm_{}\n",
                           cuda_version(g.driver_version), cuda_version(g.runtime_version),
                           j["cublaslt"].get<std::string>(), j["cudnn"].get<std::string>(),
                           j["nvrtc"].get<std::string>(), compiled_sm());
  std::cout << fmt::format("backends: cpu{}\n", cuda_backend_available() ? ", cuda" : " (cuda: " + cuda_unavailable_reason() + ")");
  if (!o.engine.empty())
    std::cout << fmt::format("engine {}: {}\n", o.engine,
                             j["engine"]["runs_here"].get<bool>() ? "can run here" : "cannot run here: " + j["engine"]["reason"].get<std::string>());
  return rc;
}

}  // namespace

void add_doctor_command(CLI::App& app) {
  auto o = std::make_shared<DoctorOptions>();
  auto* cmd = app.add_subcommand("doctor", "Show GPU, driver and CUDA versions; check whether an engine can run here");
  cmd->add_option("engine", o->engine, "Engine file (.kiln) to check");
  cmd->add_flag("--json", o->json, "Print as JSON");
  cmd->callback([o] { std::exit(run_doctor(*o)); });
}

}  // namespace kiln::cli
