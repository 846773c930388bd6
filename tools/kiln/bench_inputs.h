// kiln bench's inputs: --shapes and --input parsed and checked against the engine, random data for the rest.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench_options.h"
#include "kiln/kiln.h"

namespace kiln::cli {

using ShapeMap = std::map<std::string, std::vector<int64_t>>;

// "1x3x224x224", or "scalar" for no dims.
std::string dims_str(const std::vector<int64_t>& d);
// "--shapes a:1x128,b:1x128" (repeatable): one concrete shape per named input.
Result<ShapeMap> parse_bench_shapes(const std::vector<std::string>& specs);
// Host tensors for every engine input from --input files, --shapes and random data (profile o.opt_profile).
Result<std::map<std::string, Tensor>> make_inputs(const BenchOptions& o, const Engine& e);
// `given` completed with random (seeded) host tensors for every other engine input: dims from `shapes`, else
// `profile`'s opt shape, else the static dims.
Result<std::map<std::string, Tensor>> random_inputs(const Engine& e, const ShapeMap& shapes, int profile,
                                                    uint64_t seed, bool quiet,
                                                    std::map<std::string, Tensor> given = {});

}  // namespace kiln::cli
