// The --precision-bisect search with lambdas as the oracle: it must return a small passing set that no layer
// can leave, asking a bounded number of questions, and say when no set helps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "kiln/precision_bisect.h"

namespace kiln {
namespace {

using compare::BisectResult;
using compare::find_fp32_layers;

std::vector<std::string> names(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(std::string(1, static_cast<char>('a' + i)));
  return out;
}

// passes(set) iff the set holds every name of `needed`; counts the calls.
struct Needs {
  std::set<std::string> needed;
  int calls = 0;
  Result<bool> operator()(const std::vector<std::string>& set) {
    ++calls;
    return std::all_of(needed.begin(), needed.end(), [&](const std::string& n) {
      return std::find(set.begin(), set.end(), n) != set.end();
    });
  }
};

TEST(PrecisionBisect, FindsExactlyTheTwoLayersNeeded) {
  Needs oracle{{"b", "e"}};
  auto r = find_fp32_layers(names(16), [&](const auto& s) { return oracle(s); });
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->outcome, BisectResult::Outcome::kFound);
  EXPECT_EQ(r->layers, (std::vector<std::string>{"b", "e"}));
  EXPECT_EQ(r->checks, oracle.calls);
  EXPECT_EQ(static_cast<int>(r->trace.size()), r->checks);
  // all, prefixes 1/2/4/8 (8 passes), then removing halves, quarters, ... of those 8 (14 in all here): far
  // fewer than the 2^16 subsets.
  EXPECT_LE(r->checks, 16);
}

TEST(PrecisionBisect, NeededLayersAnywhereInTheRanking) {
  // Whatever the needed pair's places, the result is that pair, in at most 26 questions (the worst pairs here
  // take 24: all, five prefixes, then the halving rounds over all 26), against 2^26 subsets.
  const auto all = names(26);
  for (size_t i = 0; i < all.size(); i += 5)
    for (size_t j = i + 3; j < all.size(); j += 7) {
      Needs oracle{{all[i], all[j]}};
      auto r = find_fp32_layers(all, [&](const auto& s) { return oracle(s); });
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->layers, (std::vector<std::string>{all[i], all[j]})) << i << " " << j;
      EXPECT_LE(r->checks, 26) << i << " " << j;
    }
}

TEST(PrecisionBisect, GoodRankingCostsFewChecks) {
  // The ranking puts the one needed layer first: all, then the first prefix passes.
  Needs oracle{{"a"}};
  auto r = find_fp32_layers(names(20), [&](const auto& s) { return oracle(s); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->layers, (std::vector<std::string>{"a"}));
  EXPECT_EQ(r->checks, 2);
}

TEST(PrecisionBisect, ManyLayersNeededCostAboutTwiceTheSet) {
  // 8 of 14 needed (a model whose every other layer overflows): all, the prefixes, then the halving rounds.
  Needs oracle{{"a", "c", "d", "g", "h", "j", "k", "n"}};
  auto r = find_fp32_layers(names(14), [&](const auto& s) { return oracle(s); });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->layers, (std::vector<std::string>{"a", "c", "d", "g", "h", "j", "k", "n"}));
  EXPECT_LE(r->checks, 2 * 14 + 4);
}

TEST(PrecisionBisect, AllInF32FailingStopsAtOnce) {
  int calls = 0;
  auto r = find_fp32_layers(names(8), [&](const auto&) -> Result<bool> {
    ++calls;
    return false;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, BisectResult::Outcome::kAllFail);
  EXPECT_EQ(calls, 1);
}

TEST(PrecisionBisect, AlternativesGiveAMinimalSet) {
  // Either {c} alone or {a, b} passes: the result passes and no layer of it can be dropped.
  auto ok = [](const std::vector<std::string>& s) {
    auto has = [&](const char* n) { return std::find(s.begin(), s.end(), n) != s.end(); };
    return has("c") || (has("a") && has("b"));
  };
  auto r = find_fp32_layers(names(10), [&](const auto& s) -> Result<bool> { return ok(s); });
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(ok(r->layers));
  for (size_t k = 0; k < r->layers.size(); ++k) {
    auto less = r->layers;
    less.erase(less.begin() + k);
    EXPECT_FALSE(ok(less)) << "dropping " << r->layers[k] << " still passes";
  }
}

TEST(PrecisionBisect, OracleErrorsStopTheSearch) {
  auto r = find_fp32_layers(names(4), [](const auto&) -> Result<bool> {
    return Status(StatusCode::kInvalidArgument, "build failed");
  });
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("build failed"), std::string::npos);
  EXPECT_FALSE(find_fp32_layers({"a", "a"}, [](const auto&) -> Result<bool> { return true; }).ok());
}

TEST(PrecisionBisect, RankingPutsTheOverflowAndItsReadersFirst) {
  // x -> l0 (error 0.1) -> l1 (overflows) -> l2 (reads the Inf) -> l5 (not compared); l3 reads a weight and
  // has error 3.5, l4 reads l3 and adds 0.05.
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<compare::LayerError> layers = {
      {"l0", {"x"}, {"v0"}, 0.1}, {"l1", {"v0"}, {"v1"}, inf}, {"l2", {"v1"}, {"v2"}, inf},
      {"l5", {"v2"}, {"v5"}, -1}, {"l3", {"w"}, {"v3"}, 3.5},  {"l4", {"v3"}, {"v4"}, 3.55},
  };
  auto ranked = compare::rank_fp32_candidates(layers);
  EXPECT_EQ(ranked, (std::vector<std::string>{"l1", "l2", "l3", "l0", "l4", "l5"}));
  // The layer writing the engine's output comes right after the first divergence and its readers.
  layers[3].writes_output = true;
  ranked = compare::rank_fp32_candidates(layers);
  EXPECT_EQ(ranked, (std::vector<std::string>{"l1", "l2", "l5", "l3", "l0", "l4"}));
}

TEST(PrecisionBisect, ToleranceRatio) {
  EXPECT_DOUBLE_EQ(compare::tolerance_ratio(1.5, 1.0, 0.25, 0.25), 1.0);
  EXPECT_EQ(compare::tolerance_ratio(2.0, 2.0, 0, 0), 0);
  EXPECT_TRUE(std::isinf(compare::tolerance_ratio(std::numeric_limits<double>::infinity(), 7.0, 1, 1)));
  EXPECT_TRUE(std::isinf(compare::tolerance_ratio(1.0, 2.0, 0, 0)));
}

}  // namespace
}  // namespace kiln
