// kiln: compile ONNX models into inference engines and run them.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <new>

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
  kiln::cli::add_lint_command(app);
  kiln::cli::add_compare_command(app);
  kiln::cli::add_extract_command(app);
  // The subcommands report errors as values; whatever still throws (a host allocation the shapes made too
  // large) ends here as a message and exit code 1, never as std::terminate's abort (134).
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::bad_alloc&) {
    std::cerr << "error: out of host memory; use smaller shapes, or set KILN_HOST_MEMORY_LIMIT (docs/cli.md) to "
                 "have kiln name the tensor that is too large\n";
    return 1;
  } catch (const std::exception& e) {
    // Through Status, whose message is escaped: e.what() may quote bytes from the model.
    const kiln::Status s(kiln::StatusCode::kInternal,
                         std::string(e.what()) + "; this is a bug in kiln, please report it with the command and model");
    std::cerr << "error: " << s.to_string() << "\n";
    return 1;
  }
  return 0;
}
