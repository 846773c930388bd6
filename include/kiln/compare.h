// Checking an engine against a reference (kiln compare): error metrics, the shapes to test, the CPU reference
// on the unoptimized model, reference data users bring, and engines whose intermediate tensors are outputs.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "kiln/status.h"
#include "kiln/tensor.h"

namespace kiln::compare {

// An element passes when |engine - ref| <= atol + rtol * |ref| (numpy.allclose's rule); a tensor passes when
// every element does and, with min_cosine > 0, its cosine similarity to the reference is at least that.
struct Tolerance {
  double atol = 1e-5;
  double rtol = 1e-4;
  double min_cosine = 0;  // 0: not part of the rule
};
// Defaults by the engine's precision ("f32", "tf32", "f16", "bf16").
Tolerance default_tolerance(const std::string& precision);
// "|engine - ref| <= 1e-05 + 1e-04 * |ref| for every element[, cosine >= 0.999]"
std::string describe_rule(const Tolerance& t);

struct TensorComparison {
  std::string name;
  std::vector<int64_t> dims;      // the engine's
  std::vector<int64_t> ref_dims;  // the reference's
  std::string error;              // set when the tensors cannot be compared (shapes differ); then pass is false
  int64_t elements = 0;
  // Over the elements where both are finite. Relative errors leave out elements whose reference is 0.
  double max_abs = 0, mean_abs = 0, max_rel = 0, mean_rel = 0;
  double cosine = 1;
  int64_t over_tolerance = 0;  // failing elements, the non-finite mismatches included
  int64_t nonfinite = 0;       // NaN/Inf in the engine where the reference differs (a finite value, say)
  // The largest |engine - ref| / (atol + rtol * |ref|) over the elements: at most 1 when every element passes;
  // +inf for a non-finite mismatch, or a difference where the allowance is 0. Kept apart from the worst element,
  // which is picked by the margin in absolute terms.
  double max_tolerance_ratio = 0;
  // The element farthest past the tolerance (a non-finite mismatch first; if all pass, the closest to failing).
  std::vector<int64_t> worst_index;
  double worst_value = 0, worst_reference = 0;
  bool pass = true;
};

// Both tensors read as doubles (any numeric dtype, f16/bf16 included).
TensorComparison compare_tensors(const std::string& name, const Tensor& engine, const Tensor& reference,
                                 const Tolerance& tol);

// One set of concrete input shapes to test, and the profile to run it under.
struct ShapeCase {
  std::string label;  // "profile 0 min", "random 2 (profile 1)"; identical cases merge ("profile 0 min/opt/max")
  int profile = 0;
  std::map<std::string, std::vector<int64_t>> dims;
};

// The min, opt and max of every profile, then `random_count` shapes drawn (seeded) between a profile's min and
// max, round-robin over the profiles. Dims that share a symbol (two inputs' "batch") get one value. Inputs a
// profile does not name take their static dims. Without profiles: dynamic dims 1, random ones in 1..8.
Result<std::vector<ShapeCase>> shape_cases(const std::vector<TensorDesc>& inputs,
                                           const std::vector<OptimizationProfile>& profiles, int random_count,
                                           uint64_t seed);

// Random data as kiln run makes it: floats uniform in [-1, 1), integers in [0, 10), bools 50/50.
Result<Tensor> random_tensor(DType dtype, const std::vector<int64_t>& dims, uint64_t seed, const std::string& what);
// `t` as `to` (float and integer dtypes), for engines whose I/O dtype differs from the model's.
Tensor convert(const Tensor& t, DType to);

enum class ReferencePrecision { kF32, kF64 };

// A node output of the unoptimized model, in topological order.
struct Layer {
  std::string value, node, op;
  std::vector<std::string> inputs;  // the node's inputs (weights included)
};

// kiln's CPU reference backend on the model as imported: no fusion, no folding. In f64 every f32 tensor of
// the model (weights, constants, values, Casts to float) becomes f64, so the reference computes in double.
class Reference {
 public:
  static Result<Reference> load(const std::string& onnx_path, ReferencePrecision precision);
  // Outputs by name; with `intermediates`, every node output too.
  Result<std::map<std::string, Tensor>> run(const std::map<std::string, Tensor>& inputs, bool intermediates) const;
  const std::vector<TensorDesc>& inputs() const;
  const std::vector<std::string>& outputs() const;
  const std::vector<Layer>& layers() const;
  ReferencePrecision precision() const;

  struct Impl;

 private:
  std::shared_ptr<const Impl> impl_;
};

// What an engine's optimized graph computes that the model also names: value -> the engine node producing it
// ("FusedConv 'conv1'"). Values fused away are absent.
std::map<std::string, std::string> engine_values(const Engine& engine);
// The same engine with these values of its optimized graph as extra outputs (same kernels, same fusions).
Result<Engine> with_extra_outputs(const Engine& engine, const std::vector<std::string>& values);

// A node of an engine's optimized graph, in its order.
struct EngineLayer {
  std::string name, op;
  std::vector<std::string> inputs, outputs;
  bool float_outputs = false;  // writes an f32/f16/bf16 value: something to keep in f32
};
std::vector<EngineLayer> engine_layers(const Engine& engine);

// A CPU engine built with --fp16/--bf16 computes in f32. This copy of it rounds every value a CUDA build would
// hold in f16/bf16 to that dtype where it is written (the build's precision conversion, as if every op had an
// f16/bf16 kernel; the engine's fp32_layers stay f32), so f16 overflow and rounding show without a GPU. Only
// storage is emulated: arithmetic and accumulation stay f32, as in most f16 kernels' accumulators.
Result<Engine> emulate_reduced_precision(const Engine& engine);

// Inputs and outputs a user saved elsewhere (torch, ONNX Runtime), by tensor name.
struct ReferenceData {
  std::map<std::string, Tensor> inputs, outputs;
  std::string source;  // what was read, for the report
};
// PATH is a directory with NAME.npy per output and input (names as kiln run --output-dir writes them: '/',
// '\\' and ':' become '_'), an ONNX test data set directory (input_N.pb, output_N.pb; names inside the
// protos, else the model's order), a .npz file, or a directory holding one .npz. Inputs missing from it must
// come through `given`.
Result<ReferenceData> load_reference_data(const std::string& path, const std::vector<std::string>& input_names,
                                          const std::vector<std::string>& output_names,
                                          const std::map<std::string, Tensor>& given);

}  // namespace kiln::compare
