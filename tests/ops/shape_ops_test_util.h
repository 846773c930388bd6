// Helpers for the shape/layout/indexing op tests: build a model on the CPU backend, run it, read values.
#pragma once
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln::shape_ops_test {

using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;

inline BuildConfig cpu_config() {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  return cfg;
}

inline Result<std::map<std::string, Tensor>> run(const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  KILN_ASSIGN_OR_RETURN(Engine engine, Builder::build_from_bytes(b.bytes(), cpu_config()));
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, engine.create_context());
  return ctx.infer(inputs);
}

// The shape the builder inferred for output `i`, e.g. "[batch,12]".
inline std::string built_shape(const ModelBuilder& b, size_t i = 0) {
  auto engine = Builder::build_from_bytes(b.bytes(), cpu_config());
  if (!engine.ok()) return "build failed: " + engine.status().to_string();
  return engine->outputs().at(i).shape.to_string();
}

// The build error message, or "" when the build succeeds.
inline std::string build_error(const ModelBuilder& b) {
  auto engine = Builder::build_from_bytes(b.bytes(), cpu_config());
  return engine.ok() ? std::string() : engine.status().message();
}

template <class T = float>
std::vector<T> values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

template <class T>
Tensor tensor(DType dt, std::vector<int64_t> dims, const std::vector<T>& v) {
  return Tensor::from_vector(dt, std::move(dims), v);
}

// 0, 1, 2, … as f32.
inline Tensor iota_f32(std::vector<int64_t> dims) {
  Tensor t(DType::kF32, std::move(dims));
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

inline std::vector<int64_t> dims_of(const std::map<std::string, Tensor>& out, const std::string& name = "y") {
  return out.at(name).dims();
}

}  // namespace kiln::shape_ops_test
