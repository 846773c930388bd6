// Cutting a part out of an ONNX model (kiln extract) and checking that it computes what the model does there.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "kiln/status.h"

namespace kiln {

enum class ExternalDataChoice {
  kAuto,    // external when the source model kept its weights in external data, or when they exceed what one
            // ONNX file holds (1900 MiB); inline otherwise
  kAlways,  // initializers of 1 KiB or more go to PART.onnx.data beside the part
  kNever,   // every tensor inline (an error past 1900 MiB)
};

struct ExtractConfig {
  std::vector<std::string> inputs;   // values of the model that become the part's graph inputs
  std::vector<std::string> outputs;  // values of the model that become the part's graph outputs
  ExternalDataChoice external_data = ExternalDataChoice::kAuto;
  // An input no needed node reads is an error instead of a warning.
  bool strict_inputs = false;
};

struct ExtractReport {
  std::vector<TensorDesc> inputs, outputs;  // as the part declares them
  std::vector<std::string> nodes;           // the part's node names, in order
  size_t model_nodes = 0;                   // nodes in the whole model
  size_t initializers = 0;
  int64_t initializer_bytes = 0;
  std::string part_path;
  std::string data_path;  // the external data file written beside the part; empty when all is inline
  int64_t external_tensors = 0;
  bool source_external_data = false;   // the model kept (some of) its weights in external data
  std::vector<std::string> warnings;   // unused inputs, shape inference that failed
};

// Reads model_path (and its external data), cuts the part between config.inputs and config.outputs and writes
// it to part_path as a standalone ONNX model. Errors name unknown values (with near matches) and, for a cut that
// is not closed, the model inputs it would need and the nodes that read them.
Result<ExtractReport> extract_model(const std::string& model_path, const std::string& part_path,
                                    const ExtractConfig& config);

struct ExtractCheckConfig {
  // Dims of the whole model's inputs; other inputs take their static dims, dynamic dims not given take 1.
  std::map<std::string, std::vector<int64_t>> dims;
  uint64_t seed = 0;
  // An element passes when |part - model| <= atol + rtol * |model| (NaN only against NaN).
  double atol = 1e-5, rtol = 1e-4;
};

struct ExtractCheckValue {
  std::string name;
  std::vector<int64_t> dims;
  double max_abs_error = 0;
  double max_abs_reference = 0;  // the largest |model value|, for scale
  int64_t mismatches = 0;        // elements over the tolerance (all of them when the shapes differ)
  int64_t worst_index = -1;      // flat index of the largest error
  bool shape_mismatch = false;
};

struct ExtractCheckReport {
  std::map<std::string, std::vector<int64_t>> model_input_dims;  // the random inputs the whole model ran on
  std::vector<ExtractCheckValue> outputs;                         // one per part output
  bool match = true;
};

// Runs the whole model on the CPU backend with seeded random inputs, with the part's inputs and outputs
// exposed as extra graph outputs; feeds the part (CPU backend) the model's tensors at its inputs and compares
// its outputs with the model's tensors at those names.
Result<ExtractCheckReport> check_extracted(const std::string& model_path, const std::string& part_path,
                                           const ExtractCheckConfig& config);

struct ModelValue {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;
  std::string producer;  // node name; empty for graph inputs
  std::string op;        // the producer's op type
  std::vector<std::string> readers;  // node names
};
// The model's graph inputs and every node output, in graph order, with inferred dtypes and shapes: the names a
// cut can be made at.
Result<std::vector<ModelValue>> list_model_values(const std::string& model_path);

}  // namespace kiln
