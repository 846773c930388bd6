#include "fuzz/fuzz_runner.h"

#include <exception>

#include "kiln/kiln.h"

namespace kiln::fuzz {

namespace {

// Inputs for an engine: the given tensors where their dtype and dims fit the engine's input, else tensors of
// the engine's shape (symbolic dims from the given tensor where it has that rank, else 2) holding small
// deterministic values. Tensors of more than `max_elements` are left out (the run then reports the missing
// input).
std::map<std::string, Tensor> fit_inputs(const std::vector<TensorDesc>& wanted,
                                         const std::map<std::string, Tensor>& given, int64_t max_elements) {
  std::map<std::string, Tensor> out;
  for (const TensorDesc& d : wanted) {
    auto it = given.find(d.name);
    const Tensor* have = it == given.end() ? nullptr : &it->second;
    if (!d.shape.has_rank()) {
      if (have) out[d.name] = *have;
      continue;
    }
    std::vector<int64_t> dims;
    bool fits = have && have->dtype() == d.dtype && have->rank() == d.shape.rank();
    for (size_t i = 0; i < d.shape.rank(); ++i) {
      const Dim& dim = d.shape[i];
      const bool same_rank = have && have->rank() == d.shape.rank();
      dims.push_back(dim.is_static() ? dim.value() : same_rank ? have->dim(i) : 2);
      if (fits && dim.is_static() && dim.value() != have->dim(i)) fits = false;
    }
    if (fits) {
      out[d.name] = *have;
      continue;
    }
    // Stops at the first dim that would take the count past max_elements, before multiplying: mutated dims
    // reach INT64_MAX and the product must not overflow.
    int64_t n = 1;
    bool too_big = false;
    for (int64_t v : dims) {
      if (v < 0 || (v > 0 && n > max_elements / v)) {
        too_big = true;
        break;
      }
      n *= v;
    }
    if (too_big || n > max_elements || d.dtype == DType::kUndefined || d.dtype == DType::kString) continue;
    // Ones and twos: valid as indices into most axes, and never zero, so a data-driven Loop (Range's
    // expansion divides by its delta) ends.
    Tensor t(d.dtype, dims);
    for (int64_t e = 0; e < n; ++e) {
      const int v = 1 + static_cast<int>(e % 2);
      switch (d.dtype) {
        case DType::kF32: t.data<float>()[e] = static_cast<float>(v); break;
        case DType::kF64: t.data<double>()[e] = v; break;
        case DType::kF16: t.data<uint16_t>()[e] = v == 1 ? 0x3C00 : 0x4000; break;
        case DType::kBF16: t.data<uint16_t>()[e] = v == 1 ? 0x3F80 : 0x4000; break;
        default: static_cast<unsigned char*>(t.raw())[e * dtype_size(d.dtype)] = static_cast<unsigned char>(v);
      }
    }
    out[d.name] = std::move(t);
  }
  return out;
}


// Inputs past this many elements are left out: a mutated dim of 2^40 must be refused by kiln, not by the
// fuzzer's own allocation.
constexpr int64_t kMaxInputElements = int64_t{1} << 22;

Outcome run(const Engine& engine, const std::map<std::string, Tensor>& given) {
  auto ctx = engine.create_context();
  if (!ctx.ok()) return {Stage::kContext, ctx.status().message()};
  auto out = ctx->infer(fit_inputs(engine.inputs(), given, kMaxInputElements));
  if (!out.ok()) return {Stage::kRun, out.status().message()};
  return {Stage::kRan, ""};
}

}  // namespace

std::string_view stage_name(Stage s) {
  switch (s) {
    case Stage::kBuild: return "build";
    case Stage::kLoad: return "load";
    case Stage::kContext: return "context";
    case Stage::kRun: return "run";
    case Stage::kRan: return "ran";
    case Stage::kThrew: return "threw";
  }
  return "?";
}

Outcome run_model(const std::string& model_bytes, const std::string& base_dir,
                  const std::map<std::string, Tensor>& given) {
  try {
    BuildConfig cfg;
    cfg.backend = BackendKind::kCpu;
    auto engine = Builder::build_from_bytes(model_bytes, cfg, base_dir);
    if (!engine.ok()) return {Stage::kBuild, engine.status().message()};
    return run(*engine, given);
  } catch (const std::exception& e) {
    return {Stage::kThrew, e.what()};
  }
}

Outcome run_engine_file(const std::string& engine_bytes, const std::map<std::string, Tensor>& given) {
  try {
    auto engine = Engine::deserialize(engine_bytes);
    if (!engine.ok()) return {Stage::kLoad, engine.status().message()};
    return run(*engine, given);
  } catch (const std::exception& e) {
    return {Stage::kThrew, e.what()};
  }
}

}  // namespace kiln::fuzz
