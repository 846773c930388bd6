// kiln bench's report (see bench_report.h).
#include "bench_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include "kiln/device.h"
#include "bench_inputs.h"
#include "bench_profile.h"
#include "bench_stats.h"
#include "charts.h"

namespace kiln::cli {

namespace {

nlohmann::json engine_json(const BenchOptions& o, const Engine& e, const ExecutionContext& ctx) {
  const EngineInfo& info = e.info();
  std::error_code ec;
  auto size = std::filesystem::file_size(o.engine, ec);
  nlohmann::json j = {{"path", o.engine},
                      {"file_bytes", ec ? 0 : static_cast<uint64_t>(size)},
                      {"backend", std::string(backend_name(info.backend))},
                      {"precision", info.precision},
                      {"kiln_version", info.kiln_version},
                      {"format_version", info.format_version},
                      {"nodes", info.num_nodes},
                      {"tactics", info.tactics},
                      {"weight_bytes", info.weight_bytes},
                      {"cuda_graphs", info.backend == BackendKind::kCuda && ctx.cuda_graphs()}};
  if (!info.gpu_json.empty()) j["built_for"] = nlohmann::json::parse(info.gpu_json, nullptr, false);
  return j;
}

// Every stream's values of one field, pooled.
std::vector<double> pooled(const Measurement& m, std::vector<double> StreamSamples::*field) {
  std::vector<double> v;
  for (const auto& s : m.streams) v.insert(v.end(), (s.*field).begin(), (s.*field).end());
  return v;
}

nlohmann::json optional_stats(const std::vector<double>& v) {
  return v.empty() ? nlohmann::json(nullptr) : stats_json(stats_of(v));
}

// The copies --io host adds to the loop, or why there are none.
nlohmann::json io_json(const BenchOptions& o, const Measurement& m, bool on_gpu) {
  nlohmann::json io = {{"mode", o.io}, {"copies_timed", o.host_io() && on_gpu}};
  io["h2d_ms"] = optional_stats(pooled(m, &StreamSamples::h2d_ms));
  io["compute_ms"] = optional_stats(pooled(m, &StreamSamples::compute_ms));
  io["d2h_ms"] = optional_stats(pooled(m, &StreamSamples::d2h_ms));
  if (!o.host_io())
    io["note"] = "inputs stay bound in the engine's memory; no copies are timed (--io host adds them)";
  else if (!on_gpu)
    io["note"] =
        "H2D and D2H are not applicable on the CPU backend (0 ms): it reads and writes the bound host "
        "memory itself, there is nothing to copy";
  else
    io["note"] = "each run copies every input from page-locked host memory to the GPU and every output back";
  return io;
}

// Enough bins to show the shape of a few hundred runs, few enough that each holds several.
nlohmann::json histogram_json(const std::vector<double>& latencies) {
  constexpr int kMaxBins = 40;
  const int bins = std::clamp(static_cast<int>(2 * std::sqrt(static_cast<double>(latencies.size()))), 1, kMaxBins);
  const Histogram h = histogram_of(latencies, bins);
  return {{"lo_ms", h.lo}, {"hi_ms", h.hi}, {"counts", h.counts}};
}

}  // namespace

nlohmann::json build_info() {
  GpuInfo g = probe_gpu();
  auto ver = [](int v) { return v ? fmt::format("{}.{}", v / 1000, (v % 1000) / 10) : std::string("none"); };
  nlohmann::json j = {
    {"kiln_version", kVersion},
#if defined(__clang__)
    {"compiler", std::string("clang ") + __clang_version__},
#elif defined(__GNUC__)
    {"compiler", std::string("gcc ") + __VERSION__},
#else
    {"compiler", "unknown"},
#endif
#ifdef NDEBUG
    {"assertions", false},
#else
    {"assertions", true},
#endif
    {"cuda_kernels_sm", compiled_sm()},
    {"cuda_runtime", ver(g.runtime_version)},
    {"cuda_driver", ver(g.driver_version)},
    {"gpu", g.count ? g.name : ""},
    {"sm", g.count ? fmt::format("{}.{}", g.sm_major, g.sm_minor) : ""}
  };
  return j;
}

nlohmann::json result_json(const BenchOptions& o, const RunSetup& setup, const Measurement& m) {
  const Engine& engine = *setup.engine;
  StreamSet& set = *setup.streams;
  ExecutionContext& ctx = set.context(0);
  const bool on_gpu = engine.info().backend == BackendKind::kCuda;
  nlohmann::json j;
  j["engine"] = engine_json(o, engine, ctx);
  int64_t batch = 1;
  for (const auto& d : engine.inputs()) {
    const auto& dims = setup.inputs->at(d.name).dims();
    j["shapes"][d.name] = dims;
    if (batch == 1 && !dims.empty()) batch = dims[0];
  }
  if (!j.contains("shapes")) j["shapes"] = nlohmann::json::object();
  j["batch"] = batch;
  const double context_ms = set.first_context_ms();
  j["load_ms"] = {{"engine_file", setup.load_file_ms},
                  {"context", context_ms},
                  {"total", setup.load_file_ms + context_ms}};
  j["streams"] = set.size();
  int warmup = 0;
  bool time_limited = false;
  for (const auto& s : m.streams) {
    warmup += s.warmup_runs;
    time_limited |= s.time_limited;
  }
  j["iterations"] = m.runs();
  j["requested_iterations"] = o.duration > 0 ? nlohmann::json(nullptr) : nlohmann::json(o.iters);
  j["requested_duration_s"] = o.duration > 0 ? nlohmann::json(o.duration) : nlohmann::json(nullptr);
  j["measured_s"] = m.window_s;
  j["warmup"] = warmup;
  j["time_limited"] = time_limited;
  j["seed"] = o.seed;
  j["timer"] = m.timer;

  const std::vector<double> latencies = pooled(m, &StreamSamples::latency_ms);
  const Stats lat = stats_of(latencies);
  j["latency_ms"] = stats_json(lat);
  j["latency_histogram"] = histogram_json(latencies);
  j["host_ms"] = stats_json(stats_of(pooled(m, &StreamSamples::host_ms)));
  const std::vector<double> enqueue = pooled(m, &StreamSamples::enqueue_ms);
  j["enqueue_ms"] = optional_stats(enqueue);
  j["io"] = io_json(o, m, on_gpu);

  nlohmann::json per_stream = nlohmann::json::array();
  for (size_t i = 0; i < m.streams.size(); ++i) {
    const auto& s = m.streams[i];
    const double secs = std::chrono::duration<double>(s.end - s.start).count();
    per_stream.push_back(
        {{"stream", i},
         {"iterations", s.latency_ms.size()},
         {"warmup", s.warmup_runs},
         {"measured_s", secs},
         {"inferences_per_s", secs > 0 ? static_cast<double>(s.latency_ms.size()) / secs : 0.0},
         {"latency_ms", stats_json(stats_of(s.latency_ms))}});
  }
  j["per_stream"] = std::move(per_stream);

  // One stream waits for each run before the next, so its throughput is the inverse of the mean latency
  // (loop overhead left out). Several streams overlap: what they completed together over the wall-clock
  // window.
  double per_s = 0;
  std::string basis;
  if (set.size() == 1) {
    per_s = lat.mean > 0 ? 1000.0 / lat.mean : 0.0;
    basis = "mean_latency";
  } else {
    per_s = m.window_s > 0 ? static_cast<double>(m.runs()) / m.window_s : 0.0;
    basis = "wall_clock";
  }
  j["throughput"] = {
      {"inferences_per_s", per_s}, {"samples_per_s", per_s * static_cast<double>(batch)}, {"basis", basis}};

  const double cv_limit = o.cv_limit_percent / 100.0;
  std::vector<BenchWarning> warnings = stability_warnings(lat, cv_limit);
  const bool unstable = !warnings.empty();
  bool enqueue_bound = false;
  if (!enqueue.empty()) {
    // The GPU's own time for the run: without the copies when --io host times them.
    const std::vector<double> compute = pooled(m, &StreamSamples::compute_ms);
    auto w = enqueue_warnings(stats_of(enqueue), compute.empty() ? lat : stats_of(compute));
    enqueue_bound = !w.empty();
    warnings.insert(warnings.end(), w.begin(), w.end());
  }
  j["stability"] = {{"cv", lat.cv},
                    {"cv_limit", cv_limit},
                    {"unstable", unstable},
                    {"enqueue_bound", on_gpu ? nlohmann::json(enqueue_bound) : nlohmann::json(nullptr)}};
  j["warnings"] = nlohmann::json::array();
  for (const auto& w : warnings)
    j["warnings"].push_back({{"kind", w.kind}, {"message", w.message}, {"advice", w.advice}});

  const size_t context_bytes = set.context_bytes();
  nlohmann::json mem = {{"context_bytes", context_bytes},
                        {"io_bytes", on_gpu ? set.io_bytes() : 0},
                        {"weight_bytes", on_gpu ? engine.info().weight_bytes : 0}};
  mem["total_bytes"] = context_bytes + mem["io_bytes"].get<size_t>() + mem["weight_bytes"].get<size_t>();
  j["device_memory"] = mem;
  // How the timed runs executed: the first thing to check when a CUDA engine is slower than expected.
  const RunInfo run = ctx.last_run_info();
  j["execution"] = {{"cuda_graph", run.cuda_graph},         {"arena", run.arena},
                    {"arena_bytes", run.arena_bytes},       {"not_captured", run.not_captured},
                    {"gpu_nodes", run.gpu_nodes},           {"host_nodes", run.host_nodes},
                    {"fallback_nodes", run.fallback_nodes}, {"downloads", run.downloads},
                    {"cached_plans", run.cached_plans},     {"plan_cache_limit", run.plan_cache_limit},
                    {"value_keyed_inputs", run.value_keyed_inputs}, {"bundle_member", run.bundle_member}};
  j["build"] = build_info();
  return j;
}

void print_warnings(const nlohmann::json& j, const std::string& prefix, bool advice) {
  for (const auto& w : j["warnings"]) {
    std::cout << "warning: " << prefix << w["message"].get<std::string>();
    if (advice) std::cout << ": " << w["advice"].get<std::string>();
    std::cout << "\n";
  }
}

void print_report(const BenchOptions& o, const nlohmann::json& j) {
  const auto& e = j["engine"];
  const auto& l = j["latency_ms"];
  const bool cuda = e["backend"] == "cuda";
  std::cout << fmt::format(
      "engine: {} ({} backend, {}, {} nodes, {:.1f} MB weights{})\n", e["path"].get<std::string>(),
      e["backend"].get<std::string>(), e["precision"].get<std::string>(), e["nodes"].get<size_t>(),
      e["weight_bytes"].get<size_t>() / 1e6,
      cuda ? (e["cuda_graphs"].get<bool>() ? ", CUDA graphs on" : ", CUDA graphs off") : "");
  std::string shapes;
  for (const auto& [name, dims] : j["shapes"].items())
    shapes +=
        fmt::format("{}{}={}", shapes.empty() ? "" : " ", name, dims_str(dims.get<std::vector<int64_t>>()));
  std::cout << "shapes: " << shapes << "\n";
  if (!j["build"]["gpu"].get<std::string>().empty() && cuda)
    std::cout << fmt::format("GPU: {} (sm_{})\n", j["build"]["gpu"].get<std::string>(),
                             j["build"]["sm"].get<std::string>());
  const size_t streams = j["streams"].get<size_t>();
  std::cout << fmt::format(
      "latency over {} iterations{} ({} warm-up, {}): median {:.4f} ms, mean {:.4f}, p90 {:.4f}, p95 {:.4f}, "
      "p99 {:.4f}, min {:.4f}, max {:.4f}, cv {:.1f}%\n",
      j["iterations"].get<size_t>(), streams > 1 ? fmt::format(" of {} streams", streams) : "",
      j["warmup"].get<int>(), j["timer"].get<std::string>(), l["median"].get<double>(),
      l["mean"].get<double>(), l["p90"].get<double>(), l["p95"].get<double>(), l["p99"].get<double>(),
      l["min"].get<double>(), l["max"].get<double>(), 100 * l["cv"].get<double>());
  if (!j["requested_duration_s"].is_null())
    std::cout << fmt::format("timed window: {:.3f} s (--duration {})\n", j["measured_s"].get<double>(),
                             j["requested_duration_s"].get<double>());
  if (j["time_limited"].get<bool>())
    std::cout << fmt::format("note: --max-seconds stopped the run after {} iterations{}\n",
                             j["iterations"].get<size_t>(),
                             o.duration > 0 ? "" : fmt::format(" of {} per stream", o.iters));
  if (cuda) {
    std::cout << fmt::format("host view (enqueue + wait): median {:.4f} ms",
                             j["host_ms"]["median"].get<double>());
    if (!j["enqueue_ms"].is_null())
      std::cout << fmt::format("; enqueue alone: median {:.4f} ms", j["enqueue_ms"]["median"].get<double>());
    std::cout << "\n";
  }
  if (const auto& io = j["io"]; io["copies_timed"].get<bool>())
    std::cout << fmt::format(
        "host I/O (--io host, medians): H2D {:.4f} ms + compute {:.4f} ms + D2H {:.4f} ms; the latency above "
        "includes the copies\n",
        io["h2d_ms"]["median"].get<double>(), io["compute_ms"]["median"].get<double>(),
        io["d2h_ms"]["median"].get<double>());
  else if (io["mode"] == "host")
    std::cout << "host I/O (--io host): " << io["note"].get<std::string>() << "\n";
  std::cout << fmt::format("load: {:.1f} ms (engine file {:.1f} ms + first context {:.1f} ms)\n",
                           j["load_ms"]["total"].get<double>(), j["load_ms"]["engine_file"].get<double>(),
                           j["load_ms"]["context"].get<double>());
  if (const auto& x = j["execution"]; cuda)
    std::cout << fmt::format(
        "execution: {} ({} GPU nodes, {} host, {} CPU fallback, {} read-backs; arena {:.1f} MB)\n",
        x["cuda_graph"].get<bool>() ? "one CUDA graph launch per run"
                                    : "node by node: " + x["not_captured"].get<std::string>(),
        x["gpu_nodes"].get<int>(), x["host_nodes"].get<int>(), x["fallback_nodes"].get<int>(),
        x["downloads"].get<int>(), x["arena_bytes"].get<size_t>() / 1e6);
  if (const int member = j["execution"]["bundle_member"].get<int>(); member >= 0)
    std::cout << fmt::format("bundle: the runs went to engine {} of the bundle (kiln inspect lists them)\n", member);
  const auto& t = j["throughput"];
  if (streams > 1) {
    std::cout << fmt::format(
        "throughput: {:.1f} inferences/s, {:.1f} samples/s at batch {} (aggregate of {} streams, {} runs in "
        "{:.3f} s)\n",
        t["inferences_per_s"].get<double>(), t["samples_per_s"].get<double>(), j["batch"].get<int64_t>(),
        streams, j["iterations"].get<size_t>(), j["measured_s"].get<double>());
    std::cout << fmt::format("{:>6}  {:>6}  {:>10}  {:>10}  {:>10}  {:>12}\n", "stream", "runs", "median ms",
                             "p95 ms", "p99 ms", "inferences/s");
    for (const auto& s : j["per_stream"])
      std::cout << fmt::format("{:>6}  {:>6}  {:>10.4f}  {:>10.4f}  {:>10.4f}  {:>12.1f}\n",
                               s["stream"].get<int>(), s["iterations"].get<size_t>(),
                               s["latency_ms"]["median"].get<double>(), s["latency_ms"]["p95"].get<double>(),
                               s["latency_ms"]["p99"].get<double>(), s["inferences_per_s"].get<double>());
  } else {
    std::cout << fmt::format("throughput: {:.1f} inferences/s, {:.1f} samples/s at batch {}\n",
                             t["inferences_per_s"].get<double>(), t["samples_per_s"].get<double>(),
                             j["batch"].get<int64_t>());
  }
  const auto& m = j["device_memory"];
  if (cuda) {
    std::cout << fmt::format(
        "device memory: context {:.1f} MB, I/O {:.1f} MB, weights {:.1f} MB, total {:.1f} MB",
        m["context_bytes"].get<size_t>() / 1e6, m["io_bytes"].get<size_t>() / 1e6,
        m["weight_bytes"].get<size_t>() / 1e6, m["total_bytes"].get<size_t>() / 1e6);
    if (m.contains("process_delta_bytes"))
      std::cout << fmt::format(" (process took {:.1f} MB from the GPU)",
                               m["process_delta_bytes"].get<size_t>() / 1e6);
    std::cout << "\n";
  }
  if (j.contains("profile")) print_profile(j["profile"], o.top);
  print_warnings(j, "", true);
}

}  // namespace kiln::cli
