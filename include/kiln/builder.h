// Builder: ONNX model -> optimized Engine for one backend.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/engine.h"
#include "kiln/status.h"

namespace kiln {

enum class Precision { kF32, kTF32, kF16, kBF16 };
std::string_view precision_name(Precision p);

// Layout of the 2-D convolutions of CUDA f16/bf16 engines. kAuto: channels-last (NHWC) at every batch. Batch-1
// engines used to stay NCHW (measured faster once); with today's NHWC tactics an H100 ran ResNet-50 f16 at
// batch 1 in 0.320 ms NHWC vs 1.257 ms NCHW (2026-12-07; bench/conv_layout_ab.sh repeats it).
enum class ConvLayoutChoice { kAuto, kNCHW, kNHWC };

struct BuildConfig {
  // kAuto picks CUDA when a usable GPU and the CUDA backend are present, else CPU.
  BackendKind backend = BackendKind::kAuto;
  // Default f32 with TF32 off; reduced precisions are opt-in.
  Precision precision = Precision::kF32;
  // With kF16/kBF16: node names that keep computing in f32 (Casts around them). An unknown name is an error.
  std::vector<std::string> fp32_layers;
  // With kF16/kBF16: the engine's f32 inputs and outputs become f16/bf16 too (kiln build
  // --reduced-precision-io), so callers pass and receive half-size data with no casts at the edges.
  bool reduced_precision_io = false;
  // CUDA f16/bf16 engines: the convolution layout (kiln build --conv-layout auto|nchw|nhwc).
  ConvLayoutChoice conv_layout = ConvLayoutChoice::kAuto;
  // min/opt/max per dynamic input. Empty: the model's static dims, dynamic dims unbounded.
  std::vector<OptimizationProfile> profiles;
  // CUDA engines: time the kernels' candidate tactics (cuBLASLt algorithms, cuDNN paths) at build, at each
  // profile's min/opt/max shapes, and store the choices in the engine (kiln build --no-tactic-timing: off;
  // contexts then time each new shape on its first run).
  bool tactic_timing = true;
  // With tactic_timing: a timing cache file read before timing (known choices are not timed again) and
  // rewritten after it (kiln build --timing-cache FILE). Empty: none.
  std::string timing_cache_path;
  // CUDA engines: contexts capture and replay CUDA graphs per input shape (kiln build --no-cuda-graph: off).
  bool cuda_graphs = true;
  // CUDA engines: nodes with no CUDA kernel for their op or dtypes run on the CPU reference (the build reports
  // each with why). false (kiln build --no-cpu-fallback): such a node is a build error instead.
  bool allow_cpu_fallback = true;
  // Outputs written into an input's buffer, {output, input} (kiln build --alias OUT:IN): a KV cache updated in
  // place. Each pair must have the same dtype and shape; an unknown name or a mismatch is a build error.
  std::vector<std::pair<std::string, std::string>> aliases;
  // Also pair outputs with inputs by the names exporters give a KV cache (present.N.key <- past_key_values.N.key,
  // present.N <- past.N, ...) where dtype and shape match (kiln build --no-auto-alias: off).
  bool auto_alias = true;
  // Called with one line per build stage ("import", "passes: fold_constants"…).
  std::function<void(std::string_view)> progress;
  // Called with each warning (a node left to the CPU reference, with why); unset: warnings go to progress.
  std::function<void(std::string_view)> warning;
};

class Builder {
 public:
  // Reads MODEL.onnx (and external-data files next to it) and builds an engine.
  static Result<Engine> build_from_file(const std::string& onnx_path, const BuildConfig& config);
  // Builds from serialized ModelProto bytes; base_dir resolves external data.
  static Result<Engine> build_from_bytes(const std::string& onnx_bytes, const BuildConfig& config,
                                         const std::string& base_dir = ".");
};

}  // namespace kiln
