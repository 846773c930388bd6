// Structured mutations of ONNX models and kiln engine files, for fuzzing the importer, the builder, the
// engine loader and the CPU runtime: each mutation keeps the file parseable (so the fuzzing reaches past the
// protobuf parser) and breaks one thing a real exporter, a hand edit or a truncated download could break.
#pragma once
#include <cstdint>
#include <random>
#include <string>

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

}  // namespace kiln::fuzz
