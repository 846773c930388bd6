// Helpers for the reduction / normalization / loss op tests: run a small model on the CPU backend.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln::testing {

inline std::vector<std::string> dim_strings(const Tensor& t) {
  std::vector<std::string> d;
  for (int64_t v : t.dims()) d.push_back(std::to_string(v));
  return d;
}

inline Result<Engine> build_cpu(const ModelBuilder& b) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  return Builder::build_from_bytes(b.bytes(), cfg);
}

// Builds the model and runs it once on `inputs`.
inline Result<std::map<std::string, Tensor>> run_model(const ModelBuilder& b,
                                                       const std::map<std::string, Tensor>& inputs) {
  auto engine = build_cpu(b);
  if (!engine.ok()) return engine.status();
  auto ctx = engine->create_context();
  if (!ctx.ok()) return ctx.status();
  return ctx->infer(inputs);
}

// The message of a build that must fail ("" when it succeeds).
inline std::string build_error(const ModelBuilder& b) {
  auto engine = build_cpu(b);
  return engine.ok() ? std::string() : engine.status().message();
}

inline std::vector<double> values_of(const Tensor& t) {
  std::vector<double> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.get_as_double(i);
  return v;
}

inline void expect_near_all(const Tensor& got, const std::vector<double>& want, double tol = 1e-5) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << got.describe();
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i]))
      EXPECT_TRUE(std::isnan(got.get_as_double(i))) << "at " << i;
    else
      EXPECT_NEAR(got.get_as_double(i), want[i], tol * std::max(1.0, std::fabs(want[i]))) << "at " << i;
  }
}

}  // namespace kiln::testing
