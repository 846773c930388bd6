// kiln bench's timed loops (see bench_streams.h).
#include "bench_streams.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <latch>
#include <thread>

#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace kiln::cli {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// --max-seconds: warm-up may use a quarter of it and timed runs the rest, each keeping at least one run, so a
// slow engine still gives a number instead of running for an hour.
struct Budget {
  double seconds;
  Clock::time_point start = Clock::now();
  bool warmup_over(int done) const { return seconds > 0 && done > 0 && ms_since(start) > 250 * seconds; }
  bool timed_over(int done) const { return seconds > 0 && done > 0 && ms_since(start) > 1000 * seconds; }
};

// Whether the timed loop of one stream has done its share: --iters runs, or --duration seconds of them.
bool loop_done(const LoopLimits& l, int done, Clock::time_point window_start) {
  if (l.duration_s > 0) return done > 0 && ms_since(window_start) >= 1000 * l.duration_s;
  return done >= l.iters;
}

// Vectors sized for the run ahead, but not for an --iters meant only to be cut by --max-seconds.
void reserve(StreamSamples& s, const LoopLimits& l, bool gpu, bool host_io) {
  const size_t n = static_cast<size_t>(std::clamp(l.duration_s > 0 ? 4096 : l.iters, 1, 1 << 16));
  s.latency_ms.reserve(n);
  s.host_ms.reserve(n);
  if (gpu) s.enqueue_ms.reserve(n);
  if (gpu && host_io) {
    s.h2d_ms.reserve(n);
    s.compute_ms.reserve(n);
    s.d2h_ms.reserve(n);
  }
}

}  // namespace

// One context with its buffers and, on CUDA, its stream and events. Members are destroyed in reverse order:
// the context first (its destructor may still wait on the stream, and a captured CUDA graph points into the
// buffers), then the events and stream, then the buffers.
struct StreamSet::Lane {
  std::unique_ptr<IoBuffers> bufs;
#ifdef KILN_WITH_CUDA
  cudaStream_t stream = nullptr;
  cudaEvent_t ev[4] = {nullptr, nullptr, nullptr,
                       nullptr};  // before H2D, before compute, after compute, after D2H
#endif
  std::optional<ExecutionContext> ctx;

  ~Lane() {
    ctx.reset();
#ifdef KILN_WITH_CUDA
    for (cudaEvent_t e : ev)
      if (e) cudaEventDestroy(e);
    if (stream) cudaStreamDestroy(stream);
#endif
  }

#ifdef KILN_WITH_CUDA
  Status init_cuda() {
    KILN_RETURN_IF_ERROR(
        cuda_status(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate"));
    for (cudaEvent_t& e : ev) KILN_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&e), "cudaEventCreate"));
    return Status();
  }

  Result<float> elapsed(int from, int to) {
    float ms = 0;
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventElapsedTime(&ms, ev[from], ev[to]), "cudaEventElapsedTime"));
    return ms;
  }

  // One run bracketed by events on the stream and waited for before the next one starts: the number is one
  // inference's latency (host launch gaps included, since the GPU idles through them), not pipelined
  // throughput. With host_io the copies of inputs in and outputs out are bracketed apart.
  Status run_cuda(bool host_io, const std::string& what, StreamSamples* out) {
    const auto t0 = Clock::now();
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventRecord(ev[0], stream), "cudaEventRecord"));
    if (host_io) KILN_RETURN_IF_ERROR(bufs->copy_inputs_to_device(stream).with_context(what));
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventRecord(ev[1], stream), "cudaEventRecord"));
    const auto enqueue_start = Clock::now();
    KILN_RETURN_IF_ERROR(ctx->enqueue(stream).with_context(what));
    const double enqueue_ms = ms_since(enqueue_start);
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventRecord(ev[2], stream), "cudaEventRecord"));
    if (host_io) KILN_RETURN_IF_ERROR(bufs->copy_outputs_to_host(stream).with_context(what));
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventRecord(ev[3], stream), "cudaEventRecord"));
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventSynchronize(ev[3]), what));
    if (!out) return Status();
    out->host_ms.push_back(ms_since(t0));
    out->enqueue_ms.push_back(enqueue_ms);
    float compute = 0;
    KILN_ASSIGN_OR_RETURN(compute, elapsed(1, 2));
    if (!host_io) {
      out->latency_ms.push_back(compute);
      return Status();
    }
    float h2d = 0, d2h = 0, total = 0;
    KILN_ASSIGN_OR_RETURN(h2d, elapsed(0, 1));
    KILN_ASSIGN_OR_RETURN(d2h, elapsed(2, 3));
    KILN_ASSIGN_OR_RETURN(total, elapsed(0, 3));
    out->h2d_ms.push_back(h2d);
    out->compute_ms.push_back(compute);
    out->d2h_ms.push_back(d2h);
    out->latency_ms.push_back(total);
    return Status();
  }
#endif

  // CPU engines run synchronously on the calling thread and read and write the bound host buffers: there is
  // nothing to copy, so --io host changes nothing here.
  Status run_cpu(const std::string& what, StreamSamples* out) {
    const auto t0 = Clock::now();
    KILN_RETURN_IF_ERROR(ctx->enqueue().with_context(what));
    if (out) {
      const double ms = ms_since(t0);
      out->latency_ms.push_back(ms);
      out->host_ms.push_back(ms);
    }
    return Status();
  }

  Status run_once(bool gpu, bool host_io, const std::string& what, StreamSamples* out) {
#ifdef KILN_WITH_CUDA
    if (gpu) return run_cuda(host_io, what, out);
#endif
    (void)gpu;
    (void)host_io;
    return run_cpu(what, out);
  }
};

StreamSet::~StreamSet() = default;

Result<std::unique_ptr<StreamSet>> StreamSet::create(const Engine& e,
                                                     const std::map<std::string, Tensor>& inputs, int profile,
                                                     int n, bool no_cuda_graph, bool host_io) {
  std::unique_ptr<StreamSet> set(new StreamSet());
  set->on_gpu_ = e.info().backend == BackendKind::kCuda;
  set->host_io_ = host_io;
#ifdef KILN_WITH_CUDA
  if (set->on_gpu_) KILN_RETURN_IF_ERROR(cuda_status(cudaGetDevice(&set->device_), "cudaGetDevice"));
#endif
  for (int i = 0; i < n; ++i) {
    const std::string which = n > 1 ? fmt::format("stream {}: ", i) : "";
    auto lane = std::make_unique<Lane>();
    lane->bufs = std::make_unique<IoBuffers>(set->on_gpu_);
#ifdef KILN_WITH_CUDA
    if (set->on_gpu_) KILN_RETURN_IF_ERROR(lane->init_cuda());
#endif
    const auto t0 = Clock::now();
    auto ctx = e.create_context();
    if (!ctx.ok()) return ctx.status().with_context(which + "creating its execution context");
    if (i == 0) set->first_context_ms_ = ms_since(t0);
    lane->ctx.emplace(std::move(*ctx));
    if (profile >= 0) KILN_RETURN_IF_ERROR(lane->ctx->set_profile(profile));
    if (no_cuda_graph) lane->ctx->set_cuda_graphs(false);
    KILN_RETURN_IF_ERROR(
        bind_all(*lane->ctx, inputs, *lane->bufs).with_context(which + "binding its buffers"));
    if (host_io) KILN_RETURN_IF_ERROR(lane->bufs->add_host_copies(inputs));
    set->lanes_.push_back(std::move(lane));
  }
  return set;
}

ExecutionContext& StreamSet::context(size_t i) {
  return *lanes_.at(i)->ctx;
}

void* StreamSet::stream(size_t i) const {
#ifdef KILN_WITH_CUDA
  return lanes_.at(i)->stream;
#else
  (void)i;
  return nullptr;
#endif
}

size_t StreamSet::io_bytes() const {
  size_t n = 0;
  for (const auto& l : lanes_) n += l->bufs->bytes();
  return n;
}

size_t StreamSet::context_bytes() const {
  size_t n = 0;
  for (const auto& l : lanes_) n += l->ctx->device_memory_bytes();
  return n;
}

Result<Measurement> StreamSet::run(const LoopLimits& limits) {
  const size_t n = lanes_.size();
  Measurement m;
  m.timer = on_gpu_ ? "cuda_events" : "steady_clock";
  m.streams.resize(n);
  std::vector<Status> errors(n);
  std::vector<char> arrived(n, 0);
  std::atomic<bool> abort{false};
  // Every stream warms up on its own, then all start timing together, so the window measures them side by
  // side and not one stream's runs while another still captures its CUDA graph.
  std::latch warmed(static_cast<std::ptrdiff_t>(n));
  const Budget budget{limits.max_seconds};

  auto body = [&](size_t i) {
    Lane& lane = *lanes_[i];
    StreamSamples& s = m.streams[i];
    const std::string which = n > 1 ? fmt::format("stream {}: ", i) : "";
    auto record_error = [&](Status st) {
      errors[i] = std::move(st);
      abort = true;
    };
    for (int w = 0; w < limits.warmup && !abort; ++w) {
      if (budget.warmup_over(w)) break;
      // Each is waited for, so the budget sees real time and not just queued launches.
      Status st = lane.run_once(on_gpu_, host_io_, which + "warm-up run " + std::to_string(w), nullptr);
      if (!st.ok()) {
        record_error(std::move(st));
        break;
      }
      ++s.warmup_runs;
    }
    arrived[i] = 1;
    warmed.arrive_and_wait();
    reserve(s, limits, on_gpu_, host_io_);
    s.start = Clock::now();
    for (int r = 0; !abort; ++r) {
      if (loop_done(limits, r, s.start)) break;
      if (budget.timed_over(r)) {
        s.time_limited = true;
        break;
      }
      Status st = lane.run_once(on_gpu_, host_io_, which + "timed run " + std::to_string(r), &s);
      if (!st.ok()) {
        record_error(std::move(st));
        break;
      }
    }
    s.end = Clock::now();
  };
  auto guarded = [&](size_t i) {
    try {
#ifdef KILN_WITH_CUDA
      if (on_gpu_ && n > 1) {
        Status st = cuda_status(cudaSetDevice(device_), "cudaSetDevice");
        if (!st.ok()) {
          errors[i] = std::move(st);
          abort = true;
          arrived[i] = 1;
          warmed.count_down();
          return;
        }
      }
#endif
      body(i);
    } catch (const std::exception& ex) {
      // An exception before the latch (an allocation in a warm-up run) would leave the other streams waiting
      // for this one: it counts down for it.
      errors[i] = Status(StatusCode::kInternal, fmt::format("stream {}: {}", i, ex.what()));
      abort = true;
      if (!arrived[i]) warmed.count_down();
    }
  };

  if (n == 1) {
    guarded(0);
  } else {
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (size_t i = 0; i < n; ++i) threads.emplace_back(guarded, i);
    for (auto& t : threads) t.join();
  }
  for (auto& st : errors)
    if (!st.ok()) return st;
  auto first = m.streams.front().start, last = m.streams.front().end;
  for (const auto& s : m.streams) {
    first = std::min(first, s.start);
    last = std::max(last, s.end);
  }
  m.window_s = std::chrono::duration<double>(last - first).count();
  return m;
}

}  // namespace kiln::cli
