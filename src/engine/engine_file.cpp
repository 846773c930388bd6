#include "engine/engine_file.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "backends/device_probe.h"
#include "kiln/version.h"
#include "onnx/exporter.h"
#include "onnx/importer.h"
#include "util/checked_math.h"
#include "util/error.h"

namespace kiln::engine_file {

namespace {

using json = nlohmann::json;

constexpr size_t kHeaderSize = 24;
constexpr size_t kTrailerSize = 8;
constexpr uint64_t kFnvBasis = 1469598103934665603ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

template <class T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}
template <class T>
T get(std::string_view in, size_t off) {
  T v;
  std::memcpy(&v, in.data() + off, sizeof(T));
  return v;
}

json shape_json(const Shape& s) {
  json a = json::array();
  for (const auto& d : s.dims()) {
    if (d.is_static()) a.push_back(d.value());
    else a.push_back(d.is_symbolic() ? d.symbol_name() : "?");
  }
  return a;
}

json profiles_json(const std::vector<OptimizationProfile>& profiles) {
  json a = json::array();
  for (const auto& p : profiles) {
    json o = json::object();
    for (const auto& [name, r] : p.inputs) o[name] = {{"min", r.min}, {"opt", r.opt}, {"max", r.max}};
    a.push_back(o);
  }
  return a;
}

Status engine_error(std::string msg) { return Status(StatusCode::kInvalidEngine, std::move(msg)); }

// A CUDA engine runs only where its SM and libraries match what it was built against.
Status check_gpu_compatibility(const json& built) {
  const std::string rebuild = "rebuild it on this machine with `kiln build MODEL.onnx --backend cuda -o FILE.kiln`";
  const std::string built_desc = fmt::format("'{}' sm_{}", built.value("name", "?"), built.value("sm", "?"));
  if (!cuda_backend_available())
    return engine_error(fmt::format("engine was built for backend 'cuda' ({}), which cannot run here: {}; or build "
                                    "a CPU engine with `kiln build MODEL.onnx --backend cpu -o FILE.kiln`",
                                    built_desc, cuda_unavailable_reason()));
  GpuInfo here = probe_gpu();
  const std::string sm_here = fmt::format("{}.{}", here.sm_major, here.sm_minor);
  if (built.value("sm", "") != sm_here)
    return engine_error(fmt::format("engine was built for GPU {} but this GPU is '{}' sm_{}; {}", built_desc,
                                    here.name, sm_here, rebuild));
  const int built_cublas = built.value("cublaslt", 0);
  if (built_cublas / 10000 != here.cublaslt_version / 10000)
    return engine_error(fmt::format("engine was built with cuBLASLt {} but this machine has cuBLASLt {}; {}",
                                    built_cublas, here.cublaslt_version, rebuild));
  const int built_cudnn = built.value("cudnn", 0);
  if (built_cudnn / 10000 != here.cudnn_version / 10000)
    return engine_error(fmt::format("engine was built with cuDNN {} but this machine has cuDNN {}; {}", built_cudnn,
                                    here.cudnn_version, rebuild));
  const int built_runtime = built.value("cuda_runtime", 0);
  if (built_runtime > here.driver_version)
    return engine_error(fmt::format("engine was built with CUDA runtime {} but this driver supports CUDA {}; update "
                                    "the driver or {}",
                                    built_runtime, here.driver_version, rebuild));
  return Status();
}

}  // namespace

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = kFnvBasis;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

// One multiply per byte in a single dependent chain made the byte-wise checksum a quarter of an engine's load
// time (250 ms for 170 MB). Four independent lanes of 8-byte words keep its property that any one corrupted
// word changes the result (each step is a bijection of the lane), at memory speed. Words are read
// little-endian, as the rest of the format.
uint64_t fnv1a64x4(std::string_view bytes) {
  uint64_t lane[4] = {kFnvBasis, kFnvBasis ^ 1, kFnvBasis ^ 2, kFnvBasis ^ 3};
  const char* p = bytes.data();
  const size_t n = bytes.size();
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 4; ++l) {
      uint64_t w;
      std::memcpy(&w, p + i + 8 * l, 8);
      lane[l] = (lane[l] ^ w) * kFnvPrime;
    }
  uint64_t h = fnv1a64(bytes.substr(i)) ^ n;
  for (uint64_t v : lane) h = (h ^ v) * kFnvPrime;
  // Fold the high bits down (a multiply only carries upwards), as murmur's finalizer does.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

Result<std::string> serialize(const EngineState& state) {
  std::string weights;
  const std::string graph = onnx::export_model(*state.graph, &weights);
  json io_in = json::array(), io_out = json::array();
  for (const auto& d : state.inputs) io_in.push_back({{"name", d.name}, {"dtype", dtype_name(d.dtype)}, {"shape", shape_json(d.shape)}});
  for (const auto& d : state.outputs) io_out.push_back({{"name", d.name}, {"dtype", dtype_name(d.dtype)}, {"shape", shape_json(d.shape)}});
  json compat = {{"backend", std::string(backend_name(state.info.backend))}};
  if (state.info.backend == BackendKind::kCuda) compat["gpu"] = json::parse(state.info.gpu_json, nullptr, false);
  // Sections follow the manifest; offsets are relative to the end of the manifest so the manifest can
  // describe them without knowing its own length.
  json manifest = {
      {"kiln_version", kVersion},
      {"format_version", kFormatVersion},
      {"backend", std::string(backend_name(state.info.backend))},
      {"precision", state.info.precision},
      {"fp32_layers", state.info.fp32_layers},
      {"cuda_graphs", state.info.cuda_graphs},
      {"aliases", state.info.aliases},
      {"compatibility", compat},
      {"inputs", io_in},
      {"outputs", io_out},
      {"profiles", profiles_json(state.profiles)},
      {"tactics", state.tactics ? state.tactics->entries() : std::map<std::string, std::string>{}},
      {"checksum", kChecksum},
      {"sections", json::array({{{"name", "graph"}, {"offset", 0}, {"size", graph.size()}},
                                {{"name", "weights"}, {"offset", graph.size()}, {"size", weights.size()}}})},
  };
  const std::string m = manifest.dump();
  std::string out;
  out.reserve(kHeaderSize + m.size() + graph.size() + weights.size() + kTrailerSize);
  out.append(kMagic, 8);
  put<uint32_t>(out, kFormatVersion);
  put<uint32_t>(out, 0);
  put<uint64_t>(out, m.size());
  out += m;
  out += graph;
  out += weights;
  put<uint64_t>(out, fnv1a64x4(out));
  return out;
}

namespace {

// Everything after the manifest parsed: sections, size, checksum, backend, graph, profiles. The manifest's
// fields are read with json's checked accessors; a field of the wrong type throws, and deserialize turns
// that into an error.
Result<EngineState> deserialize_parsed(std::string_view bytes, const json& manifest, uint64_t mlen,
                                      uint32_t version, const std::string& rebuild) {
  uint64_t expected_size = kHeaderSize + mlen + kTrailerSize;
  const size_t body = kHeaderSize + mlen;
  std::map<std::string, std::pair<uint64_t, uint64_t>> sections;
  try {
    for (const auto& s : manifest.at("sections")) {
      const uint64_t size = s.at("size").get<uint64_t>();
      if (size > bytes.size()) return engine_error(fmt::format("engine manifest claims a section of {} bytes in a "
                                                               "file of {}; {}", size, bytes.size(), rebuild));
      sections[s.at("name").get<std::string>()] = {s.at("offset").get<uint64_t>(), size};
      const auto sum = checked_add<uint64_t>(expected_size, size);
      if (!sum)
        return engine_error(fmt::format("engine manifest's section sizes add up past 2^64 bytes; {}", rebuild));
      expected_size = *sum;
    }
  } catch (const std::exception& e) {
    return engine_error(std::string("engine manifest is missing fields (") + e.what() + "); " + rebuild);
  }
  if (bytes.size() < expected_size)
    return engine_error(fmt::format("engine file is truncated: {} bytes, expected {}; {}", bytes.size(),
                                    expected_size, rebuild));
  if (bytes.size() > expected_size)
    return engine_error(fmt::format("engine file has {} trailing bytes beyond its {} bytes (corrupted); {}",
                                    bytes.size() - expected_size, expected_size, rebuild));
  // In offset order, each section starts where the previous one ended or later and ends inside the file.
  std::vector<std::pair<std::pair<uint64_t, uint64_t>, std::string>> by_offset;
  for (const auto& [name, span] : sections) by_offset.push_back({span, name});
  std::sort(by_offset.begin(), by_offset.end());
  const uint64_t region = bytes.size() - body - kTrailerSize;
  uint64_t free_from = 0;
  for (const auto& [span, name] : by_offset) {
    if (span.first > region || span.second > region - span.first)
      return engine_error(fmt::format("engine section '{}' (offset {}, {} bytes) lies outside the {} bytes of "
                                      "sections; {}",
                                      name, span.first, span.second, region, rebuild));
    if (span.first < free_from)
      return engine_error(fmt::format("engine section '{}' overlaps the one before it; {}", name, rebuild));
    free_from = span.first + span.second;
  }
  // Files from before the manifest named its checksum use byte-wise FNV-1a; they still load.
  const std::string algorithm = manifest.value("checksum", std::string("fnv1a64"));
  if (algorithm != kChecksum && algorithm != "fnv1a64")
    return engine_error(fmt::format("engine file uses checksum '{}', which this kiln ({}) does not know; {} using "
                                    "this kiln",
                                    algorithm, kVersion, rebuild));
  const std::string_view covered = bytes.substr(0, bytes.size() - kTrailerSize);
  const uint64_t stored = get<uint64_t>(bytes, bytes.size() - kTrailerSize);
  const uint64_t actual = algorithm == kChecksum ? fnv1a64x4(covered) : fnv1a64(covered);
  if (stored != actual)
    return engine_error(fmt::format("engine file is corrupted: checksum {:016x} does not match the stored {:016x}; {}",
                                    actual, stored, rebuild));
  const std::string backend = manifest.value("backend", "");
  EngineState state;
  if (backend == "cpu") {
    state.info.backend = BackendKind::kCpu;
  } else if (backend == "cuda") {
    state.info.backend = BackendKind::kCuda;
    KILN_RETURN_IF_ERROR(check_gpu_compatibility(manifest.value("compatibility", json::object()).value("gpu", json::object())));
  } else {
    return engine_error(fmt::format("engine is for an unknown backend '{}'; {}", backend, rebuild));
  }
  for (const char* s : {"graph", "weights"})
    if (!sections.count(s)) return engine_error(fmt::format("engine file has no '{}' section; {}", s, rebuild));
  auto section = [&](const std::string& n) {
    return bytes.substr(body + sections[n].first, sections[n].second);
  };
  auto g = onnx::import_model_bytes(std::string(section("graph")), ".", "engine graph", section("weights"));
  if (!g.ok()) return engine_error("engine graph section is unreadable: " + g.status().message() + "; " + rebuild);
  state.graph = std::make_shared<ir::Graph>(std::move(*g));
  state.info.format_version = version;
  state.info.kiln_version = manifest.value("kiln_version", "");
  state.info.precision = manifest.value("precision", "f32");
  if (auto f = manifest.find("fp32_layers"); f != manifest.end() && f->is_array())
    for (const auto& name : *f)
      if (name.is_string()) state.info.fp32_layers.push_back(name.get<std::string>());
  state.info.cuda_graphs = manifest.value("cuda_graphs", true);
  if (auto a = manifest.find("aliases"); a != manifest.end() && a->is_object())
    for (const auto& [out, in] : a->items())
      if (in.is_string()) state.info.aliases[out] = in.get<std::string>();
  if (auto t = manifest.find("tactics"); t != manifest.end() && t->is_object()) {
    std::map<std::string, std::string> entries;
    for (const auto& [k, v] : t->items())
      if (v.is_string()) entries[k] = v.get<std::string>();
    state.tactics->merge(entries);
  }
  state.info.tactics = state.tactics->size();
  state.info.manifest_json = manifest.dump(2);
  if (state.info.backend == BackendKind::kCuda)
    state.info.gpu_json = manifest.value("compatibility", json::object()).value("gpu", json::object()).dump();
  try {
    for (const auto& p : manifest.at("profiles")) {
      OptimizationProfile prof;
      for (const auto& [name, r] : p.items())
        prof.inputs[name] = {r.at("min").get<std::vector<int64_t>>(), r.at("opt").get<std::vector<int64_t>>(),
                             r.at("max").get<std::vector<int64_t>>()};
      state.profiles.push_back(std::move(prof));
    }
  } catch (const std::exception& e) {
    return engine_error(std::string("engine profiles are malformed (") + e.what() + "); " + rebuild);
  }
  KILN_RETURN_IF_ERROR(finalize_engine_state(state));
  return state;
}

}  // namespace

Result<EngineState> deserialize(std::string_view bytes) {
  const std::string rebuild = "rebuild it with `kiln build MODEL.onnx -o FILE.kiln`";
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kMagic, 8) != 0)
    return engine_error(fmt::format("not a kiln engine file (the first 8 bytes are not the kiln magic{}); {}",
                                    bytes.size() < 8 ? ", file is shorter than 8 bytes" : "", rebuild));
  if (bytes.size() < kHeaderSize + kTrailerSize)
    return engine_error(fmt::format("engine file is truncated: {} bytes, the header alone needs {}; {}", bytes.size(),
                                    kHeaderSize + kTrailerSize, rebuild));
  const uint32_t version = get<uint32_t>(bytes, 8);
  if (version != kFormatVersion)
    return engine_error(fmt::format("engine file format version {} but this kiln ({}) reads version {}; {} using "
                                    "this kiln",
                                    version, kVersion, kFormatVersion, rebuild));
  const uint64_t mlen = get<uint64_t>(bytes, 16);
  if (mlen > bytes.size() - kHeaderSize - kTrailerSize)
    return engine_error(fmt::format("engine file is truncated: its manifest claims {} bytes but the file has {}; {}",
                                    mlen, bytes.size(), rebuild));
  json manifest = json::parse(bytes.substr(kHeaderSize, mlen), nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object())
    return engine_error("engine manifest is not valid JSON (corrupted file); " + rebuild);
  try {
    return deserialize_parsed(bytes, manifest, mlen, version, rebuild);
  } catch (const json::exception& e) {
    return engine_error(fmt::format("engine manifest has a malformed field ({}); {}", e.what(), rebuild));
  }
}

}  // namespace kiln::engine_file
