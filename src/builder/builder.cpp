#include "kiln/builder.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "backends/device_probe.h"
#include "kiln/version.h"
#include "onnx/importer.h"
#include "passes/pass.h"
#include "runtime/engine_state.h"
#include "util/error.h"
#include "util/file.h"

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

Result<Engine> build_graph(ir::Graph g, const BuildConfig& config) {
  auto progress = [&](std::string_view s) {
    if (config.progress) config.progress(s);
  };
  BackendKind backend = config.backend;
  if (backend == BackendKind::kAuto) backend = cuda_backend_available() ? BackendKind::kCuda : BackendKind::kCpu;
  if (backend == BackendKind::kCuda && !cuda_backend_available())
    return unsupported("--backend cuda is not available: {}; use --backend cpu", cuda_unavailable_reason());
  KILN_RETURN_IF_ERROR(check_profiles(g, config.profiles));
  KILN_RETURN_IF_ERROR(passes::run_pipeline(g, passes::default_pipeline(), progress));
  KILN_RETURN_IF_ERROR(check_profile_extremes(g, config.profiles));
  progress("backend " + std::string(backend_name(backend)));
  EngineState s;
  s.info.backend = backend;
  s.info.format_version = 1;
  s.info.kiln_version = kVersion;
  // The CPU reference computes in f32 whatever the precision asked; the manifest records the request.
  s.info.precision = std::string(precision_name(config.precision));
  s.info.manifest_json = "{}";
  if (backend == BackendKind::kCuda) {
    if (config.precision == Precision::kF16 || config.precision == Precision::kBF16)
      return unsupported("--{} is not implemented yet for the CUDA backend (f32 and --tf32 are); build without it",
                         precision_name(config.precision));
    s.info.gpu_json = gpu_manifest_json();
  }
  s.profiles = config.profiles;
  s.graph = std::make_shared<const ir::Graph>(std::move(g));
  KILN_RETURN_IF_ERROR(finalize_engine_state(s));
  // Round-trip through the file format so a built engine and a loaded one are the same thing.
  KILN_ASSIGN_OR_RETURN(std::string bytes, Engine(std::make_shared<const EngineState>(s)).serialize());
  return Engine::deserialize(bytes);
}

}  // namespace

Result<Engine> Builder::build_from_file(const std::string& onnx_path, const BuildConfig& config) {
  if (config.progress) config.progress("import " + onnx_path);
  KILN_ASSIGN_OR_RETURN(ir::Graph g, onnx::import_model_file(onnx_path));
  return build_graph(std::move(g), config);
}

Result<Engine> Builder::build_from_bytes(const std::string& onnx_bytes, const BuildConfig& config,
                                         const std::string& base_dir) {
  KILN_ASSIGN_OR_RETURN(ir::Graph g, onnx::import_model_bytes(onnx_bytes, base_dir, "model"));
  return build_graph(std::move(g), config);
}

}  // namespace kiln
