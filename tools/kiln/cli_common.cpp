#include "cli_common.h"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <iostream>


namespace kiln::cli {

namespace {

Result<std::vector<int64_t>> parse_dims(const std::string& s, const std::string& spec) {
  std::vector<int64_t> dims;
  size_t pos = 0;
  if (s.empty()) return dims;  // scalar
  while (pos <= s.size()) {
    size_t next = s.find('x', pos);
    std::string part = s.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    try {
      size_t used = 0;
      long long v = std::stoll(part, &used);
      if (used != part.size() || v < 0) throw std::invalid_argument(part);
      dims.push_back(v);
    } catch (const std::exception&) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--shapes '{}': '{}' is not a dim; write dims like 1x3x224x224", spec, part));
    }
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return dims;
}

}  // namespace

Status parse_shapes(const std::vector<std::string>& specs, OptimizationProfile& profile) {
  for (const auto& spec : specs) {
    size_t colon = spec.rfind(':');
    if (colon == std::string::npos || colon == 0)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--shapes '{}': expected NAME:MIN,OPT,MAX (e.g. input:1x3x224x224,8x3x224x224,32x3x224x224)", spec));
    std::string name = spec.substr(0, colon);
    std::string rest = spec.substr(colon + 1);
    std::vector<std::string> parts;
    size_t pos = 0;
    while (true) {
      size_t c = rest.find(',', pos);
      parts.push_back(rest.substr(pos, c == std::string::npos ? std::string::npos : c - pos));
      if (c == std::string::npos) break;
      pos = c + 1;
    }
    if (parts.size() != 1 && parts.size() != 3)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--shapes '{}': give one shape or three (MIN,OPT,MAX), got {}", spec, parts.size()));
    InputRange r;
    KILN_ASSIGN_OR_RETURN(r.min, parse_dims(parts[0], spec));
    KILN_ASSIGN_OR_RETURN(r.opt, parse_dims(parts.size() == 3 ? parts[1] : parts[0], spec));
    KILN_ASSIGN_OR_RETURN(r.max, parse_dims(parts.size() == 3 ? parts[2] : parts[0], spec));
    profile.inputs[name] = r;
  }
  return Status();
}

Result<std::vector<OptimizationProfile>> parse_profiles(const std::vector<std::string>& specs) {
  std::map<std::string, std::vector<InputRange>> ranges;  // per input, in the order given
  std::vector<std::string> order;
  for (const auto& spec : specs) {
    OptimizationProfile one;
    KILN_RETURN_IF_ERROR(parse_shapes({spec}, one));
    const auto& [name, r] = *one.inputs.begin();
    if (!ranges.count(name)) order.push_back(name);
    ranges[name].push_back(r);
  }
  size_t count = 0;
  for (const auto& [name, rs] : ranges) count = std::max(count, rs.size());
  std::vector<OptimizationProfile> profiles(count);
  for (size_t k = 0; k < count; ++k)
    for (const auto& name : order) {
      const auto& rs = ranges[name];
      profiles[k].inputs[name] = rs[std::min(k, rs.size() - 1)];
    }
  return profiles;
}

Status check_profile_index(const Engine& e, int index) {
  const int n = std::max<int>(1, static_cast<int>(e.profiles().size()));
  if (index < 0 || index >= n)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--opt-profile {}: the engine has {} profile(s), numbered 0..{}", index, n, n - 1));
  return Status();
}

std::optional<BackendKind> parse_backend(const std::string& s) {
  if (s == "auto") return BackendKind::kAuto;
  if (s == "cpu") return BackendKind::kCpu;
  if (s == "cuda") return BackendKind::kCuda;
  return std::nullopt;
}

std::function<void(std::string_view)> progress_printer(bool quiet) {
  if (quiet) return {};
  auto start = std::chrono::steady_clock::now();
  return [start](std::string_view s) {
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cerr << fmt::format("[kiln {:8.1f} ms] {}\n", ms, s);
  };
}

Result<Engine> load_or_build(const std::string& path, const std::string& backend, const std::vector<std::string>& shapes,
                             bool quiet) {
  const bool is_onnx = path.size() >= 5 && path.substr(path.size() - 5) == ".onnx";
  if (!is_onnx) return Engine::load(path);
  BuildConfig cfg;
  auto b = parse_backend(backend);
  if (!b) return Status(StatusCode::kInvalidArgument, "--backend must be auto, cpu or cuda, got '" + backend + "'");
  cfg.backend = *b;
  if (!shapes.empty()) {
    OptimizationProfile p;
    KILN_RETURN_IF_ERROR(parse_shapes(shapes, p));
    cfg.profiles.push_back(p);
  }
  cfg.progress = progress_printer(quiet);
  return Builder::build_from_file(path, cfg);
}

Result<std::vector<std::string>> expand_fp32_layers(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  auto trim = [](std::string s) {
    const size_t b = s.find_first_not_of(" \t\r");
    const size_t e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  for (const auto& item : items) {
    if (!item.starts_with("@")) {
      out.push_back(item);
      continue;
    }
    const std::string path = item.substr(1);
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--fp32-layers @{}: '{}' is a directory; @FILE names a file of node names", path, path));
    std::ifstream f(path);
    if (path.empty() || !f)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--fp32-layers @{}: cannot read '{}' ({}); @FILE names a file of node names, one "
                                "per line or comma-separated, e.g. the one kiln compare --precision-bisect writes",
                                path, path, path.empty() ? "no file name after @" : std::strerror(errno)));
    std::string line;
    while (std::getline(f, line)) {
      line = line.substr(0, line.find('#'));
      size_t pos = 0;
      while (pos <= line.size()) {
        const size_t comma = std::min(line.find(',', pos), line.size());
        if (std::string name = trim(line.substr(pos, comma - pos)); !name.empty()) out.push_back(name);
        pos = comma + 1;
      }
    }
    if (f.bad())
      return Status(StatusCode::kIoError, fmt::format("--fp32-layers @{}: error reading '{}'", path, path));
  }
  return out;
}

Status check_output_file(const std::string& flag, const std::string& path) {
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::absolute(path, ec).parent_path();
  if (ec || !std::filesystem::is_directory(dir, ec))
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{} {}: the directory '{}' does not exist", flag, path, dir.string()));
  if (std::filesystem::is_directory(path, ec))
    return Status(StatusCode::kInvalidArgument, fmt::format("{} {}: is a directory, not a file", flag, path));
  return Status();
}

Status write_output_file(const std::string& flag, const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f)
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("{}: cannot write '{}': {}", flag, path, std::strerror(errno)));
  return Status();
}

int fail(const Status& s) {
  std::cerr << "error: " << s.to_string() << "\n";
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace kiln::cli
