// The input shapes kiln compare tests: every profile's min, opt and max, and seeded random shapes in between.
#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "kiln/compare.h"

namespace kiln::compare {

namespace {

constexpr int64_t kUnboundedRandomMax = 8;  // dynamic dims with no profile: random values in 1..8

// The range of one dim of one input under a profile; static dims are fixed, unnamed dynamic dims 1..1 (or
// 1..kUnboundedRandomMax when drawing at random).
struct DimRange {
  int64_t min, opt, max;
};

DimRange dim_range(const TensorDesc& d, size_t i, const OptimizationProfile* p, bool random) {
  if (p) {
    auto it = p->inputs.find(d.name);
    if (it != p->inputs.end() && i < it->second.min.size())
      return {it->second.min[i], it->second.opt[i], it->second.max[i]};
  }
  const Dim& dim = d.shape[i];
  if (dim.is_static()) return {dim.value(), dim.value(), dim.value()};
  return {1, 1, random ? kUnboundedRandomMax : 1};
}

// Dims of every input at min (0), opt (1), max (2), or drawn at random (3). A symbol shared by several dims
// gets one value: the first dim's at min/opt/max, one draw inside all their ranges at random.
Result<std::map<std::string, std::vector<int64_t>>> dims_at(const std::vector<TensorDesc>& inputs,
                                                           const OptimizationProfile* p, int which,
                                                           std::mt19937_64& rng) {
  const bool random = which == 3;
  std::map<std::string, DimRange> symbols;  // the intersection of the ranges of the dims that share a symbol
  for (const auto& d : inputs) {
    if (!d.shape.has_rank()) continue;
    for (size_t i = 0; i < d.shape.rank(); ++i) {
      if (!d.shape[i].is_symbolic()) continue;
      DimRange r = dim_range(d, i, p, random);
      auto [it, fresh] = symbols.emplace(d.shape[i].symbol_name(), r);
      if (!fresh) {
        it->second.min = std::max(it->second.min, r.min);
        it->second.max = std::min(it->second.max, r.max);
      }
    }
  }
  std::map<std::string, int64_t> chosen;
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& d : inputs) {
    if (!d.shape.has_rank())
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("input '{}' has unknown rank; give it a profile with --shapes {}:DIMS", d.name, d.name));
    std::vector<int64_t>& dims = out[d.name];
    for (size_t i = 0; i < d.shape.rank(); ++i) {
      DimRange r = dim_range(d, i, p, random);
      const bool symbolic = d.shape[i].is_symbolic();
      if (symbolic) {
        if (auto it = chosen.find(d.shape[i].symbol_name()); it != chosen.end()) {
          dims.push_back(it->second);
          continue;
        }
        if (random) r = symbols[d.shape[i].symbol_name()];
        if (r.max < r.min)
          return Status(StatusCode::kInvalidArgument,
                        fmt::format("the inputs whose dims are named '{}' have profile ranges with nothing in common; "
                                    "give them overlapping ranges with --shapes",
                                    d.shape[i].symbol_name()));
      }
      int64_t v = which == 0 ? r.min : which == 1 ? r.opt : which == 2 ? r.max : r.min;
      if (random && r.max > r.min) v = std::uniform_int_distribution<int64_t>(r.min, r.max)(rng);
      if (symbolic) chosen[d.shape[i].symbol_name()] = v;
      dims.push_back(v);
    }
  }
  return out;
}

}  // namespace

Result<std::vector<ShapeCase>> shape_cases(const std::vector<TensorDesc>& inputs,
                                           const std::vector<OptimizationProfile>& profiles, int random_count,
                                           uint64_t seed) {
  if (random_count < 0) return Status(StatusCode::kInvalidArgument, "--random-shapes must be 0 or more");
  std::mt19937_64 rng(seed);
  std::vector<ShapeCase> cases;
  auto add = [&](std::string label, int profile, std::map<std::string, std::vector<int64_t>> dims) {
    for (auto& c : cases)
      if (c.profile == profile && c.dims == dims) {
        // "profile 0 min" + "profile 0 opt" -> "profile 0 min/opt"
        const std::string prefix = fmt::format("profile {} ", profile);
        if (c.label.rfind(prefix, 0) == 0 && label.rfind(prefix, 0) == 0) c.label += "/" + label.substr(prefix.size());
        else c.label += ", " + label;
        return;
      }
    cases.push_back({std::move(label), profile, std::move(dims)});
  };
  const int nprof = static_cast<int>(profiles.size());
  static const char* kWhich[] = {"min", "opt", "max"};
  if (nprof == 0) {
    KILN_ASSIGN_OR_RETURN(auto dims, dims_at(inputs, nullptr, 1, rng));
    add("default (dynamic dims 1)", 0, std::move(dims));
  }
  for (int p = 0; p < nprof; ++p)
    for (int w = 0; w < 3; ++w) {
      KILN_ASSIGN_OR_RETURN(auto dims, dims_at(inputs, &profiles[p], w, rng));
      add(fmt::format("profile {} {}", p, kWhich[w]), p, std::move(dims));
    }
  for (int k = 0; k < random_count; ++k) {
    const int p = nprof ? k % nprof : 0;
    KILN_ASSIGN_OR_RETURN(auto dims, dims_at(inputs, nprof ? &profiles[p] : nullptr, 3, rng));
    add(nprof > 1 ? fmt::format("random {} (profile {})", k + 1, p) : fmt::format("random {}", k + 1), p,
        std::move(dims));
  }
  return cases;
}

}  // namespace kiln::compare
