// kiln bench's flags, shared by the pieces of the command (inputs, timing loops, sweep, report).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::cli {

struct BenchOptions {
  std::string engine;
  std::vector<std::string> shapes, inputs;
  uint64_t seed = 0;
  int iters = 200, warmup = 20, top = 30, profile_runs = 10, opt_profile = 0;
  int streams = 1;
  double max_seconds = 0;  // 0: no limit
  double duration = 0;     // 0: --iters decides; otherwise the timed window in seconds (wins over --iters)
  double cv_limit_percent = 2.5;
  std::string html;          // --html FILE: also write the report as one self-contained page
  std::string io = "device";  // "device": inputs stay bound on the device; "host": copies timed in the loop
  bool no_cuda_graph = false, profile = false, json = false, quiet = false, sweep = false;
  bool opt_profile_given = false;

  bool host_io() const { return io == "host"; }
};

}  // namespace kiln::cli
