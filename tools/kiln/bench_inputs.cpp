// kiln bench's inputs (see bench_inputs.h).
#include "bench_inputs.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <random>

#include "cli_common.h"
#include "kiln/tensor_io.h"
#include "kiln/half.h"

namespace kiln::cli {

namespace {

// Dims for an input without --shapes/--input: the profile's opt shape, else the engine's static dims. A
// dynamic dim with no profile to bound it runs at 1 (said on stderr: such a number is rarely what the user
// wants).
std::vector<int64_t> default_dims(const TensorDesc& d, const Engine& e, int profile, bool quiet) {
  if (!e.profiles().empty()) {
    const auto& p = e.profiles()[static_cast<size_t>(profile)];
    auto it = p.inputs.find(d.name);
    if (it != p.inputs.end()) return it->second.opt;
  }
  std::vector<int64_t> dims;
  bool guessed = false;
  for (const auto& dim : d.shape.dims()) {
    dims.push_back(dim.is_static() ? dim.value() : 1);
    guessed |= !dim.is_static();
  }
  if (guessed && !quiet)
    std::cerr << fmt::format(
        "kiln: input '{}' ({}) has dynamic dims and no profile: running {}; pass --shapes {}:DIMS\n", d.name,
        d.shape.to_string(), dims_str(dims), d.name);
  return dims;
}

// Random data: floats in [-1,1). Integers in [0, min(last dim, 100)): small enough to be a valid index or
// token id in any realistic model (positions < sequence length, ids < vocabulary). Inputs named like "*mask*"
// are all ones (attend to every token), the case a latency benchmark should measure; bools are 50/50
// otherwise.
Result<Tensor> random_input(const TensorDesc& d, const std::vector<int64_t>& dims, std::mt19937_64& rng) {
  Tensor t(d.dtype, dims);
  std::string lower = d.name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const bool mask = lower.find("mask") != std::string::npos;
  const int64_t hi = std::max<int64_t>(1, std::min<int64_t>(dims.empty() ? 100 : dims.back(), 100));
  std::uniform_real_distribution<double> uf(-1.0, 1.0);
  std::uniform_int_distribution<int64_t> ui(0, hi - 1);
  auto next_int = [&]() -> int64_t { return mask ? 1 : ui(rng); };
  for (int64_t i = 0; i < t.numel(); ++i) {
    switch (d.dtype) {
      case DType::kF32:
        t.data<float>()[i] = static_cast<float>(uf(rng));
        break;
      case DType::kF64:
        t.data<double>()[i] = uf(rng);
        break;
      case DType::kF16:
        t.data<uint16_t>()[i] = float_to_half(static_cast<float>(uf(rng)));
        break;
      case DType::kBF16:
        t.data<uint16_t>()[i] = float_to_bf16(static_cast<float>(uf(rng)));
        break;
      case DType::kBool:
        t.data<uint8_t>()[i] = mask ? 1 : static_cast<uint8_t>(rng() & 1);
        break;
      case DType::kI64:
        t.data<int64_t>()[i] = next_int();
        break;
      case DType::kI32:
        t.data<int32_t>()[i] = static_cast<int32_t>(next_int());
        break;
      case DType::kU8:
        t.data<uint8_t>()[i] = static_cast<uint8_t>(next_int());
        break;
      case DType::kI8:
        t.data<int8_t>()[i] = static_cast<int8_t>(next_int());
        break;
      default:
        return Status(
            StatusCode::kUnsupported,
            fmt::format("cannot make random data for input '{}' of dtype {}; pass --input {}=FILE.npy",
                        d.name, dtype_name(d.dtype), d.name));
    }
  }
  return t;
}

}  // namespace

std::string dims_str(const std::vector<int64_t>& d) {
  std::string s;
  for (size_t i = 0; i < d.size(); ++i) s += (i ? "x" : "") + std::to_string(d[i]);
  return s.empty() ? "scalar" : s;
}

// "--shapes a:1x128,b:1x128" (the flag is also repeatable): one concrete shape per named input. Each piece
// goes through the build command's parser as a fixed shape, so dims are written and checked the same way.
Result<ShapeMap> parse_bench_shapes(const std::vector<std::string>& specs) {
  ShapeMap out;
  for (const auto& spec : specs) {
    size_t pos = 0;
    while (pos <= spec.size()) {
      size_t comma = spec.find(',', pos);
      std::string piece = spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      size_t colon = piece.rfind(':');
      if (colon == std::string::npos || colon == 0)
        return Status(
            StatusCode::kInvalidArgument,
            fmt::format("--shapes '{}': expected NAME:DIMS[,NAME:DIMS...] with dims like 1x3x224x224 "
                        "(bench runs one concrete shape per input)",
                        spec));
      OptimizationProfile p;
      KILN_RETURN_IF_ERROR(parse_shapes({piece}, p));
      const auto& [name, range] = *p.inputs.begin();
      if (out.count(name))
        return Status(StatusCode::kInvalidArgument, fmt::format("--shapes gives input '{}' twice", name));
      out[name] = range.opt;
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  return out;
}

// Host tensors for every engine input: --input files first, then --shapes/defaults with random data.
Result<std::map<std::string, Tensor>> make_inputs(const BenchOptions& o, const Engine& e) {
  ShapeMap shapes;
  KILN_ASSIGN_OR_RETURN(shapes, parse_bench_shapes(o.shapes));
  auto names = [&] {
    std::vector<std::string> n;
    for (const auto& d : e.inputs()) n.push_back("'" + d.name + "'");
    return fmt::format("{}", fmt::join(n, ", "));
  };
  auto find = [&](const std::string& name) -> const TensorDesc* {
    for (const auto& d : e.inputs())
      if (d.name == name) return &d;
    return nullptr;
  };
  for (const auto& [name, dims] : shapes)
    if (!find(name))
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--shapes names input '{}' but the engine's inputs are {}", name, names()));
  std::map<std::string, Tensor> inputs;
  for (const auto& spec : o.inputs) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status(StatusCode::kInvalidArgument, "--input '" + spec + "': expected NAME=FILE (.npy or .pb)");
    const std::string name = spec.substr(0, eq);
    const TensorDesc* d = find(name);
    if (!d)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--input names input '{}' but the engine's inputs are {}", name, names()));
    auto t = io::load_tensor_file(spec.substr(eq + 1));
    if (!t.ok()) return t.status().with_context("--input " + name);
    if (t->dtype() != d->dtype)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--input {}: the engine wants {} but the file holds {}", name,
                                dtype_name(d->dtype), dtype_name(t->dtype())));
    auto s = shapes.find(name);
    if (s != shapes.end() && s->second != t->dims())
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--input {} is {} but --shapes asks for {}; give one or the other", name,
                                dims_str(t->dims()), dims_str(s->second)));
    inputs[name] = *t;
  }
  return random_inputs(e, shapes, o.opt_profile, o.seed, o.quiet || o.json, std::move(inputs));
}

Result<std::map<std::string, Tensor>> random_inputs(const Engine& e, const ShapeMap& shapes, int profile,
                                                    uint64_t seed, bool quiet,
                                                    std::map<std::string, Tensor> given) {
  std::mt19937_64 rng(seed);
  for (const auto& d : e.inputs()) {
    if (given.count(d.name)) continue;
    auto s = shapes.find(d.name);
    std::vector<int64_t> dims = s != shapes.end() ? s->second : default_dims(d, e, profile, quiet);
    KILN_ASSIGN_OR_RETURN(given[d.name], random_input(d, dims, rng));
  }
  return given;
}

}  // namespace kiln::cli
