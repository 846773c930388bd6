// kiln compare MODEL.onnx [--engine FILE.kiln | build flags] [--reference DIR] [--layerwise] [--precision-bisect]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <set>

#include "kiln/device.h"
#include "cli_common.h"
#include "compare_bisect.h"
#include "compare_html.h"
#include "compare_report.h"
#include "kiln/tensor_io.h"
#include "kiln/compare.h"

namespace kiln::cli {

namespace {

struct CompareOptions {
  std::string model, engine, backend = "auto", conv_layout = "auto";
  std::vector<std::string> shapes, fp32_layers, inputs;
  bool fp16 = false, bf16 = false, tf32 = false;
  std::string reference, reference_model, reference_precision = "f32";
  uint64_t seed = 0;
  int random_shapes = 0;
  std::optional<double> atol, rtol, cosine;
  bool layerwise = false, json = false, quiet = false;
  bool emulate = false, precision_bisect = false;
  std::string bisect_out;
  std::string html;  // --html FILE
};

Status usage(const std::string& msg) { return Status(StatusCode::kInvalidArgument, msg); }

Status check_flags(const CompareOptions& o, const CLI::App& cmd) {
  if (!o.engine.empty())
    for (const char* f : {"--backend", "--fp16", "--bf16", "--tf32", "--fp32-layers", "--conv-layout"})
      if (cmd.count(f))
        return usage(fmt::format("{} is a build flag, but --engine gives an engine already built; drop one of them", f));
  if (int(o.fp16) + int(o.bf16) + int(o.tf32) > 1) return usage("choose at most one of --fp16, --bf16, --tf32");
  if (!o.reference.empty()) {
    if (!o.reference_model.empty()) return usage("--reference (saved outputs) and --reference-model exclude each other");
    if (o.layerwise)
      return usage("--layerwise needs kiln's CPU reference (intermediate tensors): drop --reference");
    if (o.random_shapes > 0) return usage("--random-shapes needs random inputs: drop --reference");
    if (cmd.count("--reference-precision"))
      return usage("--reference-precision applies to kiln's CPU reference, not to --reference outputs");
  }
  if (o.reference_precision != "f32" && o.reference_precision != "f64")
    return usage("--reference-precision must be f32 or f64, got '" + o.reference_precision + "'");
  if (o.random_shapes < 0) return usage("--random-shapes must be 0 or more");
  if (o.emulate && o.engine.empty() && !o.fp16 && !o.bf16)
    return usage("--emulate-precision emulates an f16/bf16 engine: add --fp16 or --bf16");
  if (!o.bisect_out.empty() && !o.precision_bisect) return usage("--bisect-out goes with --precision-bisect");
  if (!o.html.empty()) KILN_RETURN_IF_ERROR(check_output_file("--html", o.html));
  if (o.precision_bisect) {
    if (!o.engine.empty())
      return usage("--precision-bisect rebuilds the engine with layers in f32: give MODEL and the build flags "
                   "(--fp16 or --bf16 ...) instead of --engine");
    if (!o.fp16 && !o.bf16) return usage("--precision-bisect looks for layers to keep in f32 in an --fp16 or --bf16 "
                                         "engine: add one of them");
    if (!o.reference.empty())
      return usage("--precision-bisect ranks layers by their error against kiln's CPU reference: drop --reference");
  }
  return Status();
}

Result<BuildConfig> build_config(const CompareOptions& o) {
  BuildConfig cfg;
  auto b = parse_backend(o.backend);
  if (!b) return usage("--backend must be auto, cpu or cuda, got '" + o.backend + "'");
  cfg.backend = *b;
  cfg.precision = o.fp16 ? Precision::kF16 : o.bf16 ? Precision::kBF16 : o.tf32 ? Precision::kTF32 : Precision::kF32;
  KILN_ASSIGN_OR_RETURN(cfg.fp32_layers, expand_fp32_layers(o.fp32_layers));
  cfg.conv_layout = o.conv_layout == "nchw"   ? ConvLayoutChoice::kNCHW
                    : o.conv_layout == "nhwc" ? ConvLayoutChoice::kNHWC
                                              : ConvLayoutChoice::kAuto;
  if (!o.shapes.empty()) {
    KILN_ASSIGN_OR_RETURN(cfg.profiles, parse_profiles(o.shapes));
  }
  return cfg;
}

// The build flags as kiln build takes them, for the command --precision-bisect prints.
std::vector<std::string> build_flags(const CompareOptions& o) {
  std::vector<std::string> f;
  if (o.backend != "auto") f.insert(f.end(), {"--backend", o.backend});
  for (const auto& s : o.shapes) f.insert(f.end(), {"--shapes", s});
  f.push_back(o.fp16 ? "--fp16" : o.bf16 ? "--bf16" : o.tf32 ? "--tf32" : "");
  if (f.back().empty()) f.pop_back();
  if (o.conv_layout != "auto") f.insert(f.end(), {"--conv-layout", o.conv_layout});
  return f;
}

// A CPU engine asked for f16/bf16 computes in f32; --emulate-precision (implied by --precision-bisect there)
// rounds its values as an f16/bf16 GPU engine stores them.
bool emulated(const CompareOptions& o, const Engine& e) {
  return e.info().backend == BackendKind::kCpu && (e.info().precision == "f16" || e.info().precision == "bf16") &&
         (o.emulate || o.precision_bisect);
}

std::string cpu_precision_note(const CompareOptions& o, const Engine& e) {
  if (e.info().backend != BackendKind::kCpu || e.info().precision == "f32") return "";
  if (emulated(o, e))
    return fmt::format(", emulated: computed in f32 by the CPU backend with every value an {0} GPU engine stores "
                       "in {0} rounded to {0}",
                       e.info().precision);
  return ", computed in f32 by the CPU backend";
}

Result<Engine> make_engine(const CompareOptions& o, std::string& described) {
  if (!o.engine.empty()) {
    KILN_ASSIGN_OR_RETURN(Engine e, Engine::load(o.engine));
    described = fmt::format("{} ({} backend, {}{})", o.engine, backend_name(e.info().backend), e.info().precision,
                            cpu_precision_note(o, e));
    return e;
  }
  KILN_ASSIGN_OR_RETURN(BuildConfig cfg, build_config(o));
  if (cfg.backend == BackendKind::kAuto && !cuda_backend_available() && !o.quiet && !o.json)
    std::cerr << "kiln: backend auto -> cpu (" << cuda_unavailable_reason() << ")\n";
  cfg.progress = progress_printer(o.quiet || o.json);
  KILN_ASSIGN_OR_RETURN(Engine e, Builder::build_from_file(o.model, cfg));
  described = fmt::format("built in memory from {} ({} backend, {}{}{})", o.model, backend_name(e.info().backend),
                          e.info().precision, cpu_precision_note(o, e),
                          cfg.profiles.empty() ? "" : fmt::format(", {} profile(s)", cfg.profiles.size()));
  return e;
}

Result<std::map<std::string, Tensor>> given_inputs(const std::vector<std::string>& specs) {
  std::map<std::string, Tensor> out;
  for (const auto& spec : specs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0)
      return usage("--input '" + spec + "': expected NAME=FILE (.npy or .pb)");
    auto t = io::load_tensor_file(spec.substr(eq + 1));
    if (!t.ok()) return t.status().with_context("--input " + spec.substr(0, eq));
    out[spec.substr(0, eq)] = *t;
  }
  return out;
}

// Runs the engine under the first profile (from `first`) that takes these input shapes.
Result<std::map<std::string, Tensor>> run_engine(const Engine& e, int first,
                                                 const std::map<std::string, Tensor>& model_inputs) {
  std::map<std::string, Tensor> in;
  for (const auto& d : e.inputs()) {
    auto it = model_inputs.find(d.name);
    if (it == model_inputs.end()) return usage(fmt::format("the engine's input '{}' is not an input of the model", d.name));
    in[d.name] = d.dtype == DType::kUndefined ? it->second : compare::convert(it->second, d.dtype);
  }
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, e.create_context());
  const int n = std::max<int>(1, static_cast<int>(e.profiles().size()));
  Status last;
  for (int k = 0; k < n; ++k) {
    const int p = (first + k) % n;
    KILN_RETURN_IF_ERROR(ctx.set_profile(p));
    auto out = ctx.infer(in);
    if (out.ok() || out.status().code() != StatusCode::kOutOfRange) return out;
    last = out.status();
  }
  return last;
}

struct Layerwise {
  std::vector<compare::Layer> layers;          // compared ones, in node order
  std::map<std::string, std::string> engine;   // value -> engine node
  std::map<std::string, std::vector<std::string>> fused_with;  // compared value -> fused-away nodes upstream
};

// The model nodes upstream of `layer` whose outputs the engine no longer has: fused into what computes it.
std::vector<std::string> fused_upstream(const compare::Layer& layer, const std::map<std::string, const compare::Layer*>& by_value,
                                        const std::map<std::string, std::string>& engine) {
  std::vector<std::string> out, stack = layer.inputs;
  std::set<std::string> seen;
  while (!stack.empty()) {
    const std::string v = stack.back();
    stack.pop_back();
    auto it = by_value.find(v);
    if (it == by_value.end() || engine.count(v) || !seen.insert(it->second->node).second) continue;
    out.push_back(fmt::format("'{}' ({})", it->second->node, it->second->op));
    stack.insert(stack.end(), it->second->inputs.begin(), it->second->inputs.end());
  }
  return out;
}

// One shape's inputs and what the reference says for them (every node output too with --layerwise).
struct PreparedCase {
  compare::ShapeCase shape;
  std::map<std::string, Tensor> inputs, want;
};

// Runs `run_with` (the engine, its layer values as extra outputs with --layerwise) on every case and compares.
Result<std::vector<CaseResult>> evaluate(const Engine& run_with, const std::vector<PreparedCase>& cases,
                                         const std::vector<std::string>& outputs, Layerwise& lw,
                                         const compare::Tolerance& tol, std::vector<std::string>* notes) {
  std::vector<CaseResult> results;
  for (const auto& pc : cases) {
    auto got = run_engine(run_with, pc.shape.profile, pc.inputs);
    if (!got.ok()) return got.status().with_context(pc.shape.label + ": the engine");
    CaseResult cr;
    cr.shape = pc.shape;
    for (const auto& name : outputs) {
      if (!pc.want.count(name)) continue;
      if (!got->count(name)) return Status(StatusCode::kInternal, "the engine produced no output '" + name + "'");
      cr.outputs.push_back(compare::compare_tensors(name, got->at(name), pc.want.at(name), tol));
    }
    for (const auto& l : lw.layers) {
      if (!got->count(l.value) || !pc.want.count(l.value)) continue;
      if (got->at(l.value).dims() != pc.want.at(l.value).dims()) {
        // Rewritten by the optimizations (a layout change): a different tensor under the same name.
        const std::string note = fmt::format("layer '{}' -> '{}': the engine's {} vs the reference's {} (rewritten "
                                             "by the optimizations): not compared",
                                             l.node, l.value, dims_to_string(got->at(l.value).dims()),
                                             dims_to_string(pc.want.at(l.value).dims()));
        if (notes && std::find(notes->begin(), notes->end(), note) == notes->end()) notes->push_back(note);
        continue;
      }
      cr.layers.push_back({l, lw.engine[l.value],
                           compare::compare_tensors(l.value, got->at(l.value), pc.want.at(l.value), tol),
                           lw.fused_with[l.value]});
      if (!cr.first_divergence && !cr.layers.back().cmp.pass) cr.first_divergence = cr.layers.size() - 1;
    }
    results.push_back(std::move(cr));
  }
  return results;
}

// Median wall time of infer() on one case's inputs: the cost --precision-bisect reports for its layer set.
Result<double> median_latency_ms(const Engine& e, const PreparedCase& pc, int runs) {
  std::map<std::string, Tensor> in;
  for (const auto& d : e.inputs())
    if (auto it = pc.inputs.find(d.name); it != pc.inputs.end())
      in[d.name] = d.dtype == DType::kUndefined ? it->second : compare::convert(it->second, d.dtype);
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, e.create_context());
  if (!e.profiles().empty()) KILN_RETURN_IF_ERROR(ctx.set_profile(pc.shape.profile));
  std::vector<double> ms;
  for (int i = 0; i < runs + 3; ++i) {  // three warm-up runs
    const auto t0 = std::chrono::steady_clock::now();
    auto out = ctx.infer(in);
    if (!out.ok()) return out.status().with_context("timing " + pc.shape.label);
    if (i >= 3) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int run_compare(const CompareOptions& o, const CLI::App& cmd) {
  // 0: pass, 1: mismatch, 2: anything that kept the comparison from running (usage, files, models).
  auto error = [](const Status& s) {
    std::cerr << "error: " << s.to_string() << "\n";
    return 2;
  };
  if (Status s = check_flags(o, cmd); !s.ok()) return error(s);
  CompareReport report;
  report.model = o.model;
  std::string engine_desc;
  auto engine = make_engine(o, engine_desc);
  if (!engine.ok()) return error(engine.status());
  report.engine = engine_desc;
  if (o.emulate && !emulated(o, *engine))
    return error(usage(fmt::format("--emulate-precision is for CPU engines built with --fp16 or --bf16; this one is "
                                   "{} {} (a GPU engine computes in f16/bf16 itself)",
                                   backend_name(engine->info().backend), engine->info().precision)));
  const bool emulate = emulated(o, *engine);
  // What the comparison runs: the engine, or its emulation of f16/bf16 storage on the CPU.
  auto as_compared = [&](const Engine& e) -> Result<Engine> {
    return emulate ? compare::emulate_reduced_precision(e) : Result<Engine>(e);
  };
  auto compared = as_compared(*engine);
  if (!compared.ok()) return error(compared.status());
  auto given = given_inputs(o.inputs);
  if (!given.ok()) return error(given.status());

  const bool f64 = o.reference_precision == "f64";
  const std::string ref_model = o.reference_model.empty() ? o.model : o.reference_model;
  auto reference = compare::Reference::load(
      ref_model, f64 ? compare::ReferencePrecision::kF64 : compare::ReferencePrecision::kF32);
  if (!reference.ok()) return error(reference.status().with_context("reference model " + ref_model));
  std::vector<std::string> input_names;
  for (const auto& d : reference->inputs()) input_names.push_back(d.name);

  // A CPU engine computes in f32 whatever was asked, unless emulated: its tolerance is f32's.
  compare::Tolerance tol = compare::default_tolerance(
      engine->info().backend == BackendKind::kCpu && !emulate ? std::string("f32") : engine->info().precision);
  if (o.atol) tol.atol = *o.atol;
  if (o.rtol) tol.rtol = *o.rtol;
  if (o.cosine) tol.min_cosine = *o.cosine;
  if (tol.atol < 0 || tol.rtol < 0 || tol.min_cosine > 1)
    return error(usage("--atol and --rtol must be 0 or more, --cosine at most 1"));
  report.tolerance = tol;

  // The shapes and inputs of every case.
  std::vector<compare::ShapeCase> cases;
  std::optional<compare::ReferenceData> saved;
  if (!o.reference.empty()) {
    auto d = compare::load_reference_data(o.reference, input_names, reference->outputs(), *given);
    if (!d.ok()) return error(d.status());
    saved = std::move(*d);
    compare::ShapeCase c{"saved inputs", 0, {}};
    for (const auto& [name, t] : saved->inputs) c.dims[name] = t.dims();
    cases.push_back(c);
    report.reference = "outputs saved in " + saved->source;
    report.inputs = "from " + saved->source + (given->empty() ? "" : " and --input");
    for (const auto& name : reference->outputs())
      if (!saved->outputs.count(name)) report.notes.push_back(fmt::format("output '{}' is not in the reference: not compared", name));
  } else {
    std::vector<OptimizationProfile> ranges = engine->profiles();
    if (!o.engine.empty() && !o.shapes.empty()) {
      auto p = parse_profiles(o.shapes);
      if (!p.ok()) return error(p.status());
      ranges = std::move(*p);
    }
    auto sc = compare::shape_cases(engine->inputs(), ranges, o.random_shapes, o.seed);
    if (!sc.ok()) return error(sc.status());
    cases = std::move(*sc);
    if (!given->empty()) {
      // Inputs the user gives fix their shapes: one case, the rest random at the first case's shapes.
      compare::ShapeCase c{"given inputs", 0, cases.front().dims};
      for (const auto& [name, t] : *given) c.dims[name] = t.dims();
      cases = {c};
    }
    report.reference = fmt::format("kiln's CPU reference backend in {} on {} as imported (no fusion or folding)",
                                   o.reference_precision, ref_model);
    report.inputs = given->empty() ? fmt::format("random (seed {}): floats in [-1, 1), integers in [0, 10)", o.seed)
                                   : "given with --input (others random)";
  }

  // --layerwise (and --precision-bisect, which ranks layers by it): the engine, unchanged but for its
  // intermediate tensors copied out as outputs; named after the engine as built, not its emulation.
  const bool layerwise = o.layerwise || o.precision_bisect;
  Engine run_with = *compared;
  Layerwise lw;
  if (layerwise) {
    report.layerwise = true;
    lw.engine = compare::engine_values(*engine);
    std::vector<std::string> taps;
    for (const auto& l : reference->layers()) {
      ++report.layers_total;
      if (!lw.engine.count(l.value)) {
        ++report.layers_fused_away;
        continue;
      }
      lw.layers.push_back(l);
      taps.push_back(l.value);
    }
    std::map<std::string, const compare::Layer*> by_value;
    for (const auto& l : reference->layers()) by_value[l.value] = &l;
    for (const auto& l : lw.layers) lw.fused_with[l.value] = fused_upstream(l, by_value, lw.engine);
    auto tapped = compare::with_extra_outputs(*compared, taps);
    if (!tapped.ok()) return error(tapped.status());
    run_with = std::move(*tapped);
  }

  std::vector<PreparedCase> prepared;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    PreparedCase pc{cases[ci], saved ? saved->inputs : *given, {}};
    for (size_t k = 0; k < reference->inputs().size(); ++k) {
      const auto& d = reference->inputs()[k];
      if (pc.inputs.count(d.name)) continue;
      auto dims = pc.shape.dims.find(d.name);
      if (dims == pc.shape.dims.end()) return error(usage(fmt::format("no shape for input '{}'", d.name)));
      auto t = compare::random_tensor(d.dtype, dims->second, o.seed * 1000003 + ci * 1009 + k,
                                      fmt::format("input '{}'", d.name));
      if (!t.ok()) return error(t.status());
      pc.inputs[d.name] = std::move(*t);
    }
    if (saved) {
      pc.want = saved->outputs;
    } else {
      auto r = reference->run(pc.inputs, layerwise);
      if (!r.ok()) return error(r.status().with_context(pc.shape.label));
      pc.want = std::move(*r);
    }
    prepared.push_back(std::move(pc));
  }
  auto results = evaluate(run_with, prepared, reference->outputs(), lw, tol, &report.notes);
  if (!results.ok()) return error(results.status());
  report.cases = std::move(*results);

  std::optional<BisectOutcome> bisect;
  if (o.precision_bisect) {
    auto cfg = build_config(o);
    if (!cfg.ok()) return error(cfg.status());
    BisectSetup s;
    s.model = o.model;
    s.precision = engine->info().precision;
    s.out_path = !o.bisect_out.empty() ? o.bisect_out
                 : o.model.ends_with(".onnx") ? o.model.substr(0, o.model.size() - 5) + ".fp32-layers.txt"
                                              : o.model + ".fp32-layers.txt";
    s.command_flags = build_flags(o);
    s.kept = cfg->fp32_layers;
    for (const auto& l : reference->layers()) s.model_nodes.push_back(l.node);
    s.layers = compare::engine_layers(*engine);
    for (const auto& d : engine->outputs()) s.engine_outputs.push_back(d.name);
    s.cpu_backend = engine->info().backend == BackendKind::kCpu;
    s.emulated = emulate;
    BuildConfig base = *cfg;
    base.progress = nullptr;
    s.build = [&o, base](const std::vector<std::string>& fp32_layers) {
      BuildConfig c = base;
      c.fp32_layers = fp32_layers;
      return Builder::build_from_file(o.model, c);
    };
    s.as_compared = as_compared;
    s.passes = [&](const Engine& e) -> Result<bool> {
      Layerwise none;
      KILN_ASSIGN_OR_RETURN(auto r, evaluate(e, prepared, reference->outputs(), none, tol, nullptr));
      return std::all_of(r.begin(), r.end(), [](const CaseResult& c) { return c.pass(); });
    };
    // Timed at the first profile's opt shape where there is one.
    const PreparedCase* timed = &prepared.front();
    for (const auto& pc : prepared)
      if (pc.shape.label.find("opt") != std::string::npos) {
        timed = &pc;
        break;
      }
    constexpr int kTimedRuns = 20;
    s.median_ms = [timed](const Engine& e) { return median_latency_ms(e, *timed, kTimedRuns); };
    std::vector<std::string> dims;
    for (const auto& [name, d] : timed->shape.dims) dims.push_back(name + " " + dims_to_string(d));
    s.timing_what = fmt::format("median of {} infer() runs at {}: {}", kTimedRuns, timed->shape.label,
                                fmt::join(dims, ", "));
    auto b = precision_bisect(s, report, *engine);
    if (!b.ok()) return error(b.status());
    bisect = std::move(*b);
  }

  if (!o.html.empty()) {
    if (Status s = write_output_file("--html", o.html, compare_html(report_json(report), bisect ? bisect->lines
                                                                                                : std::vector<std::string>{}));
        !s.ok())
      return error(s);
    if (!o.quiet) std::cerr << "kiln: wrote " << o.html << "\n";
  }
  if (o.json) {
    nlohmann::json j = report_json(report);
    if (bisect) j["precision_bisect"] = bisect->json;
    std::cout << j.dump(2) << "\n";
  } else {
    print_report(report, std::cout);
    if (bisect) {
      std::cout << "\n";
      for (const auto& line : bisect->lines) std::cout << line << "\n";
    }
  }
  if (bisect) return bisect->exit_code;
  return report.pass() ? 0 : 1;
}

}  // namespace

void add_compare_command(CLI::App& app) {
  auto o = std::make_shared<CompareOptions>();
  auto* cmd = app.add_subcommand("compare", "Compare an engine's outputs (and layers) against a reference");
  cmd->footer(
      "The reference is kiln's CPU backend on MODEL as imported (no fusion, no folding) in f32, or in f64 with "
      "--reference-precision f64 (every f32 weight, constant and value of the model widened to f64), or outputs "
      "saved elsewhere (--reference). Shapes: the min, opt and max of every profile of the engine, and "
      "--random-shapes N more between min and max (seeded). An element passes when |engine - ref| <= atol + rtol "
      "* |ref|; NaN/Inf in the engine where the reference differs fail. Default tolerance: atol 1e-4, rtol 1e-3 "
      "(f32 engines, and CPU engines unless emulated), 1e-2/1e-2 (tf32), 5e-2/1e-2 (f16), 1e-1/5e-2 (bf16). Exit code: 0 "
      "when every output passes at every shape, 1 on a mismatch, 2 when the comparison could not run (bad "
      "flags, files, models); with --precision-bisect, 0 when a set of layers to keep in f32 is found (or none "
      "is needed), 1 when none helps.");
  cmd->add_option("model", o->model, "ONNX model (.onnx): the reference, and what is built unless --engine")->required();
  cmd->add_option("--engine", o->engine, "Engine file (.kiln) to check; without it MODEL is built in memory with "
                                         "the build flags below");
  cmd->add_option("--backend", o->backend, "Build flag: cpu, cuda or auto (default: cuda where present, else cpu)");
  cmd->add_option("--shapes", o->shapes,
                  "Build flag: profile per dynamic input NAME:MIN,OPT,MAX (repeatable, as kiln build). With "
                  "--engine: the ranges to test instead of the engine's profiles");
  cmd->add_flag("--fp16", o->fp16, "Build flag: compute in f16 where the CUDA kernels can");
  cmd->add_flag("--bf16", o->bf16, "Build flag: compute in bf16 where the CUDA kernels can");
  cmd->add_flag("--tf32", o->tf32, "Build flag: allow TF32 matrix math (CUDA)");
  cmd->add_option("--fp32-layers", o->fp32_layers,
                  "Build flag: with --fp16/--bf16, node names kept in f32 (comma-separated or repeated; @FILE reads "
                  "them from FILE, one per line or comma-separated, # comments)")
      ->delimiter(',');
  cmd->add_option("--conv-layout", o->conv_layout, "Build flag: auto, nchw or nhwc (CUDA with --fp16/--bf16)")
      ->check(CLI::IsMember({"auto", "nchw", "nhwc"}));
  cmd->add_option("--reference", o->reference,
                  "Saved reference instead of kiln's CPU backend: a directory with NAME.npy per output and the "
                  "inputs as NAME.npy beside them, an ONNX test data set (input_N.pb, output_N.pb), or a .npz "
                  "(numpy.savez; not savez_compressed)");
  cmd->add_option("--reference-model", o->reference_model,
                  "Run the CPU reference on this ONNX model instead of MODEL (same inputs and node names, e.g. "
                  "the model before an edit)");
  cmd->add_option("--reference-precision", o->reference_precision, "f32 (default) or f64: what the CPU reference "
                                                                     "computes in");
  cmd->add_option("--input", o->inputs, "NAME=FILE (.npy or .pb): a given input (repeatable); fixes its shape");
  cmd->add_option("--seed", o->seed, "Seed for random inputs and shapes (default 0)");
  cmd->add_option("--random-shapes", o->random_shapes,
                  "Also test N shapes drawn between each profile's min and max (default 0)");
  cmd->add_option("--atol", o->atol, "Absolute tolerance (default by precision, see below)");
  cmd->add_option("--rtol", o->rtol, "Relative tolerance (default by precision, see below)");
  cmd->add_option("--cosine", o->cosine, "Also require cosine similarity >= this per output (e.g. 0.999)");
  cmd->add_flag("--layerwise", o->layerwise,
                "Also compare every intermediate tensor the engine still computes after fusion, by the ONNX node "
                "that writes it, and name the first node (in the model's order) that diverges");
  cmd->add_flag("--emulate-precision", o->emulate,
                "CPU engines built with --fp16/--bf16 (which compute in f32): round every value an f16/bf16 GPU "
                "engine would store in f16/bf16 to it, as if every op had an f16/bf16 kernel, so overflow and "
                "rounding show without a GPU (storage only: the arithmetic stays f32); the tolerance becomes "
                "that precision's");
  cmd->add_flag("--precision-bisect", o->precision_bisect,
                "With --fp16/--bf16, when the engine fails the rule: find a small set of layers whose keeping in "
                "f32 makes it pass (ranked by --layerwise errors, which it implies; then delta debugging, one "
                "build per step), write it to --bisect-out for kiln build --fp32-layers @FILE, and time the "
                "engine without and with it. Exit 0 when a set is found or none is needed, 1 when even every "
                "layer in f32 fails. On the CPU backend it implies --emulate-precision");
  cmd->add_option("--bisect-out", o->bisect_out,
                  "Where --precision-bisect writes the layers (default: MODEL without .onnx + .fp32-layers.txt)");
  cmd->add_option("--html", o->html,
                  "Also write the report as one self-contained page (no scripts, no network): per shape, each "
                  "output's and (--layerwise) each layer's error over its tolerance as bars, the first "
                  "divergence framed");
  cmd->add_flag("--json", o->json, "Print the whole report as JSON");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress lines");
  cmd->callback([o, cmd] { std::exit(run_compare(*o, *cmd)); });
}

}  // namespace kiln::cli
