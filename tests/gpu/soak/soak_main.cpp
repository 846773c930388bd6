// kiln_soak: many threads share one CUDA engine for minutes, each with its own context and stream, running
// mixed shapes across the optimization profile; every output is checked against the CPU backend's output for
// the same input, and device and host memory are sampled so a leak shows as growth.
//   kiln_soak [--model tiny_attention|tiny_cnn|PATH.onnx] [--threads 8] [--seconds 480] [--sample-s 5]
//             [--shapes 12] [--out DIR] [--rtol 1e-3] [--atol 1e-4] [--no-memory-check] [--no-tactic-timing]
// Writes soak.json and soak.md into --out (default $OUT, else the current folder) and prints a summary.
// Fails (exit 1) on any mismatch, any error, or memory growth: after the warm-up (the first 10% of the run, at
// least 10 s, during which every context meets every shape), a sample above the warm-up's peak by more than
// 1% + 8 MiB (device) or 2% + 32 MiB (host RSS) is growth. --no-memory-check reports without failing (for
// runs under compute-sanitizer, whose own allocations move both figures). --no-tactic-timing builds without
// timing tactics (under racecheck, timing every candidate kernel at build took longer than the whole run).
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kiln/kiln.h"
#include "support/model_builder.h"

using namespace kiln;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

struct Options {
  std::string model = "tiny_attention";
  int threads = 8;
  double seconds = 480;
  double sample_s = 5;
  int shapes = 12;
  std::string out;
  double rtol = 1e-3, atol = 1e-4;
  bool memory_check = true;
  bool tactic_timing = true;
};

// One input shape with two inputs of it (so a replayed CUDA graph must read new values) and their references.
struct Case {
  std::vector<int64_t> dims;
  std::vector<Tensor> inputs, want;
};

struct ModelSpec {
  std::string path, input, output;
  std::vector<int64_t> min, opt, max;
};

Result<ModelSpec> model_spec(const std::string& model) {
  const std::string dir = std::string(KILN_SOURCE_DIR) + "/models/";
  if (model == "tiny_attention")
    return ModelSpec{dir + "tiny_attention.onnx", "tokens", "out", {1, 1, 32}, {8, 16, 32}, {32, 64, 32}};
  if (model == "tiny_cnn")
    return ModelSpec{dir + "tiny_cnn.onnx", "image", "probs", {1, 3, 32, 32}, {8, 3, 32, 32}, {32, 3, 32, 32}};
  return Status(StatusCode::kInvalidArgument,
                fmt::format("--model {}: expected tiny_attention or tiny_cnn (models/ holds them)", model));
}

// `count` shapes spread over min..max (min and max included), deterministic: dim i of shape k steps through
// its range at a different rate per dim, so batch and sequence vary independently.
std::vector<std::vector<int64_t>> spread_shapes(const ModelSpec& m, int count) {
  std::vector<std::vector<int64_t>> out = {m.min, m.max, m.opt};
  std::mt19937_64 rng(20261206);
  while (static_cast<int>(out.size()) < count) {
    std::vector<int64_t> d = m.min;
    for (size_t i = 0; i < d.size(); ++i)
      if (m.max[i] > m.min[i]) d[i] = m.min[i] + static_cast<int64_t>(rng() % (m.max[i] - m.min[i] + 1));
    bool seen = false;
    for (const auto& o : out) seen |= o == d;
    if (!seen) out.push_back(d);
  }
  out.resize(static_cast<size_t>(count));
  return out;
}

BuildConfig config(BackendKind backend, const ModelSpec& m, bool tactic_timing) {
  BuildConfig cfg;
  cfg.backend = backend;
  cfg.tactic_timing = tactic_timing;
  OptimizationProfile p;
  p.inputs[m.input] = {m.min, m.opt, m.max};
  cfg.profiles = {p};
  return cfg;
}

// First differing element, or empty when every element is within tolerance.
std::string mismatch(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.dims() != want.dims())
    return fmt::format("dims {} vs reference {}", dims_to_string(got.dims()), dims_to_string(want.dims()));
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double a = got.get_as_double(i), e = want.get_as_double(i);
    if (std::isnan(a) != std::isnan(e) || std::fabs(a - e) > atol + rtol * std::fabs(e))
      return fmt::format("element {}: {} vs reference {}", i, a, e);
  }
  return "";
}

// Latency histogram in 1/8-octave bins from 1 us: fixed size, so recording it does not grow host memory.
struct Histogram {
  static constexpr int kBins = 256;
  std::array<uint64_t, kBins> bins{};
  void add(double us) {
    const int b = us <= 1 ? 0 : std::min(kBins - 1, static_cast<int>(8 * std::log2(us)));
    ++bins[static_cast<size_t>(b)];
  }
  void merge(const Histogram& o) {
    for (int i = 0; i < kBins; ++i) bins[i] += o.bins[i];
  }
  // Upper edge of the bin holding quantile q, in us.
  double quantile(double q) const {
    uint64_t n = 0;
    for (auto c : bins) n += c;
    uint64_t seen = 0;
    for (int i = 0; i < kBins; ++i) {
      seen += bins[i];
      if (n && static_cast<double>(seen) >= q * static_cast<double>(n)) return std::exp2((i + 1) / 8.0);
    }
    return 0;
  }
};

struct ThreadResult {
  uint64_t runs = 0, enqueues = 0, infers = 0, errors = 0, mismatches = 0;
  std::vector<std::string> first_failures;  // at most a few, for the report
  Histogram latency;
  void fail(std::string what) {
    if (first_failures.size() < 5) first_failures.push_back(std::move(what));
  }
};

struct Sample {
  double t = 0;
  size_t device_used = 0, host_rss = 0;
  uint64_t runs = 0;
};

size_t host_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return static_cast<size_t>(std::strtoull(line.c_str() + 6, nullptr, 10)) * 1024;
  return 0;
}

size_t device_used_bytes() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
  return total_b - free_b;
}

// One worker: its own context and stream; three of four runs through enqueue() with its own device buffers
// (the serving path), one through infer() (the convenience path, with the context's staging buffers).
void worker(int id, const Engine& engine, const ModelSpec& m, const std::vector<Case>& cases, const Options& o,
            Clock::time_point stop, std::atomic<uint64_t>& total_runs, ThreadResult& r) {
  auto ctx = engine.create_context();
  if (!ctx.ok()) {
    ++r.errors;
    r.fail(fmt::format("thread {}: create_context: {}", id, ctx.status().to_string()));
    return;
  }
  size_t max_in = 0, max_out = 0;
  for (const auto& c : cases) {
    max_in = std::max(max_in, c.inputs[0].nbytes());
    max_out = std::max(max_out, c.want[0].nbytes());
  }
  cudaStream_t stream = nullptr;
  void *d_in = nullptr, *d_out = nullptr;
  if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess ||
      cudaMalloc(&d_in, max_in) != cudaSuccess || cudaMalloc(&d_out, max_out) != cudaSuccess) {
    ++r.errors;
    r.fail(fmt::format("thread {}: stream or buffers: {}", id, cudaGetErrorString(cudaGetLastError())));
    return;
  }
  std::mt19937_64 rng(1000 + static_cast<uint64_t>(id));
  Status bound = ctx->set_tensor_address(m.input, d_in, max_in);
  if (bound.ok()) bound = ctx->set_tensor_address(m.output, d_out, max_out);
  if (!bound.ok()) {
    ++r.errors;
    r.fail(fmt::format("thread {}: binding: {}", id, bound.to_string()));
  }
  while (bound.ok() && Clock::now() < stop) {
    const Case& c = cases[rng() % cases.size()];
    const size_t k = rng() % c.inputs.size();
    const Tensor& x = c.inputs[k];
    const bool use_infer = rng() % 4 == 0;
    const auto t0 = Clock::now();
    Tensor got(DType::kF32, c.want[k].dims());
    std::string where;
    Status st;
    if (use_infer) {
      auto out = ctx->infer({{m.input, x}});
      st = out.ok() ? Status() : out.status();
      if (out.ok()) got = out->at(m.output);
      where = "infer";
      ++r.infers;
    } else {
      st = ctx->set_input_shape(m.input, x.dims());
      if (st.ok() && cudaMemcpyAsync(d_in, x.raw(), x.nbytes(), cudaMemcpyHostToDevice, stream) != cudaSuccess)
        st = Status(StatusCode::kInternal, "cudaMemcpyAsync to the input buffer failed");
      if (st.ok()) st = ctx->enqueue(stream);
      if (st.ok() && cudaMemcpyAsync(got.raw(), d_out, got.nbytes(), cudaMemcpyDeviceToHost, stream) != cudaSuccess)
        st = Status(StatusCode::kInternal, "cudaMemcpyAsync from the output buffer failed");
      if (st.ok() && cudaStreamSynchronize(stream) != cudaSuccess)
        st = Status(StatusCode::kInternal, std::string("stream: ") + cudaGetErrorString(cudaGetLastError()));
      where = "enqueue";
      ++r.enqueues;
    }
    r.latency.add(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    ++r.runs;
    total_runs.fetch_add(1, std::memory_order_relaxed);
    if (!st.ok()) {
      ++r.errors;
      r.fail(fmt::format("thread {} {} {}: {}", id, where, dims_to_string(x.dims()), st.to_string()));
      continue;
    }
    const std::string bad = mismatch(got, c.want[k], o.rtol, o.atol);
    if (!bad.empty()) {
      ++r.mismatches;
      r.fail(fmt::format("thread {} {} {} input {}: {}", id, where, dims_to_string(x.dims()), k, bad));
    }
  }
  cudaStreamSynchronize(stream);
  cudaFree(d_in);
  cudaFree(d_out);
  cudaStreamDestroy(stream);
}

// The memory rule (see the top of the file): the worst excess of a post-warm-up sample over the warm-up peak.
struct Growth {
  size_t warm_peak = 0, after_max = 0, allowed = 0;
  bool grew() const { return after_max > warm_peak + allowed; }
};
Growth growth(const std::vector<Sample>& s, double warmup_s, size_t Sample::*field, double frac, size_t slack) {
  Growth g;
  for (const auto& x : s) {
    if (x.t <= warmup_s) g.warm_peak = std::max(g.warm_peak, x.*field);
    else g.after_max = std::max(g.after_max, x.*field);
  }
  g.allowed = static_cast<size_t>(frac * static_cast<double>(g.warm_peak)) + slack;
  return g;
}

double mib(size_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

Result<Options> parse(int argc, char** argv) {
  Options o;
  if (const char* out = std::getenv("OUT")) o.out = out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= argc) return Status(StatusCode::kInvalidArgument, a + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "--no-memory-check") {
      o.memory_check = false;
      continue;
    }
    if (a == "--no-tactic-timing") {
      o.tactic_timing = false;
      continue;
    }
    KILN_ASSIGN_OR_RETURN(std::string v, value());
    if (a == "--model") o.model = v;
    else if (a == "--threads") o.threads = std::atoi(v.c_str());
    else if (a == "--seconds") o.seconds = std::atof(v.c_str());
    else if (a == "--sample-s") o.sample_s = std::atof(v.c_str());
    else if (a == "--shapes") o.shapes = std::atoi(v.c_str());
    else if (a == "--out") o.out = v;
    else if (a == "--rtol") o.rtol = std::atof(v.c_str());
    else if (a == "--atol") o.atol = std::atof(v.c_str());
    else return Status(StatusCode::kInvalidArgument, "unknown option " + a + " (see tests/gpu/soak/soak_main.cpp)");
  }
  if (o.threads < 1 || o.seconds <= 0 || o.sample_s <= 0 || o.shapes < 3)
    return Status(StatusCode::kInvalidArgument, "--threads >= 1, --seconds > 0, --sample-s > 0, --shapes >= 3");
  if (o.out.empty()) o.out = ".";
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  auto opts = parse(argc, argv);
  if (!opts.ok()) {
    std::cerr << "kiln_soak: " << opts.status().message() << "\n";
    return 2;
  }
  const Options& o = *opts;
  auto spec = model_spec(o.model);
  if (!spec.ok()) {
    std::cerr << "kiln_soak: " << spec.status().message() << "\n";
    return 2;
  }
  const ModelSpec& m = *spec;
  const auto t_build = Clock::now();
  auto gpu = Builder::build_from_file(m.path, config(BackendKind::kCuda, m, o.tactic_timing));
  auto cpu = Builder::build_from_file(m.path, config(BackendKind::kCpu, m, true));
  if (!gpu.ok() || !cpu.ok()) {
    std::cerr << "kiln_soak: build failed: " << (gpu.ok() ? cpu.status() : gpu.status()).to_string() << "\n";
    return 1;
  }
  if (gpu->info().backend != BackendKind::kCuda) {
    std::cerr << "kiln_soak: the engine is not a CUDA engine (no usable GPU?)\n";
    return 1;
  }
  const double build_s = std::chrono::duration<double>(Clock::now() - t_build).count();
  // Progress on stderr, so a run cut short (a time limit under compute-sanitizer) shows how far it got.
  std::cerr << fmt::format("kiln_soak: built in {:.1f} s; computing the CPU references\n", build_s);
  auto ref_ctx = cpu->create_context();
  if (!ref_ctx.ok()) {
    std::cerr << "kiln_soak: " << ref_ctx.status().to_string() << "\n";
    return 1;
  }
  std::vector<Case> cases;
  uint64_t seed = 1;
  for (const auto& dims : spread_shapes(m, o.shapes)) {
    Case c;
    c.dims = dims;
    for (int k = 0; k < 2; ++k) {
      c.inputs.push_back(testing::random_f32(dims, seed++));
      auto want = ref_ctx->infer({{m.input, c.inputs.back()}});
      if (!want.ok()) {
        std::cerr << "kiln_soak: CPU reference at " << dims_to_string(dims) << ": " << want.status().to_string() << "\n";
        return 1;
      }
      c.want.push_back(want->at(m.output));
    }
    cases.push_back(std::move(c));
  }

  std::cerr << fmt::format("kiln_soak: {} shapes ready; {} threads run for {:.0f} s\n", cases.size(), o.threads, o.seconds);
  std::vector<ThreadResult> results(static_cast<size_t>(o.threads));
  std::atomic<uint64_t> total_runs{0};
  std::vector<Sample> samples;
  const auto t0 = Clock::now();
  const auto stop = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  auto sample = [&] {
    samples.push_back({std::chrono::duration<double>(Clock::now() - t0).count(), device_used_bytes(),
                       host_rss_bytes(), total_runs.load()});
  };
  sample();
  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i)
    threads.emplace_back(worker, i, std::cref(*gpu), std::cref(m), std::cref(cases), std::cref(o), stop,
                         std::ref(total_runs), std::ref(results[static_cast<size_t>(i)]));
  auto next = t0;
  while (Clock::now() < stop) {
    next += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.sample_s));
    std::this_thread::sleep_until(std::min(next, stop));
    sample();
  }
  for (auto& t : threads) t.join();
  sample();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();

  ThreadResult all;
  for (const auto& r : results) {
    all.runs += r.runs;
    all.enqueues += r.enqueues;
    all.infers += r.infers;
    all.errors += r.errors;
    all.mismatches += r.mismatches;
    all.latency.merge(r.latency);
    for (const auto& f : r.first_failures) all.fail(f);
  }
  const double warmup_s = std::max(10.0, 0.1 * o.seconds);
  const Growth dev = growth(samples, warmup_s, &Sample::device_used, 0.01, size_t{8} << 20);
  const Growth host = growth(samples, warmup_s, &Sample::host_rss, 0.02, size_t{32} << 20);
  const bool enough_samples = samples.back().t > warmup_s;
  const bool memory_grew = enough_samples && (dev.grew() || host.grew());
  const bool pass = all.errors == 0 && all.mismatches == 0 && all.runs > 0 && (!o.memory_check || !memory_grew);

  json j = {{"model", o.model},
            {"threads", o.threads},
            {"seconds", elapsed},
            {"shapes", cases.size()},
            {"build_s", build_s},
            {"runs", all.runs},
            {"enqueue_runs", all.enqueues},
            {"infer_runs", all.infers},
            {"runs_per_s", static_cast<double>(all.runs) / elapsed},
            {"latency_us", {{"p50", all.latency.quantile(0.5)}, {"p99", all.latency.quantile(0.99)}}},
            {"errors", all.errors},
            {"mismatches", all.mismatches},
            {"first_failures", all.first_failures},
            {"warmup_s", warmup_s},
            {"memory_check", o.memory_check},
            {"device_used_mib",
             {{"first", mib(samples.front().device_used)},
              {"last", mib(samples.back().device_used)},
              {"max", mib(std::max(dev.warm_peak, dev.after_max))},
              {"warmup_peak", mib(dev.warm_peak)},
              {"after_warmup_max", mib(dev.after_max)},
              {"grew", dev.grew()}}},
            {"host_rss_mib",
             {{"first", mib(samples.front().host_rss)},
              {"last", mib(samples.back().host_rss)},
              {"max", mib(std::max(host.warm_peak, host.after_max))},
              {"warmup_peak", mib(host.warm_peak)},
              {"after_warmup_max", mib(host.after_max)},
              {"grew", host.grew()}}},
            {"pass", pass}};
  json js = json::array();
  for (const auto& s : samples) js.push_back({s.t, mib(s.device_used), mib(s.host_rss), s.runs});
  j["samples_t_devmib_rssmib_runs"] = js;

  std::string md = fmt::format(
      "# kiln_soak: {} threads on one {} engine, {:.0f} s\n\n"
      "Result: **{}**. {} runs ({} enqueue, {} infer) over {} shapes of the profile, {:.0f} runs/s, latency p50 "
      "{:.0f} us p99 {:.0f} us; {} errors, {} mismatches against the CPU backend.\n\n"
      "| memory (MiB) | first | warm-up peak | max after warm-up | last | grew |\n|---|---|---|---|---|---|\n"
      "| device used | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {} |\n| host RSS | {:.1f} | {:.1f} | {:.1f} | {:.1f} | {} |\n\n"
      "Warm-up {:.0f} s; growth = a later sample above the warm-up peak by more than 1% + 8 MiB (device) or "
      "2% + 32 MiB (host){}.\n",
      o.threads, o.model, elapsed, pass ? "PASS" : "FAIL", all.runs, all.enqueues, all.infers, cases.size(),
      static_cast<double>(all.runs) / elapsed, all.latency.quantile(0.5), all.latency.quantile(0.99), all.errors,
      all.mismatches, mib(samples.front().device_used), mib(dev.warm_peak), mib(dev.after_max),
      mib(samples.back().device_used), dev.grew() ? "yes" : "no", mib(samples.front().host_rss), mib(host.warm_peak),
      mib(host.after_max), mib(samples.back().host_rss), host.grew() ? "yes" : "no", warmup_s,
      o.memory_check ? "" : " (not enforced: --no-memory-check)");
  for (const auto& f : all.first_failures) md += "- " + f + "\n";
  std::ofstream(o.out + "/soak.json") << j.dump(1) << "\n";
  std::ofstream(o.out + "/soak.md") << md;
  std::cout << md;
  if (!enough_samples) std::cout << "note: the run ended within its warm-up; memory growth was not judged\n";
  return pass ? 0 : 1;
}
