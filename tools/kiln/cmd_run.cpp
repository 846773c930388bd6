// kiln run FILE.kiln|MODEL.onnx [--input NAME=FILE ...] [--output-dir DIR]
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "kiln/device.h"
#include "cli_common.h"
#include "kiln/tensor_io.h"
#include "kiln/random_tensor.h"

namespace kiln::cli {

namespace {

struct RunOptions {
  std::string model, backend = "auto", output_dir;
  std::vector<std::string> inputs, shapes;
  uint64_t seed = 0;
  int iterations = 1;
  int opt_profile = 0;
  bool opt_profile_given = false;
  bool json = false, quiet = false;
};

// Random data for inputs not given: floats in [-1,1), integers in [0,10), bools 50/50. Dynamic dims take the
// profile's opt value, else 1.
Result<Tensor> random_input(const TensorDesc& d, const Engine& e, int profile, std::mt19937_64& rng) {
  std::vector<int64_t> dims;
  const InputRange* r = nullptr;
  if (!e.profiles().empty()) {
    const auto& p = e.profiles()[static_cast<size_t>(profile)];
    auto it = p.inputs.find(d.name);
    if (it != p.inputs.end()) r = &it->second;
  }
  if (r) {
    dims = r->opt;
  } else {
    if (!d.shape.has_rank())
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("input '{}' has unknown rank; pass it with --input {}=FILE", d.name, d.name));
    for (const auto& dim : d.shape.dims()) dims.push_back(dim.is_static() ? dim.value() : 1);
  }
  auto t = random_tensor(d.dtype, dims, rng, "input '" + d.name + "'");
  if (!t.ok() && t.status().code() == StatusCode::kUnsupported)
    return Status(StatusCode::kUnsupported, t.status().message() + "; pass --input");
  return t;
}

nlohmann::json summarize(const Tensor& t) {
  double sum = 0, mn = INFINITY, mx = -INFINITY;
  int64_t nonfinite = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.get_as_double(i);
    if (!std::isfinite(v)) {
      ++nonfinite;
      continue;
    }
    sum += v;
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
  nlohmann::json first = nlohmann::json::array();
  for (int64_t i = 0; i < std::min<int64_t>(t.numel(), 6); ++i) first.push_back(t.get_as_double(i));
  return {{"dtype", std::string(dtype_name(t.dtype()))},
          {"shape", t.dims()},
          {"mean", t.numel() ? sum / static_cast<double>(t.numel()) : 0.0},
          {"min", t.numel() ? mn : 0.0},
          {"max", t.numel() ? mx : 0.0},
          {"nonfinite", nonfinite},
          {"first", first}};
}

int run_run(const RunOptions& o) {
  auto engine = load_or_build(o.model, o.backend, o.shapes, o.quiet || o.json);
  if (!engine.ok()) return fail(engine.status());
  if (Status s = check_profile_index(*engine, o.opt_profile); !s.ok()) return fail(s);
  std::map<std::string, Tensor> inputs;
  for (const auto& spec : o.inputs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0)
      return fail(Status(StatusCode::kInvalidArgument, "--input '" + spec + "': expected NAME=FILE (.npy or .pb)"));
    auto t = io::load_tensor_file(spec.substr(eq + 1));
    if (!t.ok()) return fail(t.status().with_context("--input " + spec.substr(0, eq)));
    inputs[spec.substr(0, eq)] = *t;
  }
  std::mt19937_64 rng(o.seed);
  for (const auto& d : engine->inputs()) {
    if (inputs.count(d.name)) continue;
    auto t = random_input(d, *engine, o.opt_profile, rng);
    if (!t.ok()) return fail(t.status());
    if (!o.quiet && !o.json) std::cerr << fmt::format("kiln: input '{}' not given: random {} (seed {})\n", d.name, t->describe(), o.seed);
    inputs[d.name] = *t;
  }
  auto ctx = engine->create_context();
  if (!ctx.ok()) return fail(ctx.status());
  // Without --opt-profile a bundle picks its member from the shapes; a single engine runs under profile 0.
  if (o.opt_profile_given)
    if (Status s = ctx->set_profile(o.opt_profile); !s.ok()) return fail(s);
  std::map<std::string, Tensor> outputs;
  std::vector<double> times;
  for (int i = 0; i < std::max(1, o.iterations); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto out = ctx->infer(inputs);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (!out.ok()) return fail(out.status());
    outputs = std::move(*out);
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2];
  if (!o.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.output_dir, ec);
    if (ec) return fail(Status(StatusCode::kIoError, "cannot create --output-dir '" + o.output_dir + "': " + ec.message()));
    for (const auto& [name, t] : outputs) {
      std::string safe = name;
      for (char& c : safe)
        if (c == '/' || c == '\\' || c == ':') c = '_';
      Status s = io::save_npy(t, (std::filesystem::path(o.output_dir) / (safe + ".npy")).string());
      if (!s.ok()) return fail(s);
    }
  }
  const std::string backend(backend_name(engine->info().backend));
  if (o.json) {
    nlohmann::json j = {{"backend", backend}, {"latency_ms", {{"median", median}, {"min", times.front()}, {"iterations", times.size()}}}};
    for (const auto& [name, t] : outputs) j["outputs"][name] = summarize(t);
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("backend: {}{}\n", backend,
                           backend == "cpu" ? fmt::format(" ({})", cuda_backend_available() ? "chosen" : cuda_unavailable_reason()) : "");
  for (const auto& [name, t] : outputs) {
    auto s = summarize(t);
    std::cout << fmt::format("output '{}': {} mean={:.6g} min={:.6g} max={:.6g} first={}{}\n", name, t.describe(),
                             s["mean"].get<double>(), s["min"].get<double>(), s["max"].get<double>(), s["first"].dump(),
                             s["nonfinite"].get<int64_t>() ? fmt::format(" nonfinite={}", s["nonfinite"].get<int64_t>()) : "");
  }
  std::cout << fmt::format("latency: median {:.3f} ms, min {:.3f} ms over {} run(s)\n", median, times.front(), times.size());
  if (!o.output_dir.empty()) std::cout << fmt::format("wrote {} output(s) to {}\n", outputs.size(), o.output_dir);
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Run an engine (or build an ONNX model in memory and run it)");
  cmd->add_option("model", o->model, "Engine file (.kiln) or ONNX model (.onnx)")->required();
  cmd->add_option("--input", o->inputs, "NAME=FILE with FILE a .npy or ONNX TensorProto .pb (repeatable); "
                                        "inputs not given get random data");
  cmd->add_option("--seed", o->seed, "Seed for random inputs (default 0)");
  auto* opt_profile = cmd->add_option("--opt-profile", o->opt_profile,
                                      "Optimization profile to run under (default 0; a bundle's run goes to the "
                                      "engine that takes the input shapes unless this is given); random inputs "
                                      "take its opt shapes");
  cmd->add_option("--output-dir", o->output_dir, "Write one NAME.npy per output here; otherwise print a summary");
  cmd->add_option("--shapes", o->shapes, "Profile for .onnx input built in memory: NAME:MIN,OPT,MAX (repeatable)");
  cmd->add_option("--backend", o->backend, "For .onnx input: cpu, cuda or auto (default auto)");
  cmd->add_option("--iterations", o->iterations, "Run this many times and report the median latency (default 1)");
  cmd->add_flag("--json", o->json, "Print outputs summary and timing as JSON");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress lines");
  cmd->callback([o, opt_profile] {
    o->opt_profile_given = opt_profile->count() > 0;
    std::exit(run_run(*o));
  });
}

}  // namespace kiln::cli
