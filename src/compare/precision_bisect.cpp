// The search behind kiln compare --precision-bisect (see precision_bisect.h): ranked prefixes, then delta
// debugging (removing halves, quarters, ...) on the first prefix that passes.
#include "kiln/precision_bisect.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace kiln::compare {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

class Search {
 public:
  Search(const std::vector<std::string>& ranked, const PassesOracle& passes)
      : ranked_(ranked), passes_(passes) {
    for (size_t i = 0; i < ranked.size(); ++i) rank_[ranked[i]] = i;
  }

  Result<BisectResult> run() {
    KILN_ASSIGN_OR_RETURN(bool all, ask(ranked_));
    if (!all) {
      result_.outcome = BisectResult::Outcome::kAllFail;
      result_.layers = ranked_;
      return result_;
    }
    // The shortest passing prefix: 1, 2, 4, ... candidates; the whole list is known to pass.
    std::vector<std::string> passing = ranked_;
    for (size_t n = 1; n < ranked_.size(); n *= 2) {
      std::vector<std::string> prefix(ranked_.begin(), ranked_.begin() + n);
      KILN_ASSIGN_OR_RETURN(bool ok, ask(prefix));
      if (ok) {
        passing = prefix;
        break;
      }
    }
    KILN_ASSIGN_OR_RETURN(result_.layers, minimize(passing));
    return result_;
  }

 private:
  // Removes halves of the passing set, then quarters, ... while what is left still passes. Keeping more
  // layers in f32 does not make an engine worse, so a block whose removal fails holds a needed layer and
  // stays; the last round tries each layer alone, after which none can be dropped. About 2 questions per
  // needed layer per halving, and about twice the set's size at most.
  Result<std::vector<std::string>> minimize(std::vector<std::string> set) {
    for (size_t block = (set.size() + 1) / 2; set.size() > 1; block = (block + 1) / 2) {
      for (size_t start = 0; start < set.size();) {
        std::vector<std::string> rest(set.begin(), set.begin() + start);
        rest.insert(rest.end(), set.begin() + std::min(start + block, set.size()), set.end());
        if (rest.empty()) break;  // the empty set fails: the caller has seen it
        KILN_ASSIGN_OR_RETURN(bool ok, ask(rest));
        if (ok)
          set = std::move(rest);
        else
          start += block;
      }
      if (block == 1) break;
    }
    return set;
  }

  Result<bool> ask(std::vector<std::string> set) {
    std::sort(set.begin(), set.end(),
              [&](const std::string& a, const std::string& b) { return rank_[a] < rank_[b]; });
    if (auto it = seen_.find(set); it != seen_.end()) return it->second;
    ++result_.checks;
    KILN_ASSIGN_OR_RETURN(bool ok, passes_(set));
    seen_[set] = ok;
    std::vector<std::string> shown(set.begin(), set.begin() + std::min<size_t>(set.size(), 4));
    result_.trace.push_back(fmt::format("{} layer(s) in f32 ({}{}): {}", set.size(), fmt::join(shown, ", "),
                                        set.size() > shown.size() ? ", ..." : "", ok ? "pass" : "fail"));
    return ok;
  }

  const std::vector<std::string>& ranked_;
  const PassesOracle& passes_;
  std::map<std::string, size_t> rank_;
  std::map<std::vector<std::string>, bool> seen_;
  BisectResult result_;
};

}  // namespace

Result<BisectResult> find_fp32_layers(const std::vector<std::string>& ranked, const PassesOracle& passes) {
  std::set<std::string> unique(ranked.begin(), ranked.end());
  if (unique.size() != ranked.size())
    return Status(StatusCode::kInvalidArgument, "find_fp32_layers: a candidate is listed twice");
  if (ranked.empty()) {
    BisectResult r;
    r.outcome = BisectResult::Outcome::kAllFail;
    return r;
  }
  return Search(ranked, passes).run();
}

double tolerance_ratio(double value, double ref, double atol, double rtol) {
  if (value == ref) return 0;  // equal infinities included
  if (!std::isfinite(value) || !std::isfinite(ref)) return kInf;
  const double bound = atol + rtol * std::abs(ref);
  const double diff = std::abs(value - ref);
  return bound > 0 ? diff / bound : kInf;
}

std::vector<std::string> rank_fp32_candidates(const std::vector<LayerError>& layers) {
  std::map<std::string, const LayerError*> producer;
  for (const auto& l : layers)
    for (const auto& v : l.outputs) producer[v] = &l;
  // The error a layer receives: the largest among the compared layers it reads from.
  auto received = [&](const LayerError& l) {
    double in = 0;
    for (const auto& v : l.inputs)
      if (auto it = producer.find(v); it != producer.end() && it->second->error > in) in = it->second->error;
    return in;
  };
  std::vector<std::string> out;
  std::set<std::string> taken;
  auto take = [&](const std::string& name) {
    if (taken.insert(name).second) out.push_back(name);
  };
  const LayerError* first = nullptr;
  for (const auto& l : layers)
    if (l.error > 1) {
      first = &l;
      break;
    }
  if (first) {
    take(first->name);
    for (const auto& l : layers)
      for (const auto& v : l.inputs)
        if (std::find(first->outputs.begin(), first->outputs.end(), v) != first->outputs.end()) take(l.name);
  }
  for (const auto& l : layers)
    if (l.writes_output) take(l.name);
  std::vector<std::pair<double, size_t>> growth;  // (growth, graph position)
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerError& l = layers[i];
    if (l.error < 0) continue;
    const double in = received(l);
    // Infinite error read from upstream is inherited, not grown here.
    const double g = std::isinf(l.error) ? (std::isinf(in) ? 0 : kInf) : l.error - in;
    if (g > 0) growth.emplace_back(g, i);
  }
  std::stable_sort(growth.begin(), growth.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [g, i] : growth) take(layers[i].name);
  for (const auto& l : layers) take(l.name);
  return out;
}

}  // namespace kiln::compare
