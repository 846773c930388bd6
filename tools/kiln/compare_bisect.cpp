#include "compare_bisect.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <set>

#include "kiln/precision_bisect.h"

namespace kiln::cli {

namespace {

// Each value's error in the failing run, in tolerance units (above 1 fails), the worst over the shapes.
std::map<std::string, double> value_errors(const CompareReport& r) {
  std::map<std::string, double> out;
  for (const auto& c : r.cases)
    for (const auto& l : c.layers) {
      if (!l.cmp.error.empty()) continue;
      const double e = l.cmp.nonfinite > 0
                           ? std::numeric_limits<double>::infinity()
                           : compare::tolerance_ratio(l.cmp.worst_value, l.cmp.worst_reference,
                                                      r.tolerance.atol, r.tolerance.rtol);
      auto [it, fresh] = out.emplace(l.layer.value, e);
      if (!fresh) it->second = std::max(it->second, e);
    }
  return out;
}

std::string quoted_list(const std::vector<std::string>& names, size_t most) {
  std::vector<std::string> shown;
  for (size_t i = 0; i < names.size() && i < most; ++i) shown.push_back("'" + names[i] + "'");
  return fmt::format("{}{}", fmt::join(shown, ", "), names.size() > most ? ", ..." : "");
}

std::string shell_word(const std::string& s) {
  if (s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,:/@%") ==
      std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

Status write_layer_file(const std::string& path, const std::vector<std::string>& layers,
                        const std::string& header) {
  std::ofstream f(path);
  if (!f) return Status(StatusCode::kIoError, fmt::format("--bisect-out: cannot write '{}'", path));
  f << header;
  for (const auto& l : layers) f << l << "\n";
  f.close();
  if (!f) return Status(StatusCode::kIoError, fmt::format("--bisect-out: error writing '{}'", path));
  return Status();
}

}  // namespace

Result<BisectOutcome> precision_bisect(const BisectSetup& s, const CompareReport& baseline,
                                       const Engine& built) {
  BisectOutcome out;
  auto& lines = out.lines;
  const std::string what = s.precision + (s.emulated ? " emulated on the CPU" : "");
  out.json = {{"precision", s.precision}, {"emulated", s.emulated}};
  if (baseline.pass()) {
    lines.push_back(
        fmt::format("precision bisect: the {} engine{} passes the rule already: no layer needs f32, "
                    "nothing written",
                    s.precision, s.emulated ? " (emulated on the CPU)" : ""));
    out.json["outcome"] = "passes_already";
    return out;
  }

  // Rank every layer of the engine by the failing run's errors, then keep those --fp32-layers can name.
  const auto errors = value_errors(baseline);
  std::vector<compare::LayerError> layers;
  const std::set<std::string> engine_outputs(s.engine_outputs.begin(), s.engine_outputs.end());
  for (const auto& l : s.layers) {
    compare::LayerError e{l.name, l.inputs, l.outputs, -1, false};
    for (const auto& v : l.outputs) e.writes_output |= engine_outputs.count(v) > 0;
    for (const auto& v : l.outputs)
      if (auto it = errors.find(v); it != errors.end()) e.error = std::max(e.error, it->second);
    layers.push_back(std::move(e));
  }
  const std::set<std::string> nameable(s.model_nodes.begin(), s.model_nodes.end());
  const std::set<std::string> kept(s.kept.begin(), s.kept.end());
  std::set<std::string> computes_float;
  for (const auto& l : s.layers)
    if (l.float_outputs) computes_float.insert(l.name);
  std::vector<std::string> candidates;
  for (const auto& name : compare::rank_fp32_candidates(layers))
    if (nameable.count(name) && computes_float.count(name) && !kept.count(name)) candidates.push_back(name);
  lines.push_back(
      fmt::format("precision bisect, {}: {} candidate layer(s), most suspect first (by the layerwise "
                  "errors above): {}",
                  what, candidates.size(), quoted_list(candidates, 6)));
  out.json["candidates"] = candidates;

  std::optional<std::pair<std::vector<std::string>, Engine>> last_pass;
  auto oracle = [&](const std::vector<std::string>& set) -> Result<bool> {
    std::vector<std::string> all = s.kept;
    all.insert(all.end(), set.begin(), set.end());
    KILN_ASSIGN_OR_RETURN(Engine e, s.build(all));
    KILN_ASSIGN_OR_RETURN(Engine compared, s.as_compared(e));
    KILN_ASSIGN_OR_RETURN(bool ok, s.passes(compared));
    if (ok) last_pass.emplace(set, std::move(e));
    return ok;
  };
  KILN_ASSIGN_OR_RETURN(compare::BisectResult r, compare::find_fp32_layers(candidates, oracle));
  for (size_t i = 0; i < r.trace.size(); ++i)
    lines.push_back(fmt::format("  build {}: {}", i + 1, r.trace[i]));
  out.json["checks"] = r.trace;
  if (r.outcome == compare::BisectResult::Outcome::kAllFail) {
    lines.push_back(
        fmt::format("even with every candidate layer in f32 the engine fails the rule: the error does "
                    "not come from {} alone (a kernel, a fusion, or a reference that differs), nothing "
                    "written",
                    s.precision));
    out.json["outcome"] = "all_fail";
    out.json["builds"] = r.checks + 1;
    out.exit_code = 1;
    return out;
  }
  std::vector<std::string> found = s.kept;
  found.insert(found.end(), r.layers.begin(), r.layers.end());
  lines.push_back(
      fmt::format("found: {} layer(s) in f32 make the {} engine pass: {} (without any one of them it "
                  "fails){}",
                  r.layers.size(), s.precision, quoted_list(r.layers, r.layers.size()),
                  s.kept.empty() ? "" : fmt::format("; with the {} given by --fp32-layers", s.kept.size())));

  std::vector<std::string> cmd = {"kiln", "build", shell_word(s.model)};
  for (const auto& f : s.command_flags) cmd.push_back(shell_word(f));
  cmd.push_back("--fp32-layers");
  cmd.push_back(shell_word("@" + s.out_path));
  std::string engine_path = s.model;
  if (engine_path.ends_with(".onnx")) engine_path.resize(engine_path.size() - 5);
  cmd.push_back("-o");
  cmd.push_back(shell_word(engine_path + ".kiln"));
  const std::string command = fmt::format("{}", fmt::join(cmd, " "));
  const std::string header = fmt::format(
      "# Layers to keep in f32 (kiln compare --precision-bisect): {} built with --{} passes\n"
      "# |engine - ref| <= {:g} + {:g} * |ref| with these in f32, and fails without any one of them.\n"
      "# One node name per line; use: {}\n",
      s.model, s.precision == "f16" ? "fp16" : "bf16", baseline.tolerance.atol, baseline.tolerance.rtol,
      command);
  KILN_RETURN_IF_ERROR(write_layer_file(s.out_path, found, header));
  lines.push_back("wrote " + s.out_path + "; build with it:");
  lines.push_back("  " + command);
  out.json.update({{"outcome", "found"}, {"layers", found}, {"file", s.out_path}, {"command", command}});

  // The cost: the same engine without and with the set, timed alike.
  std::optional<Engine> with;
  const bool last_pass_used = last_pass && last_pass->first == r.layers;
  if (last_pass_used) with = last_pass->second;
  if (!with) {
    KILN_ASSIGN_OR_RETURN(Engine e, s.build(found));
    with = std::move(e);
  }
  lines.push_back(fmt::format("builds: {} (the engine as built, then {} in the search{})",
                              r.checks + 1 + !last_pass_used, r.checks,
                              last_pass_used ? "" : ", then one with the set to time"));
  KILN_ASSIGN_OR_RETURN(double without_ms, s.median_ms(built));
  KILN_ASSIGN_OR_RETURN(double with_ms, s.median_ms(*with));
  lines.push_back(fmt::format(
      "latency ({}): {:.4g} ms without, {:.4g} ms with the {} layer(s) in f32 ({:+.1f}%)", s.timing_what,
      without_ms, with_ms, found.size(), without_ms > 0 ? 100.0 * (with_ms - without_ms) / without_ms : 0.0));
  out.json["builds"] = r.checks + 1 + !last_pass_used;
  out.json["latency_ms"] = {{"without", without_ms}, {"with", with_ms}, {"timed", s.timing_what}};
  if (s.cpu_backend) {
    const std::string note =
        "the CPU backend computes in f32 whatever the precision, so these timings say nothing of the set's "
        "cost "
        "in an f16/bf16 GPU engine: time both there (kiln bench)";
    lines.push_back("note: " + note);
    out.json["latency_note"] = note;
  }
  return out;
}

}  // namespace kiln::cli
