// kiln bench FILE.kiln: latency percentiles, throughput, device memory and (--profile) per-layer time of an
// engine; --streams, --duration, --sweep and --io host. The pieces: bench_inputs (what runs), bench_io (bound
// buffers), bench_streams (timed loops), bench_report (JSON and text), bench_sweep (profile shapes).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "kiln/device.h"
#include "bench_html.h"
#include "bench_inputs.h"
#include "bench_options.h"
#include "bench_profile.h"
#include "bench_report.h"
#include "bench_streams.h"
#include "bench_sweep.h"
#include "cli_common.h"

#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace kiln::cli {

namespace {

// Many threads would measure the scheduler, not the engine; a GPU runs a handful of streams side by side.
constexpr int kMaxStreams = 256;

Status check_options(const BenchOptions& o) {
  auto bad = [](const std::string& m) { return Status(StatusCode::kInvalidArgument, m); };
  if (o.iters < 1) return bad(fmt::format("--iters must be at least 1, got {}", o.iters));
  if (o.warmup < 0) return bad(fmt::format("--warmup must be 0 or more, got {}", o.warmup));
  if (o.top < 1) return bad(fmt::format("--top must be at least 1, got {}", o.top));
  if (o.profile_runs < 1)
    return bad(fmt::format("--profile-runs must be at least 1, got {}", o.profile_runs));
  if (!(o.max_seconds >= 0))
    return bad(fmt::format("--max-seconds must be 0 (no limit) or more, got {}", o.max_seconds));
  if (!(o.duration >= 0) || !std::isfinite(o.duration))
    return bad(fmt::format("--duration must be 0 (off) or a number of seconds, got {}", o.duration));
  if (o.streams < 1 || o.streams > kMaxStreams)
    return bad(fmt::format("--streams must be 1 to {}, got {}", kMaxStreams, o.streams));
  if (!(o.cv_limit_percent >= 0))
    return bad(fmt::format("--cv-limit must be 0 or more (percent), got {}", o.cv_limit_percent));
  if (o.io != "device" && o.io != "host")
    return bad(fmt::format(
        "--io must be 'device' (inputs stay on the device) or 'host' (copies timed), got '{}'", o.io));
  if (o.sweep) KILN_RETURN_IF_ERROR(check_sweep_options(o));
  if (!o.html.empty()) KILN_RETURN_IF_ERROR(check_output_file("--html", o.html));  // before minutes of timing
  const std::string& p = o.engine;
  if (p.size() >= 5 && p.substr(p.size() - 5) == ".onnx")
    return bad(
        fmt::format("kiln bench times an engine file, not '{}'; build one first: kiln build {} -o MODEL.kiln "
                    "[--shapes NAME:MIN,OPT,MAX] [--fp16]",
                    p, p));
  return Status();
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// What the whole process took from the GPU since before the engine was loaded: weights, arena, I/O buffers
// and library workspaces (cuBLASLt, cuDNN), but not the CUDA context itself. The number to set against
// torch's peak.
struct GpuMemoryProbe {
  bool ok = false;
  size_t free_before = 0;
  void start() {
#ifdef KILN_WITH_CUDA
    size_t total = 0;
    ok = cuda_backend_available() && cudaMemGetInfo(&free_before, &total) == cudaSuccess;
#endif
  }
  void record(nlohmann::json& j) const {
#ifdef KILN_WITH_CUDA
    size_t free_after = 0, total = 0;
    if (ok && j["engine"]["backend"] == "cuda" && cudaMemGetInfo(&free_after, &total) == cudaSuccess)
      j["device_memory"]["process_delta_bytes"] = free_before > free_after ? free_before - free_after : 0;
#else
    (void)j;
#endif
  }
};

// One configuration: its streams created and timed, then (--profile) stream 0's layers.
Result<nlohmann::json> measure(const BenchOptions& o, const Engine& engine,
                               const std::map<std::string, Tensor>& inputs, int profile, double load_file_ms,
                               const GpuMemoryProbe& probe) {
  std::unique_ptr<StreamSet> set;
  KILN_ASSIGN_OR_RETURN(set,
                        StreamSet::create(engine, inputs, profile, o.streams, o.no_cuda_graph, o.host_io()));
  Measurement m;
  KILN_ASSIGN_OR_RETURN(m, set->run({o.warmup, o.iters, o.duration, o.max_seconds}));
  nlohmann::json j = result_json(o, {&engine, &inputs, set.get(), load_file_ms}, m);
  probe.record(j);
  if (o.profile) {
    std::vector<LayerTiming> layers;
    KILN_ASSIGN_OR_RETURN(layers, profile_median(set->context(0), set->stream(0), o.profile_runs));
    j["profile"] = profile_json(std::move(layers), o.profile_runs);
  }
  return j;
}

// --sweep: one measurement per profile point, each with fresh contexts (a context keeps the arena of the
// largest shape it met, which would count against the smaller ones).
Result<nlohmann::json> sweep(const BenchOptions& o, const Engine& engine, double load_file_ms,
                             const GpuMemoryProbe& probe) {
  nlohmann::json rows = nlohmann::json::array();
  for (const SweepPoint& p : sweep_points(engine)) {
    const std::string where = p.profile ? fmt::format("--sweep, profile {} {} shapes", *p.profile, p.point)
                                        : "--sweep, static shapes";
    const int profile = p.profile.value_or(0);
    auto in = random_inputs(engine, p.shapes, profile, o.seed, o.quiet || o.json);
    if (!in.ok()) return in.status().with_context(where);
    auto j = measure(o, engine, *in, profile, load_file_ms, probe);
    if (!j.ok()) return j.status().with_context(where);
    (*j)["sweep_point"] = {{"profile", p.profile ? nlohmann::json(*p.profile) : nlohmann::json(nullptr)},
                           {"point", p.point}};
    rows.push_back(std::move(*j));
  }
  return rows;
}

// manifest: set to the engine file's manifest (for --html).
Result<nlohmann::json> bench(const BenchOptions& o, nlohmann::json& manifest) {
  KILN_RETURN_IF_ERROR(check_options(o));
  GpuMemoryProbe probe;
  probe.start();
  // Load time, as a server sees it: the engine file read and checked, then a context (its first one uploads
  // the weights). The CUDA runtime is already up (the memory probe above), so its start is not counted.
  const auto load_start = std::chrono::steady_clock::now();
  Engine engine;
  KILN_ASSIGN_OR_RETURN(engine, Engine::load(o.engine));
  const double load_file_ms = ms_since(load_start);
  manifest = nlohmann::json::parse(engine.info().manifest_json, nullptr, false);
  if (manifest.is_discarded()) manifest = nullptr;
  KILN_RETURN_IF_ERROR(check_profile_index(engine, o.opt_profile));
#ifndef KILN_WITH_CUDA
  if (engine.info().backend == BackendKind::kCuda)
    return Status(StatusCode::kUnsupported, "this is a CUDA engine and this kiln was built without CUDA");
#endif
  if (o.sweep) return sweep(o, engine, load_file_ms, probe);
  std::map<std::string, Tensor> inputs;
  KILN_ASSIGN_OR_RETURN(inputs, make_inputs(o, engine));
  // Without --opt-profile a bundle picks its member from the shapes; a single engine runs under profile 0.
  return measure(o, engine, inputs, o.opt_profile_given ? o.opt_profile : -1, load_file_ms, probe);
}

int run_bench(const BenchOptions& o) {
  nlohmann::json manifest;
  auto j = bench(o, manifest);
  if (!j.ok()) return fail(j.status());
  if (!o.html.empty()) {
    if (Status s = write_output_file("--html", o.html, bench_html(*j, manifest)); !s.ok()) return fail(s);
    if (!o.quiet) std::cerr << "kiln: wrote " << o.html << "\n";
  }
  if (o.json)
    std::cout << j->dump(2) << "\n";
  else if (o.sweep)
    print_sweep(*j);
  else
    print_report(o, *j);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand(
      "bench", "Time an engine: latency percentiles, throughput, memory, per-layer profile");
  cmd->add_option("engine", o->engine, "Engine file (.kiln)")->required();
  cmd->add_option("--shapes", o->shapes,
                  "Concrete input shapes NAME:DIMS[,NAME:DIMS...] with dims like 32x3x224x224 (repeatable; "
                  "default: the profile's opt shape, else the static dims)");
  cmd->add_option("--input", o->inputs, "NAME=FILE (.npy or .pb) instead of random data (repeatable)");
  cmd->add_option("--seed", o->seed, "Seed for random inputs (default 0)");
  auto* opt_profile =
      cmd->add_option("--opt-profile", o->opt_profile,
                      "Optimization profile to run under (default 0); inputs not given take its "
                      "opt shapes");
  cmd->add_option("--iters", o->iters, "Timed iterations per stream (default 200)");
  cmd->add_option(
      "--duration", o->duration,
      "Time for S seconds after warm-up instead of a number of iterations; wins over --iters when "
      "both are given (default 0: --iters decides)");
  cmd->add_option("--warmup", o->warmup, "Untimed iterations first, per stream (default 20)");
  cmd->add_option(
      "--max-seconds", o->max_seconds,
      "Stop early after this long (a quarter for warm-up), keeping at least one run of each; caps --duration "
      "too (default 0: no limit)");
  cmd->add_option(
      "--streams", o->streams,
      "Execution contexts run concurrently, each on its own CUDA stream (CPU engines: its own thread) "
      "and timed over one window: aggregate throughput and per-stream latency (default 1)");
  cmd->add_flag("--sweep", o->sweep,
                "Time every profile's min, opt and max shapes (random inputs), one row each; with --json an "
                "array of results");
  cmd->add_option(
      "--io", o->io,
      "device: inputs stay bound on the device (default); host: each run also copies inputs from "
      "and outputs to page-locked host memory, reported apart as H2D, compute and D2H (CPU engines: "
      "not applicable, nothing is copied)");
  cmd->add_option("--cv-limit", o->cv_limit_percent,
                  "Warn that the run is unstable when latency's coefficient of variation is over this many "
                  "percent (default 2.5)");
  cmd->add_flag("--no-cuda-graph", o->no_cuda_graph,
                "CUDA engines: launch kernels one by one instead of replaying a graph");
  cmd->add_flag("--profile", o->profile,
                "Also time every layer and print the slowest (see --top) and a per-op summary");
  cmd->add_option("--profile-runs", o->profile_runs,
                  "Profiled runs whose per-layer median is reported (default 10)");
  cmd->add_option("--top", o->top, "Layers listed by --profile (default 30)");
  cmd->add_option("--html", o->html,
                  "Also write the report as one self-contained page (no scripts, no network): latency histogram "
                  "and percentiles, per-layer time bars with --profile, the sweep with --sweep, the manifest");
  cmd->add_flag("--json", o->json, "Print everything as JSON");
  cmd->add_flag("-q,--quiet", o->quiet, "No notes on stderr");
  cmd->callback([o, opt_profile] {
    o->opt_profile_given = opt_profile->count() > 0;
    std::exit(run_bench(*o));
  });
}

}  // namespace kiln::cli
