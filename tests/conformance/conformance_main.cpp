// Runs ONNX backend test cases (model.onnx + test_data_set_*/input_*.pb, output_*.pb) through kiln's importer,
// builder and engine, and compares with the stored outputs.
//   kiln_conformance --data /usr/include/onnx/backend/test/data --expected expected_failures.txt
//   kiln_conformance --backend cuda --data DIR --expected expected_failures.txt --expected expected_failures_cuda.txt
// Tests listed in an expected-failures file count as skipped when they fail, and as failures when they pass
// (so the list stays exact). Ends with "N passed, N failed, N skipped".
// --backend cuda builds CUDA engines. A case counts as run on the GPU only when every node of the optimized graph
// has a CUDA kernel for its input dtypes; otherwise it is skipped ("no CUDA kernel for OP") and the skip reasons
// are summed up per op at the end. Each data set runs twice: host arrays through infer(), and device buffers
// through enqueue() (graph inputs then live on the device, so even small integer nodes reach their kernels).
// Without a usable GPU it says so and skips everything (exit 0). --coverage only counts which cases would run on
// the GPU (no GPU needed).
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "backends/device_probe.h"
#include "kiln/kiln.h"
#include "onnx/tensor_proto.h"
#include "engine/engine_state.h"

#ifdef KILN_WITH_CUDA
#include <cuda_runtime.h>

#include "backends/cuda/kernel_coverage.h"
#endif

namespace fs = std::filesystem;
using namespace kiln;

namespace {

struct Options {
  std::string data, filter, json_out;
  std::vector<std::string> expected;
  BackendKind backend = BackendKind::kCpu;
  bool coverage_only = false;  // --coverage: report which cases would run on the GPU, without running any
  std::vector<std::string> suites = {"node", "simple", "pytorch-converted", "pytorch-operator"};
  bool verbose = false;
  double rtol = 1e-3, atol = 1e-5;
};

void read_expected(const std::string& path, std::map<std::string, std::string>& out) {
  if (path.empty()) return;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.find_first_of(" \t");
    std::string name = line.substr(0, sp);
    std::string reason = sp == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", sp));
    out[name] = reason;
  }
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

#ifdef KILN_WITH_CUDA
// Runs one data set with the inputs in device buffers (enqueue) and returns the outputs copied back. Output
// buffers are sized from the host run's results.
Result<std::map<std::string, Tensor>> run_on_device(const Engine& engine,
                                                    const std::map<std::string, Tensor>& inputs,
                                                    const std::map<std::string, Tensor>& host_outputs) {
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, engine.create_context());
  std::vector<void*> buffers;
  auto release = [&] {
    for (void* p : buffers) cudaFree(p);
  };
  auto upload = [&](const std::string& name, const void* src, size_t bytes) -> Status {
    void* p = nullptr;
    if (cudaMalloc(&p, std::max<size_t>(bytes, 16)) != cudaSuccess)
      return Status(StatusCode::kOutOfRange,
                    fmt::format("cudaMalloc of {} bytes for '{}' failed", bytes, name));
    buffers.push_back(p);
    if (src && bytes && cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice) != cudaSuccess)
      return Status(StatusCode::kInternal, fmt::format("upload of '{}' failed", name));
    return ctx.set_tensor_address(name, p, std::max<size_t>(bytes, 16));
  };
  Status st;
  for (const auto& [name, t] : inputs) {
    st = ctx.set_input_shape(name, t.dims());
    if (st.ok()) st = upload(name, t.raw(), t.nbytes());
    if (!st.ok()) break;
  }
  for (const auto& d : engine.outputs()) {
    if (!st.ok()) break;
    auto h = host_outputs.find(d.name);
    st = upload(d.name, nullptr, h == host_outputs.end() ? 0 : h->second.nbytes());
  }
  if (st.ok()) st = ctx.enqueue(nullptr);
  if (st.ok() && cudaDeviceSynchronize() != cudaSuccess)
    st = Status(StatusCode::kInternal,
                fmt::format("CUDA error after enqueue: {}", cudaGetErrorString(cudaGetLastError())));
  std::map<std::string, Tensor> out;
  for (const auto& d : engine.outputs()) {
    if (!st.ok()) break;
    auto h = host_outputs.find(d.name);
    std::vector<int64_t> dims = h == host_outputs.end() ? std::vector<int64_t>{} : h->second.dims();
    if (auto od = ctx.output_shape(d.name); od.ok()) dims = *od;
    Tensor t(d.dtype, dims);
    const size_t i = static_cast<size_t>(&d - engine.outputs().data());
    if (t.nbytes() &&
        cudaMemcpy(t.raw(), buffers[inputs.size() + i], t.nbytes(), cudaMemcpyDeviceToHost) != cudaSuccess)
      st = Status(StatusCode::kInternal, fmt::format("download of '{}' failed", d.name));
    out[d.name] = std::move(t);
  }
  release();
  if (!st.ok()) return st.with_context("device buffers");
  return out;
}
#endif

// Why a case cannot count as run on the GPU (its first node without a CUDA kernel); empty when all have one.
struct Coverage {
  std::string op, reason;
};

Coverage cuda_coverage(const Engine& engine) {
#ifdef KILN_WITH_CUDA
  auto gaps = cuda::uncovered_nodes(*engine.state()->graph);
  if (!gaps.empty()) return {gaps[0].op, gaps[0].reason};
  return {};
#else
  (void)engine;
  return {"(all)", "kiln was built without CUDA"};
#endif
}

Status compare_outputs(const Engine& engine, const fs::path& set,
                       const std::map<std::string, Tensor>& outputs, const Options& o, const char* path) {
  for (size_t i = 0; i < engine.outputs().size(); ++i) {
    fs::path p = set / fmt::format("output_{}.pb", i);
    if (!fs::exists(p)) continue;
    KILN_ASSIGN_OR_RETURN(Tensor want, onnx::load_tensor_pb(p.string()));
    const std::string& name = engine.outputs()[i].name;
    KILN_RETURN_IF_ERROR(
        compare(name, outputs.at(name), want, o.rtol, o.atol)
            .with_context(set.filename().string() + (path[0] ? std::string(", ") + path : "")));
  }
  return Status();
}

// --backend cuda: when a node has no CUDA kernel, `skip` names it and the case returns OK without running.
Status run_case(const fs::path& dir, const Options& o, Coverage* skip) {
  BuildConfig cfg;
  // --coverage builds CPU engines: the optimized graph is the same, and no GPU is needed to read it.
  cfg.backend = o.coverage_only ? BackendKind::kCpu : o.backend;
  KILN_ASSIGN_OR_RETURN(Engine engine, Builder::build_from_file((dir / "model.onnx").string(), cfg));
  if (o.backend == BackendKind::kCuda) {
    *skip = cuda_coverage(engine);
    if (!skip->op.empty() || o.coverage_only) return Status();
  }
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
    KILN_RETURN_IF_ERROR(
        compare_outputs(engine, set, outputs, o, o.backend == BackendKind::kCuda ? "host arrays" : ""));
#ifdef KILN_WITH_CUDA
    // A data set that leaves optional inputs out has nothing to bind for them: the host run covers it.
    if (o.backend == BackendKind::kCuda && inputs.size() == engine.inputs().size()) {
      KILN_ASSIGN_OR_RETURN(auto dev_outputs, run_on_device(engine, inputs, outputs));
      KILN_RETURN_IF_ERROR(compare_outputs(engine, set, dev_outputs, o, "device buffers"));
    }
#endif
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
    else if (a == "--expected") o.expected.push_back(next());
    else if (a == "--backend") {
      const std::string b = next();
      if (b != "cpu" && b != "cuda") {
        std::cerr << "error: --backend must be cpu or cuda, got '" << b << "'\n";
        return 2;
      }
      o.backend = b == "cuda" ? BackendKind::kCuda : BackendKind::kCpu;
    } else if (a == "--filter") o.filter = next();
    else if (a == "--suite") o.suites = {next()};
    else if (a == "--verbose" || a == "-v") o.verbose = true;
    else if (a == "--coverage") o.coverage_only = true, o.backend = BackendKind::kCuda;
    else if (a == "--help" || a == "-h") {
      std::cout << "usage: kiln_conformance --data DIR [--backend cpu|cuda] [--expected FILE]... [--suite node|simple|"
                   "pytorch-converted|pytorch-operator] [--filter SUBSTR] [-v] [--coverage]\n"
                   "  --backend cuda: CUDA engines; cases with a node that has no CUDA kernel are skipped\n"
                   "  --coverage: run nothing; count the cases whose every node has a CUDA kernel (no GPU needed)\n"
                   "  --expected may be given more than once (e.g. the CPU list and expected_failures_cuda.txt)\n";
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
  std::map<std::string, std::string> expected;
  for (const auto& path : o.expected) {
    if (!fs::exists(path)) {
      std::cerr << "error: expected-failures file " << path << " does not exist\n";
      return 2;
    }
    read_expected(path, expected);
  }
  // Without a GPU every CUDA case is skipped; the run still succeeds so CPU-only machines can call it.
  std::string no_gpu;
  if (o.backend == BackendKind::kCuda && !o.coverage_only && !cuda_backend_available()) {
    no_gpu = cuda_unavailable_reason();
    std::cout << "--backend cuda: " << no_gpu << "; every case is skipped\n";
  }
  std::map<std::string, int> skip_reasons;  // reason -> cases
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
      if (!no_gpu.empty()) {
        ++skipped;
        ++skip_reasons["no usable GPU"];
        continue;
      }
      Coverage gap;
      Status s = run_case(dir, o, &gap);
      if (s.ok() && !gap.op.empty()) {
        ++skipped;
        ++skip_reasons[gap.reason];
        if (o.verbose) std::cout << "SKIP " << name << " (" << gap.reason << ")\n";
        continue;
      }
      auto ex = expected.find(name);
      if (s.ok() && (ex == expected.end() || o.coverage_only)) {
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
  if (!skip_reasons.empty()) {
    std::vector<std::pair<int, std::string>> by_count;
    for (const auto& [reason, n] : skip_reasons) by_count.push_back({-n, reason});
    std::sort(by_count.begin(), by_count.end());
    std::cout << "skipped on the GPU, by reason:\n";
    for (const auto& [n, reason] : by_count) std::cout << fmt::format("  {:5}  {}\n", -n, reason);
  }
  if (o.coverage_only)
    std::cout
        << "--coverage: nothing ran; 'passed' counts the cases that would run on the GPU, 'failed' the cases "
           "that did not build\n";
  std::cout << fmt::format("{} passed, {} failed, {} skipped\n", passed, failed, skipped);
  if (seen.empty()) {
    // Nothing ran: a data folder without the suites (a Python onnx install ships no test data) or a filter that
    // matches no case must not read as a clean run.
    std::cerr << "error: no test case found under " << o.data << " (looked in its ";
    for (size_t i = 0; i < o.suites.size(); ++i) std::cerr << (i ? ", " : "") << o.suites[i] << "/";
    std::cerr << (o.filter.empty() ? std::string(")") : ") matching --filter '" + o.filter + "'")
              << "; --data names the folder that holds node/, simple/… (Debian: libonnx-testdata, "
                 "/usr/include/onnx/backend/test/data)\n";
    return 2;
  }
  return failed == 0 ? 0 : 1;
}
