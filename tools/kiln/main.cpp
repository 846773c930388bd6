// kiln: compile ONNX models into inference engines and run them.
#include <CLI/CLI.hpp>

#include "cli_common.h"

int main(int argc, char** argv) {
#ifdef KILN_WITH_CUDA
  constexpr const char* kCudaLine = "cuda (NVIDIA GPUs; built in: `kiln doctor` checks this machine's GPU)";
#else
  constexpr const char* kCudaLine = "cuda (not in this build: configured with -DKILN_WITH_CUDA=OFF)";
#endif
  CLI::App app{std::string("kiln: compile ONNX models into fast inference engines and run them.\n"
                           "Backends: cpu (reference, always present) and ") +
               kCudaLine + "."};
  app.set_version_flag("--version", std::string("kiln ") + kiln::kVersion);
  app.require_subcommand(1);
  kiln::cli::add_build_command(app);
  kiln::cli::add_run_command(app);
  kiln::cli::add_inspect_command(app);
  kiln::cli::add_doctor_command(app);
  kiln::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
