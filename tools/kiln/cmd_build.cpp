// kiln build MODEL.onnx -o FILE.kiln
#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "kiln/device.h"
#include "cli_common.h"

namespace kiln::cli {

namespace {

struct BuildOptions {
  std::string model, output, backend = "auto";
  std::vector<std::string> shapes, fp32_layers, aliases, bundle_precisions;
  bool bundle = false;
  bool fp16 = false, bf16 = false, tf32 = false, json = false, quiet = false, no_cuda_graph = false,
       reduced_io = false, no_tactic_timing = false, no_cpu_fallback = false, no_auto_alias = false;
  std::string timing_cache, conv_layout = "auto";
};

Result<Precision> parse_precision(const std::string& p) {
  if (p == "f32" || p == "fp32") return Precision::kF32;
  if (p == "tf32") return Precision::kTF32;
  if (p == "f16" || p == "fp16") return Precision::kF16;
  if (p == "bf16") return Precision::kBF16;
  return Status(StatusCode::kInvalidArgument,
                fmt::format("--bundle-precisions takes f32, tf32, f16 or bf16 (comma-separated), got '{}'", p));
}

// One engine per profile and precision (profile-major, so a shape's first precision serves it by default),
// then one bundle of them.
Result<Engine> build_bundle(const BuildOptions& o, const BuildConfig& cfg) {
  std::vector<Precision> precisions;
  for (const auto& p : o.bundle_precisions) {
    KILN_ASSIGN_OR_RETURN(Precision q, parse_precision(p));
    precisions.push_back(q);
  }
  if (precisions.empty()) precisions.push_back(cfg.precision);
  const size_t profiles = std::max<size_t>(cfg.profiles.size(), 1);
  if (profiles * precisions.size() < 2)
    return Status(StatusCode::kInvalidArgument,
                  "--bundle needs two or more engines: give an input several --shapes ranges (one engine each), e.g. "
                  "--shapes x:1x3x224x224,4x3x224x224,4x3x224x224 --shapes x:5x3x224x224,32x3x224x224,32x3x224x224, "
                  "or several --bundle-precisions");
  std::vector<Engine> members;
  for (size_t p = 0; p < profiles; ++p)
    for (Precision q : precisions) {
      BuildConfig member = cfg;
      if (!cfg.profiles.empty()) member.profiles = {cfg.profiles[p]};
      member.precision = q;
      if (cfg.progress)
        cfg.progress(fmt::format("bundle member {} of {}: profile {}, {}", members.size() + 1,
                                 profiles * precisions.size(), p, precision_name(q)));
      auto e = Builder::build_from_file(o.model, member);
      if (!e.ok()) return e.status().with_context(fmt::format("bundle member {}", members.size()));
      members.push_back(std::move(*e));
    }
  return Engine::bundle(members);
}

int run_build(const BuildOptions& o) {
  BuildConfig cfg;
  auto b = parse_backend(o.backend);
  if (!b) return fail(Status(StatusCode::kInvalidArgument, "--backend must be auto, cpu or cuda, got '" + o.backend + "'"));
  cfg.backend = *b;
  if (int(o.fp16) + int(o.bf16) + int(o.tf32) > 1)
    return fail(Status(StatusCode::kInvalidArgument, "choose at most one of --fp16, --bf16, --tf32"));
  if (!o.bundle_precisions.empty() && (o.fp16 || o.bf16 || o.tf32))
    return fail(Status(StatusCode::kInvalidArgument,
                       "--bundle-precisions sets each member's precision; leave out --fp16, --bf16 and --tf32"));
  cfg.cuda_graphs = !o.no_cuda_graph;
  cfg.precision = o.fp16 ? Precision::kF16 : o.bf16 ? Precision::kBF16 : o.tf32 ? Precision::kTF32 : Precision::kF32;
  auto fp32_layers = expand_fp32_layers(o.fp32_layers);
  if (!fp32_layers.ok()) return fail(fp32_layers.status());
  cfg.fp32_layers = std::move(*fp32_layers);
  cfg.reduced_precision_io = o.reduced_io;
  cfg.tactic_timing = !o.no_tactic_timing;
  cfg.conv_layout = o.conv_layout == "nchw"   ? ConvLayoutChoice::kNCHW
                    : o.conv_layout == "nhwc" ? ConvLayoutChoice::kNHWC
                                              : ConvLayoutChoice::kAuto;
  cfg.timing_cache_path = o.timing_cache;
  cfg.allow_cpu_fallback = !o.no_cpu_fallback;
  for (const auto& a : o.aliases) {
    const auto colon = a.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == a.size())
      return fail(Status(StatusCode::kInvalidArgument,
                         fmt::format("--alias takes OUTPUT:INPUT (e.g. present.0.key:past_key_values.0.key), got '{}'",
                                     a)));
    cfg.aliases.emplace_back(a.substr(0, colon), a.substr(colon + 1));
  }
  cfg.auto_alias = !o.no_auto_alias;
  if (!o.shapes.empty()) {
    auto profiles = parse_profiles(o.shapes);
    if (!profiles.ok()) return fail(profiles.status());
    cfg.profiles = std::move(*profiles);
  }
  if (cfg.backend == BackendKind::kAuto && !cuda_backend_available() && !o.quiet)
    std::cerr << "kiln: backend auto -> cpu (" << cuda_unavailable_reason() << ")\n";
  cfg.progress = progress_printer(o.quiet || o.json);
  // Nodes left to the CPU cost a read-back per run: named even with --quiet (on stderr, not in --json's stdout).
  cfg.warning = [](std::string_view line) { std::cerr << "kiln: " << line << "\n"; };
  auto t0 = std::chrono::steady_clock::now();
  auto engine = o.bundle || !o.bundle_precisions.empty() ? build_bundle(o, cfg) : Builder::build_from_file(o.model, cfg);
  if (!engine.ok()) return fail(engine.status());
  Status saved = engine->save(o.output);
  if (!saved.ok()) return fail(saved);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (o.json) {
    nlohmann::json j = {{"engine", o.output},
                        {"backend", std::string(backend_name(engine->info().backend))},
                        {"precision", engine->info().precision},
                        {"fp32_layers", engine->info().fp32_layers},
                        {"nodes", engine->info().num_nodes},
                        {"weight_bytes", engine->info().weight_bytes},
                        {"tactics", engine->info().tactics},
                        {"aliases", engine->info().aliases},
                        {"build_ms", ms}};
    if (engine->info().bundle_members) j["bundle_members"] = nlohmann::json::parse(kiln::bundle_members_json(*engine));
    std::cout << j.dump(2) << "\n";
  } else {
    const size_t members = engine->info().bundle_members;
    std::cout << fmt::format("built {} ({} backend, {}{} nodes, {:.1f} MB weights) in {:.1f} ms\n", o.output,
                             backend_name(engine->info().backend),
                             members ? fmt::format("a bundle of {} engines, ", members) : "", engine->info().num_nodes,
                             engine->info().weight_bytes / 1e6, ms);
  }
  return 0;
}

}  // namespace

void add_build_command(CLI::App& app) {
  auto o = std::make_shared<BuildOptions>();
  auto* cmd = app.add_subcommand("build", "Compile an ONNX model into an engine file");
  cmd->footer(
      "Precision: the default is f32 with TF32 off (results match the f32 reference). --tf32, --fp16 and --bf16 "
      "opt in to faster, less precise math on the CUDA backend; with --fp16/--bf16 the engine's inputs and "
      "outputs keep the model's dtypes (unless --reduced-precision-io) and --fp32-layers keeps named nodes in f32. The CPU backend always "
      "computes in f32.");
  cmd->add_option("model", o->model, "ONNX model (.onnx); external-data files must sit next to it")->required();
  cmd->add_option("-o,--output", o->output, "Engine file to write (.kiln)")->required();
  cmd->add_option("--backend", o->backend,
                  "cpu, cuda or auto (default: cuda where a GPU and the CUDA backend are present, else cpu)");
  cmd->add_option("--shapes", o->shapes,
                  "Optimization profile per dynamic input: NAME:MIN,OPT,MAX with dims like 1x3x224x224 "
                  "(repeatable; NAME:DIMS fixes one shape). Give an input again for more profiles: its k-th "
                  "--shapes goes to profile k (select one with run/bench --opt-profile K)");
  cmd->add_flag("--fp16", o->fp16,
                "Compute in f16 where the CUDA kernels can (the rest stays f32; I/O keeps the model's dtypes). "
                "Default: f32 with TF32 off; --tf32, --fp16 and --bf16 each opt in to less precision. The CPU "
                "backend always computes in f32");
  cmd->add_flag("--bf16", o->bf16, "Compute in bf16 where the CUDA kernels can (as --fp16; CPU backend: f32)");
  cmd->add_flag("--tf32", o->tf32, "Allow TF32 matrix math (CUDA; default f32 with TF32 off)");
  cmd->add_option("--fp32-layers", o->fp32_layers,
                  "With --fp16/--bf16: node names (comma-separated or repeated) that keep computing in f32, "
                  "e.g. a final Softmax; @FILE reads them from FILE (one per line or comma-separated, # "
                  "comments), as kiln compare --precision-bisect writes it; an unknown name is an error that "
                  "lists the nearest names")
      ->delimiter(',');
  cmd->add_flag("--reduced-precision-io", o->reduced_io,
                "With --fp16/--bf16: the engine's f32 inputs and outputs become f16/bf16 too (half the I/O bytes, "
                "no casts at the edges; feed and read f16 .npy files). Integer I/O is unchanged");
  cmd->add_option("--conv-layout", o->conv_layout,
                  "CUDA with --fp16/--bf16: auto (default: channels-last NHWC at every batch), nchw or nhwc")
      ->check(CLI::IsMember({"auto", "nchw", "nhwc"}));
  cmd->add_option("--timing-cache", o->timing_cache,
                  "CUDA: a timing cache file; tactic choices it holds (for this GPU and library versions) are not "
                  "timed again, and it is rewritten with every choice after the build (faster, deterministic "
                  "rebuilds)");
  cmd->add_flag("--no-tactic-timing", o->no_tactic_timing,
                "CUDA: do not time kernel tactics at build (default: timed at each profile's min/opt/max shapes "
                "and stored in the engine; without, each context times a shape on its first run)");
  cmd->add_flag("--no-cuda-graph", o->no_cuda_graph,
                "CUDA engines: run node by node instead of replaying a CUDA graph captured per input shape (the "
                "default; graphs remove launch overhead, node-by-node helps debugging and profiling)");
  cmd->add_flag("--no-cpu-fallback", o->no_cpu_fallback,
                "CUDA: fail the build if a node has no CUDA kernel for its op or dtypes (default: it runs on the "
                "CPU reference, and the build names each such node with why)");
  cmd->add_option("--alias", o->aliases,
                  "OUTPUT:INPUT (repeatable): the output is written into the input's buffer, so a KV cache is "
                  "updated in place (same dtype and shape required; see docs/kv_cache.md). Outputs named like a "
                  "cache's next state (present.N... for past_key_values.N... or past.N...) are paired without it")
      ->allow_extra_args(false);
  cmd->add_flag("--no-auto-alias", o->no_auto_alias,
                "Pair only the --alias pairs, not outputs and inputs found by their KV-cache names");
  cmd->add_flag("--bundle", o->bundle,
                "Write a bundle: one engine per --shapes profile (and per --bundle-precisions), in one file that "
                "stores equal weights once; run, bench and the API send each call to the engine whose profile "
                "fits its shapes best (the smallest that takes them). See docs/bundles.md");
  cmd->add_option("--bundle-precisions", o->bundle_precisions,
                  "With --bundle (implied): build each profile in these precisions (f32, tf32, f16, bf16; "
                  "comma-separated). The first listed serves a shape; run/bench --opt-profile K or "
                  "ExecutionContext::set_profile picks another")
      ->delimiter(',');
  cmd->add_flag("--json", o->json, "Print the build summary as JSON");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress lines");
  cmd->callback([o] { std::exit(run_build(*o)); });
}

}  // namespace kiln::cli
