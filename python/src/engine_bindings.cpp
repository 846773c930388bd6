// kiln._kiln.Engine and build(): Builder and Engine from include/kiln/, errors raised as kiln.Error.
#include <memory>
#include <optional>

#include "bindings.h"
#include "context_handle.h"

namespace kiln::python {

namespace {

BackendKind parse_backend_name(const std::string& name) {
  if (name == "auto") return BackendKind::kAuto;
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  throw StatusError(Status(StatusCode::kInvalidArgument, "backend must be 'auto', 'cpu' or 'cuda', got '" + name + "'"));
}

Precision parse_precision(const std::string& name) {
  if (name == "f32") return Precision::kF32;
  if (name == "tf32") return Precision::kTF32;
  if (name == "f16") return Precision::kF16;
  if (name == "bf16") return Precision::kBF16;
  throw StatusError(Status(StatusCode::kInvalidArgument, "precision must be f32, tf32, f16 or bf16, got '" + name + "'"));
}

// The build's progress lines go to a Python callable; the build runs without the GIL, so each call takes it
// back. An exception in the callable (Ctrl-C included) stops further calls and is raised after the build.
struct ProgressRelay {
  py::object callback;
  std::optional<py::error_already_set> error;

  void operator()(std::string_view line) {
    py::gil_scoped_acquire gil;
    if (error || callback.is_none()) return;
    try {
      callback(py::str(line.data(), line.size()));
    } catch (py::error_already_set& e) {
      error = std::move(e);
    }
  }
};

}  // namespace

std::vector<OptimizationProfile> to_profiles(const ProfileSpecs& profiles) {
  std::vector<OptimizationProfile> out;
  for (const auto& p : profiles) {
    OptimizationProfile prof;
    for (const auto& [name, ranges] : p) {
      if (ranges.size() != 3)
        throw StatusError(Status(StatusCode::kInvalidArgument,
                                 "shapes['" + name + "'] needs three shapes (min, opt, max), got " +
                                     std::to_string(ranges.size())));
      prof.inputs[name] = InputRange{ranges[0], ranges[1], ranges[2]};
    }
    out.push_back(std::move(prof));
  }
  return out;
}

namespace {

Engine build(const py::object& model, bool model_is_bytes, const std::string& base_dir, const std::string& backend,
             const std::string& precision, const std::vector<std::string>& fp32_layers,
             const ProfileSpecs& profiles, const std::string& timing_cache, bool reduced_precision_io, bool tactic_timing, bool cuda_graphs,
             bool allow_cpu_fallback, const std::vector<std::pair<std::string, std::string>>& aliases,
             bool auto_alias, const py::object& progress) {
  BuildConfig cfg;
  cfg.backend = parse_backend_name(backend);
  cfg.precision = parse_precision(precision);
  cfg.fp32_layers = fp32_layers;
  cfg.timing_cache_path = timing_cache;
  cfg.reduced_precision_io = reduced_precision_io;
  cfg.tactic_timing = tactic_timing;
  cfg.cuda_graphs = cuda_graphs;
  cfg.allow_cpu_fallback = allow_cpu_fallback;
  cfg.aliases = aliases;
  cfg.auto_alias = auto_alias;
  cfg.profiles = to_profiles(profiles);
  auto relay = std::make_shared<ProgressRelay>();
  relay->callback = progress;
  if (!progress.is_none()) cfg.progress = [relay](std::string_view line) { (*relay)(line); };
  std::string bytes, path;
  if (model_is_bytes)
    bytes = model.cast<std::string>();
  else
    path = model.cast<std::string>();
  Result<Engine> engine = Status(StatusCode::kInternal, "build did not run");
  {
    py::gil_scoped_release nogil;
    engine = model_is_bytes ? Builder::build_from_bytes(bytes, cfg, base_dir) : Builder::build_from_file(path, cfg);
  }
  cfg.progress = nullptr;
  if (relay->error) throw std::move(*relay->error);
  return unwrap(std::move(engine));
}

py::list describe(const std::vector<TensorDesc>& descs) {
  py::list out;
  for (const auto& d : descs) {
    py::list shape;
    if (d.shape.has_rank()) {
      for (const Dim& dim : d.shape.dims()) {
        if (dim.is_static())
          shape.append(dim.value());
        else
          shape.append(py::str(dim.is_symbolic() ? dim.symbol_name() : std::string("?")));
      }
    }
    out.append(py::make_tuple(d.name, user_dtype_name(d.dtype), d.shape.has_rank() ? py::object(py::tuple(shape))
                                                                                  : py::object(py::none())));
  }
  return out;
}

py::dict info_dict(const Engine& e) {
  const EngineInfo& i = e.info();
  py::dict d;
  d["format_version"] = i.format_version;
  d["kiln_version"] = i.kiln_version;
  d["backend"] = std::string(backend_name(i.backend));
  d["precision"] = i.precision;
  d["fp32_layers"] = i.fp32_layers;
  d["manifest_json"] = i.manifest_json;
  d["gpu_json"] = i.gpu_json;
  d["num_nodes"] = i.num_nodes;
  d["weight_bytes"] = i.weight_bytes;
  d["tactics"] = i.tactics;
  d["cuda_graphs"] = i.cuda_graphs;
  d["aliases"] = i.aliases;
  d["bundle_members"] = i.bundle_members;
  d["op_histogram"] = e.op_histogram();
  return d;
}

}  // namespace

void bind_engine(py::module_& m) {
  m.def("build", &build, py::arg("model"), py::arg("model_is_bytes"), py::arg("base_dir"), py::arg("backend"),
        py::arg("precision"), py::arg("fp32_layers"), py::arg("profiles"), py::arg("timing_cache"),
        py::arg("reduced_precision_io"), py::arg("tactic_timing"), py::arg("cuda_graphs"),
        py::arg("allow_cpu_fallback"), py::arg("aliases"), py::arg("auto_alias"), py::arg("progress"),
        "Builds an engine from an ONNX path or bytes (kiln.build is the documented entry point).");
  py::class_<Engine>(m, "Engine", "A compiled model (kiln.Engine wraps it).")
      .def_static(
          "load",
          [](const std::string& path) {
            Result<Engine> r = Status(StatusCode::kInternal, "load did not run");
            {
              py::gil_scoped_release nogil;
              r = Engine::load(path);
            }
            return unwrap(std::move(r));
          },
          py::arg("path"))
      .def_static(
          "bundle",
          [](const std::vector<Engine>& members) {
            Result<Engine> r = Status(StatusCode::kInternal, "bundle did not run");
            {
              py::gil_scoped_release nogil;
              r = Engine::bundle(members);
            }
            return unwrap(std::move(r));
          },
          py::arg("members"))
      .def("members", &Engine::members)
      .def_static(
          "deserialize",
          [](const py::bytes& data) {
            std::string bytes = data;
            Result<Engine> r = Status(StatusCode::kInternal, "deserialize did not run");
            {
              py::gil_scoped_release nogil;
              r = Engine::deserialize(bytes);
            }
            return unwrap(std::move(r));
          },
          py::arg("data"))
      .def(
          "save",
          [](const Engine& e, const std::string& path) {
            Status s;
            {
              py::gil_scoped_release nogil;
              s = e.save(path);
            }
            check(s);
          },
          py::arg("path"))
      .def("serialize",
           [](const Engine& e) {
             Result<std::string> r = Status(StatusCode::kInternal, "serialize did not run");
             {
               py::gil_scoped_release nogil;
               r = e.serialize();
             }
             return py::bytes(unwrap(std::move(r)));
           })
      .def("inputs", [](const Engine& e) { return describe(e.inputs()); })
      .def("outputs", [](const Engine& e) { return describe(e.outputs()); })
      .def("profiles",
           [](const Engine& e) {
             py::list out;
             for (const auto& p : e.profiles()) {
               py::dict d;
               for (const auto& [name, r] : p.inputs)
                 d[py::str(name)] = py::make_tuple(py::tuple(py::cast(r.min)), py::tuple(py::cast(r.opt)),
                                                   py::tuple(py::cast(r.max)));
               out.append(d);
             }
             return out;
           })
      .def("info", &info_dict)
      .def("create_context", [](const Engine& e) { return ContextHandle::create(e); });
}

}  // namespace kiln::python
