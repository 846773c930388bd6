// kiln bench FILE.kiln: latency percentiles, throughput, device memory and (--profile) per-layer time of an
// engine.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>
#include <random>

#include "backends/device_probe.h"
#include "bench_profile.h"
#include "bench_stats.h"
#include "cli_common.h"
#include "io/npy.h"
#include "util/half.h"

#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace kiln::cli {

namespace {

struct BenchOptions {
  std::string engine;
  std::vector<std::string> shapes, inputs;
  uint64_t seed = 0;
  int iters = 200, warmup = 20, top = 30, profile_runs = 10, opt_profile = 0;
  double max_seconds = 0;  // 0: no limit
  bool no_cuda_graph = false, profile = false, json = false, quiet = false;
};

// ---------------------------------------------------------------------------------------------------------------
// Arguments

// "--shapes a:1x128,b:1x128" (the flag is also repeatable): one concrete shape per named input. Each piece
// goes through the build command's parser as a fixed shape, so dims are written and checked the same way.
Result<std::map<std::string, std::vector<int64_t>>> parse_bench_shapes(
    const std::vector<std::string>& specs) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& spec : specs) {
    size_t pos = 0;
    while (pos <= spec.size()) {
      size_t comma = spec.find(',', pos);
      std::string piece = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      size_t colon = piece.rfind(':');
      if (colon == std::string::npos || colon == 0)
        return Status(
            StatusCode::kInvalidArgument,
            fmt::format("--shapes '{}': expected NAME:DIMS[,NAME:DIMS...] with dims like 1x3x224x224 "
                        "(bench runs one concrete shape per input)",
                        spec));
      OptimizationProfile p;
      KILN_RETURN_IF_ERROR(parse_shapes({piece}, p));
      const auto& [name, range] = *p.inputs.begin();
      if (out.count(name))
        return Status(StatusCode::kInvalidArgument, fmt::format("--shapes gives input '{}' twice", name));
      out[name] = range.opt;
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  return out;
}

Status check_options(const BenchOptions& o) {
  auto bad = [](const std::string& m) { return Status(StatusCode::kInvalidArgument, m); };
  if (o.iters < 1) return bad(fmt::format("--iters must be at least 1, got {}", o.iters));
  if (o.warmup < 0) return bad(fmt::format("--warmup must be 0 or more, got {}", o.warmup));
  if (o.top < 1) return bad(fmt::format("--top must be at least 1, got {}", o.top));
  if (o.profile_runs < 1)
    return bad(fmt::format("--profile-runs must be at least 1, got {}", o.profile_runs));
  if (!(o.max_seconds >= 0))
    return bad(fmt::format("--max-seconds must be 0 (no limit) or more, got {}", o.max_seconds));
  const std::string& p = o.engine;
  if (p.size() >= 5 && p.substr(p.size() - 5) == ".onnx")
    return bad(
        fmt::format("kiln bench times an engine file, not '{}'; build one first: kiln build {} -o MODEL.kiln "
                    "[--shapes NAME:MIN,OPT,MAX] [--fp16]",
                    p, p));
  return Status();
}

// ---------------------------------------------------------------------------------------------------------------
// Inputs

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "x" : "") + std::to_string(d[i]);
  return s.empty() ? "scalar" : s;
}

// Dims for an input without --shapes/--input: the profile's opt shape, else the engine's static dims. A
// dynamic dim with no profile to bound it runs at 1 (said on stderr: such a number is rarely what the user
// wants).
std::vector<int64_t> default_dims(const TensorDesc& d, const Engine& e, int profile, bool quiet) {
  if (!e.profiles().empty()) {
    const auto& p = e.profiles()[static_cast<size_t>(profile)];
    auto it = p.inputs.find(d.name);
    if (it != p.inputs.end()) return it->second.opt;
  }
  std::vector<int64_t> dims;
  bool guessed = false;
  for (const auto& dim : d.shape.dims()) {
    dims.push_back(dim.is_static() ? dim.value() : 1);
    guessed |= !dim.is_static();
  }
  if (guessed && !quiet)
    std::cerr << fmt::format(
        "kiln: input '{}' ({}) has dynamic dims and no profile: running {}; pass --shapes {}:DIMS\n", d.name,
        d.shape.to_string(), dims_str(dims), d.name);
  return dims;
}

// Random data: floats in [-1,1). Integers in [0, min(last dim, 100)): small enough to be a valid index or
// token id in any realistic model (positions < sequence length, ids < vocabulary). Inputs named like "*mask*"
// are all ones (attend to every token), the case a latency benchmark should measure; bools are 50/50
// otherwise.
Result<Tensor> random_input(const TensorDesc& d, const std::vector<int64_t>& dims, std::mt19937_64& rng) {
  Tensor t(d.dtype, dims);
  std::string lower = d.name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool mask = lower.find("mask") != std::string::npos;
  const int64_t hi = std::max<int64_t>(1, std::min<int64_t>(dims.empty() ? 100 : dims.back(), 100));
  std::uniform_real_distribution<double> uf(-1.0, 1.0);
  std::uniform_int_distribution<int64_t> ui(0, hi - 1);
  auto next_int = [&]() -> int64_t { return mask ? 1 : ui(rng); };
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (d.dtype) {
      case DType::kF32:
        t.data<float>()[i] = static_cast<float>(uf(rng));
        break;
      case DType::kF64:
        t.data<double>()[i] = uf(rng);
        break;
      case DType::kF16:
        t.data<uint16_t>()[i] = float_to_half(static_cast<float>(uf(rng)));
        break;
      case DType::kBF16:
        t.data<uint16_t>()[i] = float_to_bf16(static_cast<float>(uf(rng)));
        break;
      case DType::kBool:
        t.data<uint8_t>()[i] = mask ? 1 : static_cast<uint8_t>(rng() & 1);
        break;
      case DType::kI64:
        t.data<int64_t>()[i] = next_int();
        break;
      case DType::kI32:
        t.data<int32_t>()[i] = static_cast<int32_t>(next_int());
        break;
      case DType::kU8:
        t.data<uint8_t>()[i] = static_cast<uint8_t>(next_int());
        break;
      case DType::kI8:
        t.data<int8_t>()[i] = static_cast<int8_t>(next_int());
        break;
      default:
        return Status(
            StatusCode::kUnsupported,
            fmt::format("cannot make random data for input '{}' of dtype {}; pass --input {}=FILE.npy",
                        d.name, dtype_name(d.dtype), d.name));
    }
  }
  return t;
}

// Host tensors for every engine input: --input files first, then --shapes/defaults with random data.
Result<std::map<std::string, Tensor>> make_inputs(const BenchOptions& o, const Engine& e) {
  std::map<std::string, std::vector<int64_t>> shapes;
  KILN_ASSIGN_OR_RETURN(shapes, parse_bench_shapes(o.shapes));
  auto names = [&] {
    std::vector<std::string> n;
    for (const auto& d : e.inputs()) n.push_back("'" + d.name + "'");
    return fmt::format("{}", fmt::join(n, ", "));
  };
  auto find = [&](const std::string& name) -> const TensorDesc* {
    for (const auto& d : e.inputs())
      if (d.name == name) return &d;
    return nullptr;
  };
  for (const auto& [name, dims] : shapes)
    if (!find(name))
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--shapes names input '{}' but the engine's inputs are {}", name, names()));
  std::map<std::string, Tensor> inputs;
  for (const auto& spec : o.inputs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status(StatusCode::kInvalidArgument, "--input '" + spec + "': expected NAME=FILE (.npy or .pb)");
    const std::string name = spec.substr(0, eq);
    const TensorDesc* d = find(name);
    if (!d)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--input names input '{}' but the engine's inputs are {}", name, names()));
    auto t = io::load_tensor_file(spec.substr(eq + 1));
    if (!t.ok()) return t.status().with_context("--input " + name);
    if (t->dtype() != d->dtype)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--input {}: the engine wants {} but the file holds {}", name,
                                dtype_name(d->dtype), dtype_name(t->dtype())));
    auto s = shapes.find(name);
    if (s != shapes.end() && s->second != t->dims())
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--input {} is {} but --shapes asks for {}; give one or the other", name,
                                dims_str(t->dims()), dims_str(s->second)));
    inputs[name] = *t;
  }
  std::mt19937_64 rng(o.seed);
  for (const auto& d : e.inputs()) {
    if (inputs.count(d.name)) continue;
    auto s = shapes.find(d.name);
    std::vector<int64_t> dims = s != shapes.end() ? s->second : default_dims(d, e, o.opt_profile, o.quiet || o.json);
    KILN_ASSIGN_OR_RETURN(inputs[d.name], random_input(d, dims, rng));
  }
  return inputs;
}

// ---------------------------------------------------------------------------------------------------------------
// Buffers bound with set_tensor_address: device memory for CUDA engines, host memory for CPU engines.

#ifdef KILN_WITH_CUDA
Status cuda_status(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return Status();
  return Status(StatusCode::kInternal,
                fmt::format("{}: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e)));
}
#endif

class IoBuffers {
 public:
  explicit IoBuffers(bool device) : device_(device) {}
  IoBuffers(const IoBuffers&) = delete;
  IoBuffers& operator=(const IoBuffers&) = delete;
  ~IoBuffers() {
#ifdef KILN_WITH_CUDA
    for (void* p : device_ptrs_) cudaFree(p);
#endif
  }

  // Never null, even for an empty tensor (set_tensor_address rejects null), and 256-byte aligned.
  Result<void*> alloc(const std::string& name, size_t bytes) {
    const size_t n = std::max<size_t>(bytes, 256);
    bytes_ += n;
    if (!device_) {
      host_.emplace_back(new (std::align_val_t(256)) std::byte[n]);
      return static_cast<void*>(host_.back().get());
    }
#ifdef KILN_WITH_CUDA
    void* p = nullptr;
    KILN_RETURN_IF_ERROR(
        cuda_status(cudaMalloc(&p, n), fmt::format("cudaMalloc of {} bytes for '{}'", n, name)));
    device_ptrs_.push_back(p);
    return p;
#else
    return Status(StatusCode::kUnsupported,
                  fmt::format("tensor '{}': device buffers need a CUDA build of kiln", name));
#endif
  }

  Status upload(void* dst, const Tensor& t, const std::string& name) {
    if (!t.nbytes()) return Status();
    if (!device_) {
      std::memcpy(dst, t.raw(), t.nbytes());
      return Status();
    }
#ifdef KILN_WITH_CUDA
    return cuda_status(cudaMemcpy(dst, t.raw(), t.nbytes(), cudaMemcpyHostToDevice),
                       "copying input '" + name + "' to the GPU");
#else
    (void)name;
    return Status(StatusCode::kUnsupported, "device buffers need a CUDA build of kiln");
#endif
  }

  size_t bytes() const {
    return bytes_;
  }

 private:
  struct AlignedDelete {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t(256)); }
  };
  bool device_;
  size_t bytes_ = 0;
  std::vector<std::unique_ptr<std::byte[], AlignedDelete>> host_;
  std::vector<void*> device_ptrs_;
};

// Binds every input (uploaded) and output (sized from the engine's output shapes) of ctx.
Status bind_all(ExecutionContext& ctx, const std::map<std::string, Tensor>& inputs, IoBuffers& bufs) {
  const Engine& e = ctx.engine();
  for (const auto& d : e.inputs()) {
    const Tensor& t = inputs.at(d.name);
    KILN_RETURN_IF_ERROR(ctx.set_input_shape(d.name, t.dims()));
    void* p = nullptr;
    KILN_ASSIGN_OR_RETURN(p, bufs.alloc(d.name, t.nbytes()));
    KILN_RETURN_IF_ERROR(bufs.upload(p, t, d.name));
    KILN_RETURN_IF_ERROR(ctx.set_tensor_address(d.name, p, std::max<size_t>(t.nbytes(), 256)));
  }
  // Outputs whose size depends on data: one host run tells their dims.
  std::map<std::string, std::vector<int64_t>> out_dims;
  bool need_run = false;
  for (const auto& d : e.outputs()) {
    auto dims = ctx.output_shape(d.name);
    if (dims.ok())
      out_dims[d.name] = *dims;
    else
      need_run = true;
  }
  if (need_run) {
    auto outs = ctx.infer(inputs);
    if (!outs.ok()) return outs.status().with_context("sizing the output buffers");
    for (const auto& [name, t] : *outs) out_dims[name] = t.dims();
  }
  for (const auto& d : e.outputs()) {
    int64_t n = 1;
    for (int64_t v : out_dims[d.name]) n *= v;
    const size_t bytes = static_cast<size_t>(n) * dtype_size(d.dtype);
    void* p = nullptr;
    KILN_ASSIGN_OR_RETURN(p, bufs.alloc(d.name, bytes));
    KILN_RETURN_IF_ERROR(ctx.set_tensor_address(d.name, p, std::max<size_t>(bytes, 256)));
  }
  return Status();
}

// ---------------------------------------------------------------------------------------------------------------
// Timing

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

struct Timings {
  std::vector<double> latency_ms;  // CUDA events (GPU engines) or steady_clock (CPU engines)
  std::vector<double> host_ms;     // enqueue + wait for completion, as the calling thread sees it
  std::string timer;
  int warmup_runs = 0;
  bool time_limited = false;  // --max-seconds ended the loop before --iters
};

// --max-seconds: warm-up may use a quarter of it and timed runs the rest, each keeping at least one run, so a
// slow engine still gives a number instead of running for an hour.
struct Budget {
  double seconds;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  bool warmup_over(int done) const { return seconds > 0 && done > 0 && ms_since(start) > 250 * seconds; }
  bool timed_over(int done) const { return seconds > 0 && done > 0 && ms_since(start) > 1000 * seconds; }
};

#ifdef KILN_WITH_CUDA
// RAII for the stream and events, so an error midway frees them.
struct CudaTimer {
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  Status init() {
    KILN_RETURN_IF_ERROR(
        cuda_status(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate"));
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&start), "cudaEventCreate"));
    return cuda_status(cudaEventCreate(&stop), "cudaEventCreate");
  }
  ~CudaTimer() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (stream) cudaStreamDestroy(stream);
  }
};

// Each iteration is bracketed by events on the stream and waited for before the next one starts: the number
// is one inference's latency (host launch gaps included, since the GPU idles through them), not pipelined
// throughput.
Status time_cuda(ExecutionContext& ctx, CudaTimer& ct, int warmup, int iters, const Budget& budget,
                 Timings& out) {
  for (int i = 0; i < warmup; ++i) {
    if (budget.warmup_over(i)) break;
    KILN_RETURN_IF_ERROR(ctx.enqueue(ct.stream).with_context("warm-up run " + std::to_string(i)));
    // Waited for each, so the budget sees real time and not just queued launches.
    KILN_RETURN_IF_ERROR(cuda_status(cudaStreamSynchronize(ct.stream), "warm-up run " + std::to_string(i)));
    ++out.warmup_runs;
  }
  out.timer = "cuda_events";
  for (int i = 0; i < iters; ++i) {
    if (budget.timed_over(i)) {
      out.time_limited = true;
      break;
    }
    auto t0 = std::chrono::steady_clock::now();
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventRecord(ct.start, ct.stream), "cudaEventRecord"));
    KILN_RETURN_IF_ERROR(ctx.enqueue(ct.stream).with_context("timed run " + std::to_string(i)));
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventRecord(ct.stop, ct.stream), "cudaEventRecord"));
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventSynchronize(ct.stop), "timed run " + std::to_string(i)));
    out.host_ms.push_back(ms_since(t0));
    float ms = 0;
    KILN_RETURN_IF_ERROR(cuda_status(cudaEventElapsedTime(&ms, ct.start, ct.stop), "cudaEventElapsedTime"));
    out.latency_ms.push_back(ms);
  }
  return Status();
}
#endif

Status time_cpu(ExecutionContext& ctx, int warmup, int iters, const Budget& budget, Timings& out) {
  for (int i = 0; i < warmup; ++i) {
    if (budget.warmup_over(i)) break;
    KILN_RETURN_IF_ERROR(ctx.enqueue().with_context("warm-up run " + std::to_string(i)));
    ++out.warmup_runs;
  }
  out.timer = "steady_clock";
  for (int i = 0; i < iters; ++i) {
    if (budget.timed_over(i)) {
      out.time_limited = true;
      break;
    }
    auto t0 = std::chrono::steady_clock::now();
    KILN_RETURN_IF_ERROR(ctx.enqueue().with_context("timed run " + std::to_string(i)));
    out.latency_ms.push_back(ms_since(t0));
  }
  out.host_ms = out.latency_ms;
  return Status();
}

// ---------------------------------------------------------------------------------------------------------------
// Report

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

Result<nlohmann::json> bench(const BenchOptions& o) {
  KILN_RETURN_IF_ERROR(check_options(o));
#ifdef KILN_WITH_CUDA
  size_t free_before = 0, total_mem = 0;
  const bool probe_mem = cuda_backend_available() && cudaMemGetInfo(&free_before, &total_mem) == cudaSuccess;
#endif
  // Load time, as a server sees it: the engine file read and checked, then a context (its first one uploads
  // the weights). The CUDA runtime is already up (cudaMemGetInfo above), so its start is not counted.
  const auto load_start = std::chrono::steady_clock::now();
  Engine engine;
  KILN_ASSIGN_OR_RETURN(engine, Engine::load(o.engine));
  const double load_file_ms = ms_since(load_start);
  KILN_RETURN_IF_ERROR(check_profile_index(engine, o.opt_profile));
  const bool on_gpu = engine.info().backend == BackendKind::kCuda;
#ifndef KILN_WITH_CUDA
  if (on_gpu)
    return Status(StatusCode::kUnsupported, "this is a CUDA engine and this kiln was built without CUDA");
#endif
  std::map<std::string, Tensor> inputs;
  KILN_ASSIGN_OR_RETURN(inputs, make_inputs(o, engine));
  // Declared before the context so they outlive it: its destructor may still wait on the stream, and a
  // captured CUDA graph points into the buffers.
  IoBuffers bufs(on_gpu);
  void* stream = nullptr;
#ifdef KILN_WITH_CUDA
  CudaTimer ct;
  if (on_gpu) {
    KILN_RETURN_IF_ERROR(ct.init());
    stream = ct.stream;
  }
#endif
  const auto context_start = std::chrono::steady_clock::now();
  auto ctx_r = engine.create_context();
  if (!ctx_r.ok()) return ctx_r.status();
  ExecutionContext ctx = std::move(*ctx_r);
  const double context_ms = ms_since(context_start);
  KILN_RETURN_IF_ERROR(ctx.set_profile(o.opt_profile));
  if (o.no_cuda_graph) ctx.set_cuda_graphs(false);
  KILN_RETURN_IF_ERROR(bind_all(ctx, inputs, bufs));

  Timings t;
  const Budget budget{o.max_seconds};
#ifdef KILN_WITH_CUDA
  if (on_gpu) KILN_RETURN_IF_ERROR(time_cuda(ctx, ct, o.warmup, o.iters, budget, t));
#endif
  if (!on_gpu) KILN_RETURN_IF_ERROR(time_cpu(ctx, o.warmup, o.iters, budget, t));

  nlohmann::json j;
  j["engine"] = engine_json(o, engine, ctx);
  int64_t batch = 1;
  for (const auto& d : engine.inputs()) {
    const auto& dims = inputs.at(d.name).dims();
    j["shapes"][d.name] = dims;
    if (batch == 1 && !dims.empty()) batch = dims[0];
  }
  j["batch"] = batch;
  j["load_ms"] = {{"engine_file", load_file_ms}, {"context", context_ms}, {"total", load_file_ms + context_ms}};
  j["iterations"] = t.latency_ms.size();
  j["requested_iterations"] = o.iters;
  j["warmup"] = t.warmup_runs;
  j["time_limited"] = t.time_limited;
  j["seed"] = o.seed;
  j["timer"] = t.timer;
  const Stats lat = stats_of(t.latency_ms);
  j["latency_ms"] = stats_json(lat);
  j["host_ms"] = stats_json(stats_of(t.host_ms));
  // Iterations are serialized (each waited for), so throughput is the inverse of the mean latency.
  const double per_s = lat.mean > 0 ? 1000.0 / lat.mean : 0.0;
  j["throughput"] = {{"inferences_per_s", per_s}, {"samples_per_s", per_s * static_cast<double>(batch)}};
  const size_t context_bytes = ctx.device_memory_bytes();
  nlohmann::json mem = {{"context_bytes", context_bytes},
                        {"io_bytes", on_gpu ? bufs.bytes() : 0},
                        {"weight_bytes", on_gpu ? engine.info().weight_bytes : 0}};
  mem["total_bytes"] = context_bytes + mem["io_bytes"].get<size_t>() + mem["weight_bytes"].get<size_t>();
#ifdef KILN_WITH_CUDA
  // What the whole process took from the GPU since before the engine was loaded: weights, arena, I/O buffers
  // and library workspaces (cuBLASLt, cuDNN), but not the CUDA context itself. The number to set against
  // torch's peak.
  size_t free_after = 0;
  if (on_gpu && probe_mem && cudaMemGetInfo(&free_after, &total_mem) == cudaSuccess)
    mem["process_delta_bytes"] = free_before > free_after ? free_before - free_after : 0;
#endif
  j["device_memory"] = mem;
  // How the timed runs executed: the first thing to check when a CUDA engine is slower than expected.
  const RunInfo run = ctx.last_run_info();
  j["execution"] = {{"cuda_graph", run.cuda_graph},      {"arena", run.arena},
                    {"arena_bytes", run.arena_bytes},    {"not_captured", run.not_captured},
                    {"gpu_nodes", run.gpu_nodes},        {"host_nodes", run.host_nodes},
                    {"fallback_nodes", run.fallback_nodes}, {"downloads", run.downloads}};
  j["build"] = build_info();
  if (o.profile) {
    std::vector<LayerTiming> layers;
    KILN_ASSIGN_OR_RETURN(layers, profile_median(ctx, stream, o.profile_runs));
    j["profile"] = profile_json(std::move(layers), o.profile_runs);
  }
  return j;
}

void print_report(const BenchOptions& o, const nlohmann::json& j) {
  const auto& e = j["engine"];
  const auto& l = j["latency_ms"];
  std::cout << fmt::format(
      "engine: {} ({} backend, {}, {} nodes, {:.1f} MB weights{})\n", e["path"].get<std::string>(),
      e["backend"].get<std::string>(), e["precision"].get<std::string>(), e["nodes"].get<size_t>(),
      e["weight_bytes"].get<size_t>() / 1e6,
      e["backend"] == "cuda" ? (e["cuda_graphs"].get<bool>() ? ", CUDA graphs on" : ", CUDA graphs off")
                             : "");
  std::string shapes;
  for (const auto& [name, dims] : j["shapes"].items())
    shapes +=
        fmt::format("{}{}={}", shapes.empty() ? "" : " ", name, dims_str(dims.get<std::vector<int64_t>>()));
  std::cout << "shapes: " << shapes << "\n";
  if (!j["build"]["gpu"].get<std::string>().empty() && e["backend"] == "cuda")
    std::cout << fmt::format("GPU: {} (sm_{})\n", j["build"]["gpu"].get<std::string>(),
                             j["build"]["sm"].get<std::string>());
  std::cout << fmt::format(
      "latency over {} iterations ({} warm-up, {}): median {:.4f} ms, mean {:.4f}, p90 {:.4f}, "
      "p99 {:.4f}, min {:.4f}, max {:.4f}\n",
      j["iterations"].get<size_t>(), j["warmup"].get<int>(), j["timer"].get<std::string>(),
      l["median"].get<double>(), l["mean"].get<double>(), l["p90"].get<double>(), l["p99"].get<double>(),
      l["min"].get<double>(), l["max"].get<double>());
  if (j["time_limited"].get<bool>())
    std::cout << fmt::format("note: --max-seconds stopped the run after {} of {} iterations\n",
                             j["iterations"].get<size_t>(), o.iters);
  if (j["timer"] == "cuda_events")
    std::cout << fmt::format("host view (enqueue + wait): median {:.4f} ms\n",
                             j["host_ms"]["median"].get<double>());
  std::cout << fmt::format("load: {:.1f} ms (engine file {:.1f} ms + first context {:.1f} ms)\n",
                           j["load_ms"]["total"].get<double>(), j["load_ms"]["engine_file"].get<double>(),
                           j["load_ms"]["context"].get<double>());
  if (const auto& x = j["execution"]; e["backend"] == "cuda")
    std::cout << fmt::format("execution: {} ({} GPU nodes, {} host, {} CPU fallback, {} read-backs; arena {:.1f} MB)\n",
                             x["cuda_graph"].get<bool>() ? "one CUDA graph launch per run"
                                                         : "node by node: " + x["not_captured"].get<std::string>(),
                             x["gpu_nodes"].get<int>(), x["host_nodes"].get<int>(), x["fallback_nodes"].get<int>(),
                             x["downloads"].get<int>(), x["arena_bytes"].get<size_t>() / 1e6);
  std::cout << fmt::format("throughput: {:.1f} inferences/s, {:.1f} samples/s at batch {}\n",
                           j["throughput"]["inferences_per_s"].get<double>(),
                           j["throughput"]["samples_per_s"].get<double>(), j["batch"].get<int64_t>());
  const auto& m = j["device_memory"];
  if (e["backend"] == "cuda") {
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
}

int run_bench(const BenchOptions& o) {
  auto j = bench(o);
  if (!j.ok()) return fail(j.status());
  if (o.json)
    std::cout << j->dump(2) << "\n";
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
  cmd->add_option("--opt-profile", o->opt_profile,
                  "Optimization profile to run under (default 0); inputs not given take its opt shapes");
  cmd->add_option("--iters", o->iters, "Timed iterations (default 200)");
  cmd->add_option("--warmup", o->warmup, "Untimed iterations first (default 20)");
  cmd->add_option(
      "--max-seconds", o->max_seconds,
      "Stop early after this long (a quarter for warm-up), keeping at least one run of each (default 0: "
      "no limit)");
  cmd->add_flag("--no-cuda-graph", o->no_cuda_graph,
                "CUDA engines: launch kernels one by one instead of replaying a graph");
  cmd->add_flag("--profile", o->profile,
                "Also time every layer and print the slowest (see --top) and a per-op summary");
  cmd->add_option("--profile-runs", o->profile_runs,
                  "Profiled runs whose per-layer median is reported (default 10)");
  cmd->add_option("--top", o->top, "Layers listed by --profile (default 30)");
  cmd->add_flag("--json", o->json, "Print everything as JSON");
  cmd->add_flag("-q,--quiet", o->quiet, "No notes on stderr");
  cmd->callback([o] { std::exit(run_bench(*o)); });
}

}  // namespace kiln::cli
