// Helpers for the dense-NN and spatial op tests (Gemm, Conv, pools, Resize…): build on the CPU backend, run,
// compare with values the test computes itself.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln::nn_test {

using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;
using testing::random_f32;

inline Result<Engine> build(const ModelBuilder& b) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  return Builder::build_from_bytes(b.bytes(), cfg);
}

inline Result<std::map<std::string, Tensor>> run(const ModelBuilder& b, const std::map<std::string, Tensor>& in) {
  KILN_ASSIGN_OR_RETURN(Engine engine, build(b));
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, engine.create_context());
  return ctx.infer(in);
}

// Runs and returns output "y", failing the test on error.
inline Tensor run_y(const ModelBuilder& b, const std::map<std::string, Tensor>& in) {
  auto r = run(b, in);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r->at("y") : Tensor();
}

inline std::string build_error(const ModelBuilder& b) {
  auto e = build(b);
  return e.ok() ? std::string() : e.status().message();
}

inline std::string built_shape(const ModelBuilder& b, size_t i = 0) {
  auto e = build(b);
  return e.ok() ? e->outputs().at(i).shape.to_string() : "build failed: " + e.status().message();
}

inline std::vector<std::string> dim_strs(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (int64_t v : d) s.push_back(std::to_string(v));
  return s;
}

inline void expect_near(const Tensor& got, const std::vector<double>& want, double tol = 1e-4) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << got.describe();
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got.get_as_double(static_cast<int64_t>(i)), want[i], tol * std::max(1.0, std::fabs(want[i])))
        << "at " << i;
}

inline double at(const Tensor& t, int64_t i) { return t.get_as_double(i); }

}  // namespace kiln::nn_test
