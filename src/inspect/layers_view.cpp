#include "inspect/layers_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "builder/activation_estimate.h"
#include "runtime/tactic_map.h"
#include "util/file.h"

namespace kiln::inspect {

namespace {

// A layer's stored choices in one cell: distinct choices, each once, in key order.
std::string tactic_cell(const TacticMap& m, const std::vector<size_t>& idx) {
  std::vector<std::string> seen;
  for (size_t i : idx)
    if (std::find(seen.begin(), seen.end(), m.tactics[i].choice) == seen.end()) seen.push_back(m.tactics[i].choice);
  std::string s;
  for (const auto& c : seen) s += (s.empty() ? "" : " | ") + c;
  return s;
}

// The dims of every input at one point of a profile; inputs the profile does not name keep their static dims.
Result<std::map<std::string, std::vector<int64_t>>> dims_at(const ir::Graph& g, const OptimizationProfile* p,
                                                            int point) {
  std::map<std::string, std::vector<int64_t>> dims;
  for (const auto& name : g.inputs) {
    if (p && p->inputs.count(name)) {
      const InputRange& r = p->inputs.at(name);
      dims[name] = point == 0 ? r.min : point == 1 ? r.opt : r.max;
    } else if (const ir::ValueInfo* v = g.value(name); v && v->shape.is_static()) {
      dims[name] = v->shape.static_dims();
    } else {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("input '{}' has dynamic shape {} and no profile gives its dims; pass --shapes {}:DIMS "
                                "(or MIN,OPT,MAX)",
                                name, g.value(name) ? g.value(name)->shape.to_string() : "?", name));
    }
  }
  return dims;
}

}  // namespace

viz::LayerGraph layers_with_tactics(const ir::Graph& g, const std::map<std::string, std::string>& tactic_cache,
                                    nlohmann::json* unmapped) {
  viz::LayerGraph lg = viz::layer_graph(g);
  const TacticMap m = map_tactics(g, tactic_cache);
  for (auto& e : lg.entries)
    if (auto it = m.by_layer.find(e.name); e.kind == viz::EntryKind::kLayer && it != m.by_layer.end())
      e.tactic = tactic_cell(m, it->second);
  *unmapped = nlohmann::json::array();
  for (const auto& t : m.tactics)
    if (t.layers.empty())
      unmapped->push_back({{"kind", t.kind.empty() ? "unknown" : t.kind},
                           {"problem", t.problem.empty() ? t.key : t.problem},
                           {"choice", t.choice.empty() ? t.value : t.choice}});
  return lg;
}

nlohmann::json layers_json(const viz::LayerGraph& lg) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : lg.entries) {
    if (e.kind != viz::EntryKind::kLayer) continue;
    nlohmann::json j = {{"name", e.name}, {"op", e.op}, {"dtype", e.dtype}, {"shape", e.shape}};
    j["tactic"] = e.tactic.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.tactic);
    if (e.ms >= 0) j["ms"] = e.ms;
    out.push_back(j);
  }
  return out;
}

nlohmann::json memory_plan_json(const ir::Graph& g, const std::vector<OptimizationProfile>& profiles) {
  size_t weights = 0;
  for (const auto& [name, t] : g.initializers) weights += t.nbytes();
  nlohmann::json m = {{"weight_bytes", weights},
                      {"activations_from", "host shape inference at each point: values only, kernel scratch not "
                                           "counted; the CUDA executor traces the exact arena at a shape's first run"},
                      {"points", nlohmann::json::array()}};
  const size_t n_profiles = std::max<size_t>(1, profiles.size());
  for (size_t p = 0; p < n_profiles; ++p) {
    const OptimizationProfile* prof = profiles.empty() ? nullptr : &profiles[p];
    for (int point = 0; point < (prof ? 3 : 1); ++point) {
      nlohmann::json j;
      if (prof) j["profile"] = p;
      j["point"] = prof ? (point == 0 ? "min" : point == 1 ? "opt" : "max") : "static";
      auto dims = dims_at(g, prof, point);
      if (!dims.ok()) {
        j["error"] = dims.status().message();
        m["points"].push_back(j);
        continue;
      }
      // A profile whose min, opt and max coincide (--shapes NAME:DIMS) is one point.
      if (point > 0 && *dims == *dims_at(g, prof, point - 1) && !m["points"].back().contains("error")) {
        auto& prev = m["points"].back()["point"];
        prev = prev.get<std::string>() + "=" + j["point"].get<std::string>();
        continue;
      }
      for (const auto& [name, d] : *dims) j["dims"][name] = d;
      auto est = estimate_activations(g, *dims);
      if (!est.ok()) {
        j["error"] = est.status().message();
      } else {
        j["arena_bytes"] = est->arena_bytes;
        j["total_bytes"] = est->total_bytes;
        j["values"] = est->values;
        j["largest"] = {{"name", est->largest}, {"bytes", est->largest_bytes}};
        j["unsized"] = est->unsized;
      }
      m["points"].push_back(j);
    }
  }
  return m;
}

namespace {

// The first object holding a "layers" array of {name, ms}: bench's "profile", at the top or in a sweep point.
const nlohmann::json* find_profile_layers(const nlohmann::json& j) {
  if (j.is_object()) {
    if (auto it = j.find("layers"); it != j.end() && it->is_array() && !it->empty() && (*it)[0].is_object() &&
                                    (*it)[0].contains("name") && (*it)[0].contains("ms"))
      return &*it;
    for (const auto& [k, v] : j.items())
      if (const nlohmann::json* found = find_profile_layers(v)) return found;
  } else if (j.is_array()) {
    for (const auto& v : j)
      if (const nlohmann::json* found = find_profile_layers(v)) return found;
  }
  return nullptr;
}

}  // namespace

Result<std::map<std::string, viz::LayerTime>> read_layer_times(const std::string& profile_json,
                                                               const std::string& times_file) {
  std::map<std::string, viz::LayerTime> times;
  if (!profile_json.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string text, read_file(profile_json));
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded())
      return Status(StatusCode::kInvalidArgument, fmt::format("--profile-json {}: not JSON", profile_json));
    const nlohmann::json* layers = find_profile_layers(j);
    if (!layers)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--profile-json {}: no per-layer times in it; write it with kiln bench ENGINE "
                                "--profile --json > FILE",
                                profile_json));
    for (const auto& l : *layers) {
      if (!l.contains("name") || !l["name"].is_string() || !l.contains("ms") || !l["ms"].is_number()) continue;
      viz::LayerTime t{l["ms"].get<double>(), ""};
      if (l.contains("tactic") && l["tactic"].is_string()) t.tactic = l["tactic"].get<std::string>();
      times[l["name"].get<std::string>()] = t;
    }
  }
  if (!times_file.empty()) {
    KILN_ASSIGN_OR_RETURN(std::string text, read_file(times_file));
    std::istringstream in(text);
    std::string line;
    for (int no = 1; std::getline(in, line); ++no) {
      for (char& c : line)
        if (c == ',' || c == '\t' || c == '\r') c = ' ';
      std::istringstream fields(line);
      std::string name, ms_text, extra;
      if (!(fields >> name) || name[0] == '#') continue;
      double ms = 0;
      bool ok = static_cast<bool>(fields >> ms_text) && !(fields >> extra);
      try {
        size_t used = 0;
        ms = ok ? std::stod(ms_text, &used) : 0;
        ok = ok && used == ms_text.size() && ms >= 0;
      } catch (...) {
        ok = false;
      }
      if (!ok)
        return Status(StatusCode::kInvalidArgument,
                      fmt::format("--times {} line {}: expected 'LAYER_NAME MILLISECONDS', got '{}'", times_file, no,
                                  line));
      times[name].ms = ms;
    }
  }
  return times;
}

}  // namespace kiln::inspect
