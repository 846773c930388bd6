#include "engine/engine_file.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "backends/device_probe.h"
#include "kiln/version.h"
#include "onnx/exporter.h"
#include "onnx/importer.h"
#include "util/checked_math.h"
#include "util/content_hash.h"
#include "util/error.h"
#include "util/tensor_pool.h"

namespace kiln::engine_file {

namespace {

using json = nlohmann::json;

constexpr size_t kHeaderSize = 24;
constexpr size_t kTrailerSize = 8;

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

namespace {

json io_json(const std::vector<TensorDesc>& descs) {
  json a = json::array();
  for (const auto& d : descs) a.push_back({{"name", d.name}, {"dtype", dtype_name(d.dtype)}, {"shape", shape_json(d.shape)}});
  return a;
}

// What one engine (a single engine, or one member of a bundle) records beyond its graph.
json engine_json(const EngineState& s) {
  return {
      {"precision", s.info.precision},
      {"fp32_layers", s.info.fp32_layers},
      {"cuda_graphs", s.info.cuda_graphs},
      {"aliases", s.info.aliases},
      {"inputs", io_json(s.inputs)},
      {"outputs", io_json(s.outputs)},
      {"profiles", profiles_json(s.profiles)},
      {"tactics", s.tactics ? s.tactics->entries() : std::map<std::string, std::string>{}},
  };
}

// Header, manifest, the sections in order, checksum. Section offsets are relative to the end of the manifest,
// so the manifest can describe them without knowing its own length.
std::string write_container(json manifest, uint32_t version, const std::vector<std::pair<std::string, std::string>>& sections) {
  json table = json::array();
  uint64_t offset = 0, total = 0;
  for (const auto& [name, bytes] : sections) {
    table.push_back({{"name", name}, {"offset", offset}, {"size", bytes.size()}});
    offset += bytes.size();
    total += bytes.size();
  }
  manifest["sections"] = table;
  manifest["checksum"] = kChecksum;
  const std::string m = manifest.dump();
  std::string out;
  out.reserve(kHeaderSize + m.size() + total + kTrailerSize);
  out.append(kMagic, 8);
  put<uint32_t>(out, version);
  put<uint32_t>(out, 0);
  put<uint64_t>(out, m.size());
  out += m;
  for (const auto& [name, bytes] : sections) out += bytes;
  put<uint64_t>(out, fnv1a64x4(out));
  return out;
}

json header_json(const EngineState& state, uint32_t version) {
  json compat = {{"backend", std::string(backend_name(state.info.backend))}};
  if (state.info.backend == BackendKind::kCuda) compat["gpu"] = json::parse(state.info.gpu_json, nullptr, false);
  return {{"kiln_version", kVersion},
          {"format_version", version},
          {"backend", std::string(backend_name(state.info.backend))},
          {"compatibility", compat}};
}

// Every member's graph in its own section ("graph.K"), their weights in one section with equal bytes stored
// once; the manifest lists the members in routing order.
std::string serialize_bundle(const EngineState& bundle) {
  std::string weights;
  onnx::WeightIndex index;
  std::vector<std::pair<std::string, std::string>> sections;
  json members = json::array();
  for (size_t k = 0; k < bundle.members.size(); ++k) {
    const EngineState& m = *bundle.members[k];
    const std::string name = fmt::format("graph.{}", k);
    sections.emplace_back(name, onnx::export_model(*m.graph, &weights, &index));
    json j = engine_json(m);
    j["graph"] = name;
    members.push_back(std::move(j));
  }
  sections.emplace_back("weights", std::move(weights));
  json manifest = header_json(bundle, kBundleFormatVersion);
  manifest["inputs"] = io_json(bundle.inputs);
  manifest["outputs"] = io_json(bundle.outputs);
  manifest["members"] = std::move(members);
  return write_container(std::move(manifest), kBundleFormatVersion, sections);
}

}  // namespace

Result<std::string> serialize(const EngineState& state) {
  if (!state.members.empty()) return serialize_bundle(state);
  std::string weights;
  std::string graph = onnx::export_model(*state.graph, &weights);
  json manifest = header_json(state, kFormatVersion);
  manifest.update(engine_json(state));
  return write_container(std::move(manifest), kFormatVersion, {{"graph", std::move(graph)}, {"weights", std::move(weights)}});
}

namespace {

// The fields engine_json writes, into state (graph already set).
Status read_engine_fields(const json& m, EngineState& state, const std::string& rebuild) {
  state.info.precision = m.value("precision", "f32");
  if (auto f = m.find("fp32_layers"); f != m.end() && f->is_array())
    for (const auto& name : *f)
      if (name.is_string()) state.info.fp32_layers.push_back(name.get<std::string>());
  state.info.cuda_graphs = m.value("cuda_graphs", true);
  if (auto a = m.find("aliases"); a != m.end() && a->is_object())
    for (const auto& [out, in] : a->items())
      if (in.is_string()) state.info.aliases[out] = in.get<std::string>();
  if (auto t = m.find("tactics"); t != m.end() && t->is_object()) {
    std::map<std::string, std::string> entries;
    for (const auto& [k, v] : t->items())
      if (v.is_string()) entries[k] = v.get<std::string>();
    state.tactics->merge(entries);
  }
  state.info.tactics = state.tactics->size();
  try {
    for (const auto& p : m.at("profiles")) {
      OptimizationProfile prof;
      for (const auto& [name, r] : p.items())
        prof.inputs[name] = {r.at("min").get<std::vector<int64_t>>(), r.at("opt").get<std::vector<int64_t>>(),
                             r.at("max").get<std::vector<int64_t>>()};
      state.profiles.push_back(std::move(prof));
    }
  } catch (const std::exception& e) {
    return engine_error(std::string("engine profiles are malformed (") + e.what() + "); " + rebuild);
  }
  return Status();
}

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
  BackendKind kind;
  if (backend == "cpu") {
    kind = BackendKind::kCpu;
  } else if (backend == "cuda") {
    kind = BackendKind::kCuda;
    KILN_RETURN_IF_ERROR(check_gpu_compatibility(manifest.value("compatibility", json::object()).value("gpu", json::object())));
  } else {
    return engine_error(fmt::format("engine is for an unknown backend '{}'; {}", backend, rebuild));
  }
  const std::string gpu_json =
      kind == BackendKind::kCuda ? manifest.value("compatibility", json::object()).value("gpu", json::object()).dump() : "";
  if (!sections.count("weights")) return engine_error(fmt::format("engine file has no 'weights' section; {}", rebuild));
  auto section = [&](const std::string& n) {
    return bytes.substr(body + sections[n].first, sections[n].second);
  };
  auto member = [&](const json& m, const std::string& graph, TensorPool* pool) -> Result<EngineState> {
    if (!sections.count(graph)) return engine_error(fmt::format("engine file has no '{}' section; {}", graph, rebuild));
    auto g = onnx::import_model_bytes(std::string(section(graph)), ".", "engine graph", section("weights"));
    if (!g.ok()) return engine_error("engine graph section is unreadable: " + g.status().message() + "; " + rebuild);
    if (pool)
      for (auto& [name, t] : g->initializers) t = pool->intern(t);
    EngineState state;
    state.info.backend = kind;
    state.info.gpu_json = gpu_json;
    state.graph = std::make_shared<ir::Graph>(std::move(*g));
    state.info.format_version = version;
    state.info.kiln_version = manifest.value("kiln_version", "");
    KILN_RETURN_IF_ERROR(read_engine_fields(m, state, rebuild));
    state.info.manifest_json = m.dump(2);
    KILN_RETURN_IF_ERROR(finalize_engine_state(state));
    return state;
  };
  if (version == kFormatVersion) {
    KILN_ASSIGN_OR_RETURN(EngineState state, member(manifest, "graph", nullptr));
    state.info.manifest_json = manifest.dump(2);
    return state;
  }
  const json& listed = manifest.at("members");
  if (!listed.is_array() || listed.empty())
    return engine_error(fmt::format("engine bundle lists no members; {}", rebuild));
  std::vector<EngineState> members;
  TensorPool pool;
  for (size_t k = 0; k < listed.size(); ++k) {
    auto m = member(listed[k], listed[k].at("graph").get<std::string>(), &pool);
    if (!m.ok()) return m.status().with_context(fmt::format("bundle member {}", k));
    members.push_back(std::move(*m));
  }
  EngineState bundle;
  bundle.info.format_version = version;
  bundle.info.kiln_version = manifest.value("kiln_version", "");
  KILN_RETURN_IF_ERROR(finalize_bundle_state(bundle, std::move(members)));
  bundle.info.manifest_json = manifest.dump(2);
  return bundle;
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
  if (version != kFormatVersion && version != kBundleFormatVersion)
    return engine_error(fmt::format("engine file format version {} but this kiln ({}) reads versions {} (engines) "
                                    "and {} (bundles); {} using this kiln",
                                    version, kVersion, kFormatVersion, kBundleFormatVersion, rebuild));
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
