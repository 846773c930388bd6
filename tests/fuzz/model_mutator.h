// Structured mutations of ONNX models and kiln engine files, for fuzzing the importer, the builder, the
// engine loader and the CPU runtime: each mutation keeps the file parseable (so the fuzzing reaches past the
// protobuf parser) and breaks one thing a real exporter, a hand edit or a truncated download could break.
#pragma once
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "kiln/tensor.h"

namespace kiln_onnx {
class ModelProto;
}

namespace kiln::fuzz {

// Applies one random mutation to `model`; returns what it did ("node 3 (Conv): attribute group = -1"), for
// reproducing a failure. Deterministic for a given generator state.
std::string mutate_model(kiln_onnx::ModelProto& model, std::mt19937_64& rng);

// Applies one random mutation to a serialized engine file and re-signs it, so the checksum passes and the
// loader's own checks are what stands between the bytes and the runtime. Returns what it did.
std::string mutate_engine_file(std::string& bytes, std::mt19937_64& rng);

// Inputs for an engine: the given tensors where their dtype and dims fit the engine's input, else tensors of
// the engine's shape (symbolic dims from the given tensor where it has that rank, else 2) holding small
// deterministic values. Tensors of more than `max_elements` are left out (the run then reports the missing
// input).
std::map<std::string, Tensor> fit_inputs(const std::vector<TensorDesc>& wanted,
                                         const std::map<std::string, Tensor>& given, int64_t max_elements);

}  // namespace kiln::fuzz
