// Runs ONNX backend test cases (model.onnx + test_data_set_*/input_*.pb, output_*.pb) through kiln's importer,
// builder and CPU engine, and compares with the stored outputs.
//   kiln_conformance --data /usr/include/onnx/backend/test/data --expected expected_failures.txt
// Tests listed in the expected-failures file count as skipped when they fail, and as failures when they pass
// (so the list stays exact). Ends with "N passed, N failed, N skipped".
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "kiln/kiln.h"
#include "onnx/tensor_proto.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

struct Options {
  std::string data, expected, filter, json_out;
  std::vector<std::string> suites = {"node", "simple", "pytorch-converted", "pytorch-operator"};
  bool verbose = false;
  double rtol = 1e-3, atol = 1e-5;
};

std::map<std::string, std::string> read_expected(const std::string& path) {
  std::map<std::string, std::string> out;
  if (path.empty()) return out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.find_first_of(" \t");
    std::string name = line.substr(0, sp);
    std::string reason = sp == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", sp));
    out[name] = reason;
  }
  return out;
}

// numpy has no bfloat16, so the ONNX test data stores bf16 tensors as uint16 with the same bits.
Tensor as_bf16_if_stored_as_u16(const Tensor& t, DType wanted) {
  if (wanted == DType::kBF16 && t.dtype() == DType::kU16)
    return Tensor::wrap(DType::kBF16, t.dims(), const_cast<void*>(t.raw())).clone();
  return t;
}

Status compare(const std::string& name, const Tensor& got, const Tensor& want_stored, double rtol, double atol) {
  const Tensor want = as_bf16_if_stored_as_u16(want_stored, got.dtype());
  if (got.dtype() != want.dtype())
    return Status(StatusCode::kInternal, fmt::format("output '{}' dtype {} != expected {}", name, dtype_name(got.dtype()),
                                                     dtype_name(want.dtype())));
  if (got.dims() != want.dims())
    return Status(StatusCode::kInternal, fmt::format("output '{}' dims {} != expected {}", name,
                                                     dims_to_string(got.dims()), dims_to_string(want.dims())));
  // f16/bf16 references were rounded once more than our f32 compute.
  if (want.dtype() == DType::kF16) rtol = std::max(rtol, 2e-3), atol = std::max(atol, 1e-3);
  if (want.dtype() == DType::kBF16) rtol = std::max(rtol, 1e-2), atol = std::max(atol, 1e-2);
  for (int64_t i = 0; i < want.numel(); ++i) {
    double g = got.get_as_double(i), w = want.get_as_double(i);
    if (is_integer(want.dtype()) && got.get_as_int(i) != want.get_as_int(i))
      return Status(StatusCode::kInternal, fmt::format("output '{}'[{}] = {} != expected {}", name, i, got.get_as_int(i), want.get_as_int(i)));
    if (std::isnan(w) && std::isnan(g)) continue;
    if (std::isinf(w) && g == w) continue;
    if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w)))
      return Status(StatusCode::kInternal, fmt::format("output '{}'[{}] = {} != expected {} (rtol {}, atol {})", name,
                                                       i, g, w, rtol, atol));
  }
  return Status();
}

Status run_case(const fs::path& dir, const Options& o) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  KILN_ASSIGN_OR_RETURN(Engine engine, Builder::build_from_file((dir / "model.onnx").string(), cfg));
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, engine.create_context());
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return Status(StatusCode::kNotFound, "no test_data_set_* directories");
  for (const auto& set : sets) {
    std::map<std::string, Tensor> inputs;
    for (size_t i = 0; i < engine.inputs().size(); ++i) {
      fs::path p = set / fmt::format("input_{}.pb", i);
      if (!fs::exists(p)) break;
      KILN_ASSIGN_OR_RETURN(Tensor t, onnx::load_tensor_pb(p.string()));
      inputs[engine.inputs()[i].name] = as_bf16_if_stored_as_u16(t, engine.inputs()[i].dtype);
    }
    KILN_ASSIGN_OR_RETURN(auto outputs, ctx.infer(inputs));
    for (size_t i = 0; i < engine.outputs().size(); ++i) {
      fs::path p = set / fmt::format("output_{}.pb", i);
      if (!fs::exists(p)) continue;
      KILN_ASSIGN_OR_RETURN(Tensor want, onnx::load_tensor_pb(p.string()));
      const std::string& name = engine.outputs()[i].name;
      KILN_RETURN_IF_ERROR(compare(name, outputs.at(name), want, o.rtol, o.atol)
                               .with_context(set.filename().string()));
    }
  }
  return Status();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--data") o.data = next();
    else if (a == "--expected") o.expected = next();
    else if (a == "--filter") o.filter = next();
    else if (a == "--suite") o.suites = {next()};
    else if (a == "--verbose" || a == "-v") o.verbose = true;
    else if (a == "--help" || a == "-h") {
      std::cout << "usage: kiln_conformance --data DIR [--expected FILE] [--suite node|simple|pytorch-converted|"
                   "pytorch-operator] [--filter SUBSTR] [-v]\n";
      return 0;
    } else {
      std::cerr << "unknown argument " << a << "\n";
      return 2;
    }
  }
  if (o.data.empty() || !fs::exists(o.data)) {
    std::cerr << "error: --data DIR must name the ONNX backend test data (Debian: libonnx-testdata)\n";
    return 2;
  }
  auto expected = read_expected(o.expected);
  int passed = 0, failed = 0, skipped = 0;
  std::set<std::string> seen;
  auto start = std::chrono::steady_clock::now();
  for (const auto& suite : o.suites) {
    fs::path root = fs::path(o.data) / suite;
    if (!fs::exists(root)) continue;
    std::vector<fs::path> cases;
    for (const auto& e : fs::directory_iterator(root))
      if (fs::exists(e.path() / "model.onnx")) cases.push_back(e.path());
    std::sort(cases.begin(), cases.end());
    for (const auto& dir : cases) {
      const std::string name = suite + "/" + dir.filename().string();
      if (!o.filter.empty() && name.find(o.filter) == std::string::npos) continue;
      seen.insert(name);
      Status s = run_case(dir, o);
      auto ex = expected.find(name);
      if (s.ok() && ex == expected.end()) {
        ++passed;
        if (o.verbose) std::cout << "PASS " << name << "\n";
      } else if (s.ok()) {
        ++failed;
        std::cout << "XPASS " << name << " (listed as expected failure: " << ex->second
                  << "; remove it from the list)\n";
      } else if (ex != expected.end()) {
        ++skipped;
        if (o.verbose) std::cout << "SKIP " << name << " (" << ex->second << "): " << s.to_string() << "\n";
      } else {
        ++failed;
        std::cout << "FAIL " << name << ": " << s.to_string() << "\n";
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format("conformance: {} cases in {:.1f} s\n", seen.size(), secs);
  std::cout << fmt::format("{} passed, {} failed, {} skipped\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
