// kiln compare MODEL.onnx [--engine FILE.kiln | build flags] [--reference DIR] [--layerwise]
#include <fmt/format.h>

#include <iostream>
#include <set>

#include "backends/device_probe.h"
#include "cli_common.h"
#include "compare_report.h"
#include "io/npy.h"
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
  return Status();
}

Result<Engine> make_engine(const CompareOptions& o, std::string& described) {
  if (!o.engine.empty()) {
    KILN_ASSIGN_OR_RETURN(Engine e, Engine::load(o.engine));
    described = fmt::format("{} ({} backend, {})", o.engine, backend_name(e.info().backend), e.info().precision);
    return e;
  }
  BuildConfig cfg;
  auto b = parse_backend(o.backend);
  if (!b) return usage("--backend must be auto, cpu or cuda, got '" + o.backend + "'");
  cfg.backend = *b;
  cfg.precision = o.fp16 ? Precision::kF16 : o.bf16 ? Precision::kBF16 : o.tf32 ? Precision::kTF32 : Precision::kF32;
  cfg.fp32_layers = o.fp32_layers;
  cfg.conv_layout = o.conv_layout == "nchw"   ? ConvLayoutChoice::kNCHW
                    : o.conv_layout == "nhwc" ? ConvLayoutChoice::kNHWC
                                              : ConvLayoutChoice::kAuto;
  if (!o.shapes.empty()) {
    KILN_ASSIGN_OR_RETURN(cfg.profiles, parse_profiles(o.shapes));
  }
  if (cfg.backend == BackendKind::kAuto && !cuda_backend_available() && !o.quiet && !o.json)
    std::cerr << "kiln: backend auto -> cpu (" << cuda_unavailable_reason() << ")\n";
  cfg.progress = progress_printer(o.quiet || o.json);
  KILN_ASSIGN_OR_RETURN(Engine e, Builder::build_from_file(o.model, cfg));
  described = fmt::format("built in memory from {} ({} backend, {}{}{})", o.model, backend_name(e.info().backend),
                          e.info().precision,
                          e.info().backend == BackendKind::kCpu && e.info().precision != "f32"
                              ? ", computed in f32 by the CPU backend"
                              : "",
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
  auto given = given_inputs(o.inputs);
  if (!given.ok()) return error(given.status());

  const bool f64 = o.reference_precision == "f64";
  const std::string ref_model = o.reference_model.empty() ? o.model : o.reference_model;
  auto reference = compare::Reference::load(
      ref_model, f64 ? compare::ReferencePrecision::kF64 : compare::ReferencePrecision::kF32);
  if (!reference.ok()) return error(reference.status().with_context("reference model " + ref_model));
  std::vector<std::string> input_names;
  for (const auto& d : reference->inputs()) input_names.push_back(d.name);

  compare::Tolerance tol = compare::default_tolerance(
      engine->info().backend == BackendKind::kCpu ? std::string("f32") : engine->info().precision);
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

  // --layerwise: the engine, unchanged but for its intermediate tensors copied out as outputs.
  Engine run_with = *engine;
  Layerwise lw;
  if (o.layerwise) {
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
    auto tapped = compare::with_extra_outputs(*engine, taps);
    if (!tapped.ok()) return error(tapped.status());
    run_with = std::move(*tapped);
  }

  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const auto& sc = cases[ci];
    std::map<std::string, Tensor> in = saved ? saved->inputs : *given;
    for (size_t k = 0; k < reference->inputs().size(); ++k) {
      const auto& d = reference->inputs()[k];
      if (in.count(d.name)) continue;
      auto dims = sc.dims.find(d.name);
      if (dims == sc.dims.end()) return error(usage(fmt::format("no shape for input '{}'", d.name)));
      auto t = compare::random_tensor(d.dtype, dims->second, o.seed * 1000003 + ci * 1009 + k,
                                      fmt::format("input '{}'", d.name));
      if (!t.ok()) return error(t.status());
      in[d.name] = std::move(*t);
    }
    auto got = run_engine(run_with, sc.profile, in);
    if (!got.ok()) return error(got.status().with_context(sc.label + ": the engine"));
    std::map<std::string, Tensor> want;
    if (saved) {
      want = saved->outputs;
    } else {
      auto r = reference->run(in, o.layerwise);
      if (!r.ok()) return error(r.status().with_context(sc.label));
      want = std::move(*r);
    }
    CaseResult cr;
    cr.shape = sc;
    for (const auto& name : reference->outputs()) {
      if (!want.count(name)) continue;
      if (!got->count(name)) return error(Status(StatusCode::kInternal, "the engine produced no output '" + name + "'"));
      cr.outputs.push_back(compare::compare_tensors(name, got->at(name), want.at(name), tol));
    }
    for (const auto& l : lw.layers) {
      if (!got->count(l.value) || !want.count(l.value)) continue;
      if (got->at(l.value).dims() != want.at(l.value).dims()) {
        // Rewritten by the optimizations (a layout change): a different tensor under the same name.
        const std::string note = fmt::format("layer '{}' -> '{}': the engine's {} vs the reference's {} (rewritten "
                                             "by the optimizations): not compared",
                                             l.node, l.value, dims_to_string(got->at(l.value).dims()),
                                             dims_to_string(want.at(l.value).dims()));
        if (std::find(report.notes.begin(), report.notes.end(), note) == report.notes.end()) report.notes.push_back(note);
        continue;
      }
      cr.layers.push_back({l, lw.engine[l.value],
                           compare::compare_tensors(l.value, got->at(l.value), want.at(l.value), tol),
                           lw.fused_with[l.value]});
      if (!cr.first_divergence && !cr.layers.back().cmp.pass) cr.first_divergence = cr.layers.size() - 1;
    }
    report.cases.push_back(std::move(cr));
  }

  if (o.json) std::cout << report_json(report).dump(2) << "\n";
  else print_report(report, std::cout);
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
      "* |ref|; NaN/Inf in the engine where the reference differs fail. Default tolerance: atol 1e-5, rtol 1e-4 "
      "(f32 engines and every CPU engine), 1e-3/1e-2 (tf32), 1e-2/1e-2 (f16), 5e-2/5e-2 (bf16). Exit code: 0 "
      "when every output passes at every shape, 1 on a mismatch, 2 when the comparison could not run (bad "
      "flags, files, models).");
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
  cmd->add_option("--fp32-layers", o->fp32_layers, "Build flag: with --fp16/--bf16, node names kept in f32")
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
  cmd->add_flag("--json", o->json, "Print the whole report as JSON");
  cmd->add_flag("-q,--quiet", o->quiet, "No progress lines");
  cmd->callback([o, cmd] { std::exit(run_compare(*o, *cmd)); });
}

}  // namespace kiln::cli
