// kiln bench's timed loops: N execution contexts of one engine (--streams N), each with its own I/O buffers
// and, on CUDA, its own stream, run concurrently from one thread each over a common measured window.
#pragma once
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench_io.h"
#include "kiln/kiln.h"

namespace kiln::cli {

// When the timed loop ends: after `iters` runs per stream, or after `duration_s` seconds when that is set
// (which then wins over iters); `max_seconds` caps warm-up (a quarter of it) and timed runs together, keeping
// at least one run of each.
struct LoopLimits {
  int warmup = 20;
  int iters = 200;
  double duration_s = 0;
  double max_seconds = 0;
};

// One stream's timed runs, one value per run in each vector that its timer fills.
struct StreamSamples {
  std::vector<double>
      latency_ms;  // CUDA events around the run (copies included with --io host), or steady_clock
  std::vector<double> host_ms;                     // enqueue + wait as the calling thread sees it
  std::vector<double> enqueue_ms;                  // CUDA: host time inside enqueue() alone
  std::vector<double> h2d_ms, compute_ms, d2h_ms;  // --io host on CUDA: the run's three parts, CUDA events
  int warmup_runs = 0;
  bool time_limited = false;                         // --max-seconds ended the loop early
  std::chrono::steady_clock::time_point start, end;  // this stream's timed window
};

struct Measurement {
  std::vector<StreamSamples> streams;
  std::string timer;    // "cuda_events" or "steady_clock"
  double window_s = 0;  // from the first stream's first timed run to the last stream's last
  size_t runs() const {
    size_t n = 0;
    for (const auto& s : streams) n += s.latency_ms.size();
    return n;
  }
};

class StreamSet {
 public:
  // n contexts at `profile` with `inputs` bound; the first context's creation is timed (it uploads the
  // weights). host_io: time copies of inputs and outputs between page-locked host memory and the device.
  static Result<std::unique_ptr<StreamSet>> create(const Engine& e,
                                                   const std::map<std::string, Tensor>& inputs, int profile,
                                                   int n, bool no_cuda_graph, bool host_io);
  ~StreamSet();
  StreamSet(const StreamSet&) = delete;
  StreamSet& operator=(const StreamSet&) = delete;

  // Warms every stream up, then times all of them together.
  Result<Measurement> run(const LoopLimits& limits);

  size_t size() const { return lanes_.size(); }
  ExecutionContext& context(size_t i);
  void* stream(size_t i) const;  // cudaStream_t on CUDA engines, null on CPU engines
  double first_context_ms() const { return first_context_ms_; }
  size_t io_bytes() const;       // every stream's bound buffers
  size_t context_bytes() const;  // every context's device memory

  struct Lane;

 private:
  StreamSet() = default;
  std::vector<std::unique_ptr<Lane>> lanes_;
  bool on_gpu_ = false, host_io_ = false;
  double first_context_ms_ = 0;
  int device_ = 0;
};

}  // namespace kiln::cli
