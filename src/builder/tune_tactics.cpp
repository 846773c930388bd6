#include "builder/tune_tactics.h"

#include <chrono>
#include <filesystem>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "kiln/context.h"
#include "util/error.h"
#include "util/file.h"
#include "kiln/half.h"

namespace kiln {

namespace {

using json = nlohmann::json;
constexpr int kCacheFileVersion = 1;

// Input shape sets: per profile its min, opt and max (an input outside the profile keeps its static dims);
// without profiles the static dims. Sets with an unresolved dim are skipped.
std::vector<std::pair<int, std::map<std::string, std::vector<int64_t>>>> shape_sets(const EngineState& s) {
  std::vector<std::pair<int, std::map<std::string, std::vector<int64_t>>>> out;
  std::set<std::pair<int, std::map<std::string, std::vector<int64_t>>>> seen;
  const size_t nprof = std::max<size_t>(s.profiles.size(), 1);
  for (size_t p = 0; p < nprof; ++p)
    for (int which = 0; which < 3; ++which) {
      std::map<std::string, std::vector<int64_t>> dims;
      bool complete = true;
      for (const auto& d : s.inputs) {
        if (p < s.profiles.size() && s.profiles[p].inputs.count(d.name)) {
          const auto& r = s.profiles[p].inputs.at(d.name);
          dims[d.name] = which == 0 ? r.min : which == 1 ? r.opt : r.max;
        } else if (d.shape.is_static()) {
          dims[d.name] = d.shape.static_dims();
        } else {
          complete = false;
        }
      }
      // Profiles index from 0 even without any: set_profile is only called when there are profiles.
      auto entry = std::make_pair(static_cast<int>(p), dims);
      if (complete && seen.insert(entry).second) out.push_back(std::move(entry));
    }
  return out;
}

// Floats uniform in [-1, 1); integers 1 (a valid index of any axis longer than 1, an unmasked position);
// bools true. The values only need to be plausible: the run is timed, not checked.
Tensor plausible(DType dt, const std::vector<int64_t>& dims, std::mt19937& rng) {
  Tensor t(dt, dims);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    switch (dt) {
      case DType::kF32: t.data<float>()[i] = u(rng); break;
      case DType::kF64: t.data<double>()[i] = u(rng); break;
      case DType::kF16: t.data<uint16_t>()[i] = float_to_half(u(rng)); break;
      case DType::kBF16: t.data<uint16_t>()[i] = float_to_bf16(u(rng)); break;
      default:  // integers and bool, little-endian: 1 is a first byte of 1 in zeroed storage
        static_cast<uint8_t*>(t.raw())[i * (t.nbytes() / n)] = 1;
        break;
    }
  }
  return t;
}

Result<std::map<std::string, std::string>> read_cache_file(const std::string& path, const std::string& gpu_json,
                                                           const std::function<void(std::string_view)>& progress) {
  if (!std::filesystem::exists(path)) {
    progress(fmt::format("timing cache {}: not there yet, it will be written after tactic timing", path));
    return std::map<std::string, std::string>{};
  }
  KILN_ASSIGN_OR_RETURN(std::string text, read_file(path));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("kiln_timing_cache", 0) != kCacheFileVersion ||
      !j.contains("entries") || !j["entries"].is_object())
    return invalid_argument("timing cache {} is not a kiln timing cache (version {}); delete it or name another file",
                            path, kCacheFileVersion);
  if (j.value("gpu", json::object()) != json::parse(gpu_json, nullptr, false)) {
    progress(fmt::format("timing cache {}: made for another GPU or library version ({}); its entries are ignored "
                         "and the file is rewritten",
                         path, j.value("gpu", json::object()).dump()));
    return std::map<std::string, std::string>{};
  }
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : j["entries"].items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

}  // namespace

Result<TuneReport> tune_tactics(EngineState& state, const std::string& timing_cache_path,
                                const std::function<void(std::string_view)>& progress) {
  TuneReport r;
  const auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, std::string> from_file;
  if (!timing_cache_path.empty()) {
    KILN_ASSIGN_OR_RETURN(from_file, read_cache_file(timing_cache_path, state.info.gpu_json, progress));
    state.tactics->merge(from_file);
  }
  const size_t before = state.tactics->size();
  Engine engine(std::make_shared<const EngineState>(state));  // shares state.tactics
  auto ctx = engine.create_context();
  // A GPU too full to hold the weights cannot run the engine either: an error now, not a slower engine whose
  // first run fails the same way.
  if (!ctx.ok() && ctx.status().code() == StatusCode::kOutOfMemory)
    return Status(StatusCode::kOutOfMemory,
                  "tactic timing needs a context on the GPU: " + ctx.status().message() +
                      " (or build with --no-tactic-timing; contexts then time kernels on first use)");
  if (!ctx.ok()) {
    progress("tactic timing skipped: " + ctx.status().message());
  } else {
    std::mt19937 rng(0);
    for (const auto& [profile, dims] : shape_sets(state)) {
      if (!state.profiles.empty()) {
        if (Status st = ctx->set_profile(profile); !st.ok()) {
          progress("tactic timing: " + st.message());
          continue;
        }
      }
      std::map<std::string, Tensor> inputs;
      for (const auto& d : state.inputs) inputs[d.name] = plausible(d.dtype, dims.at(d.name), rng);
      auto out = ctx->infer(inputs);
      ++r.shapes;
      if (!out.ok())
        progress(fmt::format("tactic timing at {}: the run failed ({}); kernels will time this shape on first use",
                             profile, out.status().message()));
    }
  }
  r.from_file = from_file.size();
  r.timed = state.tactics->size() - before;
  if (!timing_cache_path.empty()) {
    json j = {{"kiln_timing_cache", kCacheFileVersion},
              {"gpu", json::parse(state.info.gpu_json, nullptr, false)},
              {"entries", state.tactics->entries()}};
    KILN_RETURN_IF_ERROR(write_file_atomic(timing_cache_path, j.dump(1)));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace kiln
