#include "kiln/builder.h"

#include <filesystem>
#include <set>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "backends/device_probe.h"
#include "builder/layout_choice.h"
#include "builder/resolve_aliases.h"
#include "builder/tune_tactics.h"
#include "kiln/version.h"
#include "onnx/importer.h"
#include "passes/convert_precision.h"
#include "passes/detect_causal_mask.h"
#include "passes/pass.h"
#include "engine/engine_state.h"
#include "util/error.h"
#include "util/file.h"
#include "util/no_throw.h"
#ifdef KILN_WITH_CUDA
#include "backends/cuda/kernel.h"
#include "backends/cuda/placement.h"
#endif

namespace kiln {

std::string_view precision_name(Precision p) {
  switch (p) {
    case Precision::kF32: return "f32";
    case Precision::kTF32: return "tf32";
    case Precision::kF16: return "f16";
    case Precision::kBF16: return "bf16";
  }
  return "?";
}

namespace {

// What a CUDA engine depends on; loading elsewhere compares against these.
std::string gpu_manifest_json() {
  GpuInfo g = probe_gpu();
  nlohmann::json j = {{"name", g.name},
                      {"sm", fmt::format("{}.{}", g.sm_major, g.sm_minor)},
                      {"driver", g.driver_version},
                      {"cuda_runtime", g.runtime_version},
                      {"cublaslt", g.cublaslt_version},
                      {"cudnn", g.cudnn_version},
                      {"nvrtc", fmt::format("{}.{}", g.nvrtc_major, g.nvrtc_minor)}};
  return j.dump();
}

Status check_profiles(const ir::Graph& g, const std::vector<OptimizationProfile>& profiles) {
  for (size_t p = 0; p < profiles.size(); ++p) {
    for (const auto& [name, r] : profiles[p].inputs) {
      if (std::find(g.inputs.begin(), g.inputs.end(), name) == g.inputs.end())
        return invalid_argument("profile {} names input '{}', but the model's inputs are {}", p, name,
                                fmt::join(g.inputs, ", "));
      const Shape& shape = g.values.at(name).shape;
      if (r.min.size() != r.opt.size() || r.opt.size() != r.max.size())
        return invalid_argument("profile {} input '{}': min, opt and max must have the same rank", p, name);
      if (shape.has_rank() && shape.rank() != r.min.size())
        return invalid_argument("profile {} input '{}': the model's shape {} has rank {} but the profile gives {} dims",
                                p, name, shape.to_string(), shape.rank(), r.min.size());
      for (size_t i = 0; i < r.min.size(); ++i) {
        if (r.min[i] < 0 || r.min[i] > r.opt[i] || r.opt[i] > r.max[i])
          return invalid_argument("profile {} input '{}' dim {}: need 0 <= min <= opt <= max, got {}, {}, {}", p, name,
                                  i, r.min[i], r.opt[i], r.max[i]);
        if (shape.has_rank() && shape[i].is_static() && (r.min[i] != shape[i].value() || r.max[i] != shape[i].value()))
          return invalid_argument("profile {} input '{}' dim {} is fixed at {} in the model, but the profile asks "
                                  "{}..{}; re-export with a dynamic axis to vary it",
                                  p, name, i, shape[i].value(), r.min[i], r.max[i]);
      }
    }
  }
  return Status();
}

// Shapes must infer at the profile's min and max too: catches dim mismatches that only appear there.
Status check_profile_extremes(const ir::Graph& g, const std::vector<OptimizationProfile>& profiles) {
  for (size_t p = 0; p < profiles.size(); ++p) {
    for (int which = 0; which < 2; ++which) {
      ir::Graph probe = g;
      for (const auto& [name, r] : profiles[p].inputs) probe.values[name].shape = Shape::from_dims(which ? r.max : r.min);
      for (auto& [k, v] : probe.values)
        if (!probe.is_constant(k) && std::find(probe.inputs.begin(), probe.inputs.end(), k) == probe.inputs.end())
          v.shape = Shape();
      Status st = passes::infer_shapes(probe);
      if (!st.ok())
        return Status(st.code(), fmt::format("at profile {}'s {} shapes: {}", p, which ? "max" : "min", st.message()));
    }
  }
  return Status();
}

// --fp16/--bf16 on CUDA: every node whose kernel runs at the target dtype computes in it; the rest, and the
// fp32_layers, stay f32 with Casts around them. Engine I/O keeps the model's dtypes.
Status convert_for_cuda(ir::Graph& g, const BuildConfig& config, const std::function<void(std::string_view)>& progress) {
  passes::PrecisionOptions opt;
  opt.target = config.precision == Precision::kF16 ? DType::kF16 : DType::kBF16;
  // Names the optimizations removed (folded constants, fused chains) have nothing left to keep in f32.
  std::set<std::string> present;
  for (const auto& n : g.nodes) present.insert(n.name);
  std::vector<std::string> gone;
  for (const auto& name : config.fp32_layers) (present.count(name) ? opt.fp32_layers : gone).push_back(name);
  if (!gone.empty())
    progress(fmt::format("--fp32-layers: {} folded or fused away by the optimizations; nothing of them is left to keep "
                         "in f32 (name the fused node that replaced them instead)",
                         fmt::join(gone, ", ")));
#ifdef KILN_WITH_CUDA
  opt.supports = [](const ir::Node& n, const std::vector<DType>& dtypes) {
    const cuda::KernelDef* k = cuda::kernel_table().find(n.op_type);
    return k != nullptr && (k->supports == nullptr || k->supports(n, dtypes));
  };
#endif
  passes::PrecisionReport report;
  KILN_RETURN_IF_ERROR(passes::convert_precision(g, opt, &report).with_context("pass convert_precision"));
  // Which ops stay f32 and why, grouped: the list says what a faster engine would need (kernels, fewer layers).
  std::map<std::string, std::string> op_of;
  for (const auto& n : g.nodes) op_of[n.name] = n.op_type;
  std::map<std::string, int> kept;
  for (const auto& [name, why] : report.kept_f32) ++kept[op_of[name] + " (" + why + ")"];
  std::vector<std::string> kept_lines;
  for (const auto& [what, count] : kept) kept_lines.push_back(fmt::format("{} x{}", what, count));
  progress(fmt::format("pass convert_precision: {} nodes compute in {}, {} stay f32{}{}, {} casts",
                       report.converted_nodes, dtype_name(opt.target), report.kept_f32.size(),
                       kept_lines.empty() ? "" : ": ", fmt::join(kept_lines, "; "), report.casts_added));
  return passes::infer_shapes(g);
}

// Every node a CUDA engine leaves to the CPU reference is named with why (a read-back per run, no CUDA graph
// capture across it): visible by default, an error with --no-cpu-fallback.
Status report_cpu_fallbacks(const ir::Graph& g, const BuildConfig& config,
                            const std::function<void(std::string_view)>& progress) {
#ifdef KILN_WITH_CUDA
  auto fallbacks = cuda::predict_cpu_fallbacks(g, config.profiles);
  if (!fallbacks.ok()) {
    if (!config.allow_cpu_fallback)
      return fallbacks.status().with_context("--no-cpu-fallback: predicting where each node runs");
    progress(fmt::format("cpu fallback: not predicted ({})", fallbacks.status().message()));
    return Status();
  }
  if (fallbacks->empty()) {
    progress("cpu fallback: none (every node runs on the GPU or as host shape math)");
    return Status();
  }
  std::vector<std::string> lines;
  for (const auto& p : *fallbacks) lines.push_back(fmt::format("node '{}' ({}): {}", p.name, p.op, p.why));
  if (!config.allow_cpu_fallback)
    return unsupported("--no-cpu-fallback: {} node(s) have no CUDA kernel and would run on the CPU: {}",
                       lines.size(), fmt::join(lines, "; "));
  auto warn = [&](std::string_view s) { config.warning ? config.warning(s) : progress(s); };
  warn(fmt::format("cpu fallback: {} node(s) run on the CPU reference (values are copied to the host and back "
                   "each run; --no-cpu-fallback makes this an error):", lines.size()));
  for (const auto& l : lines) warn("cpu fallback: " + l);
#else
  (void)g, (void)config, (void)progress;
#endif
  return Status();
}

Result<Engine> build_graph(ir::Graph g, const BuildConfig& config) {
  auto progress = [&](std::string_view s) {
    if (config.progress) config.progress(s);
  };
  BackendKind backend = config.backend;
  if (backend == BackendKind::kAuto) backend = cuda_backend_available() ? BackendKind::kCuda : BackendKind::kCpu;
  if (backend == BackendKind::kCuda && !cuda_backend_available())
    return unsupported("--backend cuda is not available: {}; use --backend cpu", cuda_unavailable_reason());
  KILN_RETURN_IF_ERROR(check_profiles(g, config.profiles));
  const bool reduced = config.precision == Precision::kF16 || config.precision == Precision::kBF16;
  if (!config.fp32_layers.empty() && !reduced)
    return invalid_argument("--fp32-layers only matters with --fp16 or --bf16 (the engine computes in {} already)",
                            precision_name(config.precision));
  // Checked against the model as imported, so names the optimizations fold or fuse away are still accepted.
  KILN_RETURN_IF_ERROR(passes::check_node_names(g, config.fp32_layers, "--fp32-layers"));
  KILN_RETURN_IF_ERROR(passes::run_pipeline(g, passes::default_pipeline(), progress));
  // Needs the profiles: a mask built from input shapes is checked causal over their ranges (the engine refuses
  // other shapes), then FusedAttention skips masked tiles instead of reading the mask.
  passes::CausalMaskReport causal_report;
  KILN_RETURN_IF_ERROR(
      passes::detect_causal_mask(g, config.profiles, &causal_report).with_context("pass detect_causal_mask"));
  if (causal_report.masked > 0)
    progress(fmt::format("pass detect_causal_mask: {} attention masks are causal{}", causal_report.causal,
                         causal_report.masked > causal_report.causal
                             ? fmt::format(" ({} keep their mask: {})", causal_report.masked - causal_report.causal,
                                           causal_report.kept.empty() ? "" : causal_report.kept.front())
                             : ""));
  if (reduced && backend == BackendKind::kCuda) KILN_RETURN_IF_ERROR(convert_for_cuda(g, config, progress));
  // cuDNN runs f16/bf16 convolutions on tensor cores in channels-last (given NCHW it picks FMA kernels or
  // transposes on every call), so the builder makes the 2-D convs NHWC (passes/conv_layout.cpp) at every batch
  // (see ConvLayoutChoice). f32 and the CPU backend keep NCHW.
  if (config.conv_layout != ConvLayoutChoice::kAuto && !(reduced && backend == BackendKind::kCuda))
    return invalid_argument("--conv-layout only applies to CUDA engines built with --fp16 or --bf16");
  if (reduced && backend == BackendKind::kCuda && !use_channels_last(config.conv_layout))
    progress("convolutions stay NCHW (--conv-layout nchw)");
  if (reduced && backend == BackendKind::kCuda && use_channels_last(config.conv_layout)) {
    KILN_RETURN_IF_ERROR(passes::conv_layout(g).with_context("pass conv_layout"));
    int nhwc = 0, transposes = 0;
    for (const auto& n : g.nodes) {
      nhwc += n.op_type == "FusedConv" && n.attr_string("layout", "") == "NHWC";
      transposes += n.op_type == "Transpose";
    }
    progress(fmt::format("pass conv_layout: {} convolutions channels-last, {} Transposes in the graph", nhwc,
                         transposes));
  }
  if (reduced && backend == BackendKind::kCpu)
    progress(fmt::format("precision {}: the CPU backend computes in f32 (the manifest records the request)",
                         precision_name(config.precision)));
  if (config.reduced_precision_io && !reduced)
    return invalid_argument("--reduced-precision-io needs --fp16 or --bf16 (it gives the engine's f32 inputs and "
                            "outputs that dtype)");
  if (config.reduced_precision_io) {
    const DType io = config.precision == Precision::kF16 ? DType::kF16 : DType::kBF16;
    KILN_RETURN_IF_ERROR(passes::reduce_io_precision(g, io).with_context("pass reduce_io_precision"));
    progress(fmt::format("pass reduce_io_precision: float inputs and outputs are {}", dtype_name(io)));
  }
  KILN_RETURN_IF_ERROR(check_profile_extremes(g, config.profiles));
  KILN_ASSIGN_OR_RETURN(AliasMap aliases, resolve_aliases(g, config, progress));
  progress("backend " + std::string(backend_name(backend)));
  EngineState s;
  s.info.backend = backend;
  s.info.format_version = 1;
  s.info.kiln_version = kVersion;
  // The CPU reference computes in f32 whatever the precision asked; the manifest records the request.
  s.info.precision = std::string(precision_name(config.precision));
  s.info.manifest_json = "{}";
  s.info.cuda_graphs = config.cuda_graphs;
  s.info.aliases = std::move(aliases);
  if (reduced) s.info.fp32_layers = config.fp32_layers;
  if (backend == BackendKind::kCuda) s.info.gpu_json = gpu_manifest_json();
  s.profiles = config.profiles;
  s.graph = std::make_shared<const ir::Graph>(std::move(g));
  KILN_RETURN_IF_ERROR(finalize_engine_state(s));
  if (backend == BackendKind::kCuda) KILN_RETURN_IF_ERROR(report_cpu_fallbacks(*s.graph, config, progress));
  if (backend == BackendKind::kCuda && config.tactic_timing) {
    progress("tactic timing");
    KILN_ASSIGN_OR_RETURN(TuneReport t, tune_tactics(s, config.timing_cache_path, progress));
    progress(fmt::format("tactic timing: {} choices timed at {} input shapes in {:.1f} s{}", t.timed, t.shapes,
                         t.seconds,
                         config.timing_cache_path.empty()
                             ? std::string()
                             : fmt::format(" ({} reused from {})", t.from_file, config.timing_cache_path)));
  } else if (!config.timing_cache_path.empty()) {
    return invalid_argument("--timing-cache needs tactic timing (a CUDA engine, without --no-tactic-timing)");
  }
  // Round-trip through the file format so a built engine and a loaded one are the same thing.
  KILN_ASSIGN_OR_RETURN(std::string bytes, Engine(std::make_shared<const EngineState>(s)).serialize());
  return Engine::deserialize(bytes);
}

}  // namespace

Result<Engine> Builder::build_from_file(const std::string& onnx_path, const BuildConfig& config) {
  return no_throw("Builder::build_from_file", [&]() -> Result<Engine> {
    if (config.progress) config.progress("import " + onnx_path);
    KILN_ASSIGN_OR_RETURN(ir::Graph g, onnx::import_model_file(onnx_path));
    return build_graph(std::move(g), config);
  });
}

Result<Engine> Builder::build_from_bytes(const std::string& onnx_bytes, const BuildConfig& config,
                                         const std::string& base_dir) {
  return no_throw("Builder::build_from_bytes", [&]() -> Result<Engine> {
    KILN_ASSIGN_OR_RETURN(ir::Graph g, onnx::import_model_bytes(onnx_bytes, base_dir, "model"));
    return build_graph(std::move(g), config);
  });
}

}  // namespace kiln
