// kiln_fuzz: structured mutation fuzzing of the ONNX importer, the builder, the engine loader and the CPU
// runtime.
//   kiln_fuzz [--data DIR] [MODEL.onnx ...] [--mutants N] [--engine-mutants N] [--seed S] [--filter TEXT]
//             [--timeout-s T] [--fork] [-v]
// --data takes a folder of ONNX node cases (model.onnx + test_data_set_0/input_*.pb each, e.g.
// /usr/include/onnx/backend/test/data/node). Each seed model gets N mutants of 1-3 mutations each, and its
// engine file gets M mutants. Every outcome must be a Status with a message: an exception that escapes kiln,
// an empty error message, a crash or a case running past --timeout-s fails the run and names the case and the
// mutations, so `--filter CASE --seed S` repeats it. --fork runs each seed model in its own process, so a
// crash is reported and the run goes on.
#include <fmt/format.h>
#include <kiln_onnx/onnx.pb.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <random>

#include "fuzz/fuzz_runner.h"
#include "fuzz/model_mutator.h"
#include "kiln/kiln.h"
#include "onnx/tensor_proto.h"
#include "util/file.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

// What runs now, for the signal handlers (async-signal-safe: a fixed buffer written with write()).
char g_current[4096];

void on_fatal(int sig) {
  const char* what = sig == SIGALRM ? "\nkiln_fuzz: TIMEOUT in " : "\nkiln_fuzz: CRASH in ";
  (void)!write(2, what, std::strlen(what));
  (void)!write(2, g_current, std::strlen(g_current));
  (void)!write(2, "\n", 1);
  std::signal(sig, SIG_DFL);
  std::raise(sig == SIGALRM ? SIGABRT : sig);
}

}  // namespace

// Sanitizer runtimes (scripts/sanitize.sh builds with them) define these; weak, so a plain build links without.
extern "C" void __sanitizer_set_death_callback(void (*callback)()) __attribute__((weak));
extern "C" int __lsan_do_recoverable_leak_check() __attribute__((weak));

namespace {

// A sanitizer report ends the process without a signal: name the case it was in, as on_fatal does.
void on_sanitizer_death() {
  const char* what = "\nkiln_fuzz: SANITIZER REPORT in ";
  (void)!write(2, what, std::strlen(what));
  (void)!write(2, g_current, std::strlen(g_current));
  (void)!write(2, "\n", 1);
}

void set_current(const std::string& s) {
  std::snprintf(g_current, sizeof(g_current), "%s", s.c_str());
}

struct Seed {
  std::string name;
  std::string bytes;
  std::map<std::string, Tensor> inputs;
};

Result<Seed> load_seed(const fs::path& model_path) {
  Seed s;
  s.name = model_path.parent_path().filename().string() + "/" + model_path.filename().string();
  KILN_ASSIGN_OR_RETURN(s.bytes, read_file(model_path.string()));
  kiln_onnx::ModelProto m;
  if (!m.ParseFromString(s.bytes)) return Status(StatusCode::kInvalidArgument, "not an ONNX model");
  std::vector<std::string> names;
  for (const auto& in : m.graph().input()) {
    bool is_init = false;
    for (const auto& t : m.graph().initializer()) is_init |= t.name() == in.name();
    if (!is_init) names.push_back(in.name());
  }
  const fs::path set = model_path.parent_path() / "test_data_set_0";
  for (size_t i = 0; i < names.size(); ++i) {
    const fs::path p = set / fmt::format("input_{}.pb", i);
    if (!fs::exists(p)) break;
    auto t = onnx::load_tensor_pb(p.string());
    if (t.ok()) s.inputs[names[i]] = std::move(*t);
  }
  return s;
}

struct Tally {
  std::map<std::string, int> by_stage;
  int failures = 0;
};

bool check(const fuzz::Outcome& o, const std::string& label, Tally& tally) {
  ++tally.by_stage[std::string(fuzz::stage_name(o.stage))];
  const bool bad = o.stage == fuzz::Stage::kThrew || (o.stage != fuzz::Stage::kRan && o.message.empty());
  if (bad) {
    ++tally.failures;
    std::cerr << fmt::format("FAIL {}: {} '{}'\n", label, fuzz::stage_name(o.stage), o.message);
  }
  return !bad;
}

struct Options {
  std::vector<fs::path> models;
  int mutants = 20, engine_mutants = 5, timeout_s = 20;
  uint64_t seed = 1;
  std::string filter;
  bool verbose = false, fork_each = false;
  fs::path empty_dir;  // base folder for external data: nothing is there
};

fuzz::Outcome timed(const Options& o, const std::string& label, const std::function<fuzz::Outcome()>& run) {
  set_current(label);
  if (o.verbose) std::cerr << label << "\n";
  alarm(o.timeout_s);
  fuzz::Outcome out = run();
  alarm(0);
  return out;
}

// N model mutants of one seed, then M mutants of its engine file. Each seed has its own random stream, so
// --filter reproduces a case with the same --seed.
void fuzz_seed(const Seed& s, const Options& o, Tally& tally) {
  std::mt19937_64 rng(o.seed ^ std::hash<std::string>{}(s.name));
  kiln_onnx::ModelProto original;
  original.ParseFromString(s.bytes);
  for (int k = 0; k < o.mutants; ++k) {
    kiln_onnx::ModelProto m = original;
    std::string what;
    const int count = 1 + static_cast<int>(rng() % 3);
    for (int j = 0; j < count; ++j) what += (j ? "; " : "") + fuzz::mutate_model(m, rng);
    const std::string label = fmt::format("{} mutant {} (seed {}): {}", s.name, k, o.seed, what);
    const std::string bytes = m.SerializeAsString();
    check(timed(o, label, [&] { return fuzz::run_model(bytes, o.empty_dir.string(), s.inputs); }), label, tally);
  }
  if (o.engine_mutants == 0) return;
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto engine = Builder::build_from_bytes(s.bytes, cfg, o.empty_dir.string());
  if (!engine.ok()) return;
  auto bytes = engine->serialize();
  if (!bytes.ok()) return;
  for (int k = 0; k < o.engine_mutants; ++k) {
    std::string b = *bytes;
    const std::string what = fuzz::mutate_engine_file(b, rng);
    const std::string label = fmt::format("{} engine mutant {} (seed {}): {}", s.name, k, o.seed, what);
    check(timed(o, label, [&] { return fuzz::run_engine_file(b, s.inputs); }), label, tally);
  }
}

// --fork: each seed in a child process, so one crash is reported and the run goes on to the next seed.
void fuzz_seed_in_child(const Seed& s, const Options& o, Tally& tally) {
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = fork();
  if (pid == 0) {
    Tally child;
    fuzz_seed(s, o, child);
    // _Exit skips LeakSanitizer's exit-time check, so a leak in this seed's cases is looked for here.
    if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check()) {
      std::cerr << "kiln_fuzz: LEAK while fuzzing " << s.name << " (seed " << o.seed << ")\n";
      ++child.failures;
    }
    std::_Exit(std::min(child.failures, 100));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ++tally.by_stage["seeds"];
  if (WIFSIGNALED(status)) {
    ++tally.failures;
    ++tally.by_stage["crashed seeds"];
  } else if (WEXITSTATUS(status) != 0) {
    tally.failures += WEXITSTATUS(status);
  }
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "kiln_fuzz: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--data") {
      for (const auto& e : fs::directory_iterator(next()))
        if (fs::exists(e.path() / "model.onnx")) o.models.push_back(e.path() / "model.onnx");
    } else if (a == "--mutants") {
      o.mutants = std::stoi(next());
    } else if (a == "--engine-mutants") {
      o.engine_mutants = std::stoi(next());
    } else if (a == "--seed") {
      o.seed = std::stoull(next());
    } else if (a == "--filter") {
      o.filter = next();
    } else if (a == "--timeout-s") {
      o.timeout_s = std::stoi(next());
    } else if (a == "-v" || a == "--verbose") {
      o.verbose = true;
    } else if (a == "--fork") {
      o.fork_each = true;
    } else if (a == "-h" || a == "--help") {
      std::cout << "usage: kiln_fuzz [--data DIR] [MODEL.onnx ...] [--mutants N] [--engine-mutants N] [--seed S]"
                   " [--filter TEXT] [--timeout-s T] [--fork] [-v]\n";
      std::exit(0);
    } else if (!a.empty() && a[0] == '-') {
      std::cerr << "kiln_fuzz: unknown option " << a << "\n";
      std::exit(2);
    } else {
      o.models.push_back(a);
    }
  }
  std::sort(o.models.begin(), o.models.end());
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  for (int sig : {SIGSEGV, SIGABRT, SIGFPE, SIGBUS, SIGILL, SIGALRM}) std::signal(sig, on_fatal);
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(on_sanitizer_death);
  o.empty_dir = fs::temp_directory_path() / fmt::format("kiln_fuzz_{}", getpid());
  fs::create_directories(o.empty_dir);
  Tally tally;
  int seeds = 0;
  for (const fs::path& path : o.models) {
    if (!o.filter.empty() && path.string().find(o.filter) == std::string::npos) continue;
    auto s = load_seed(path);
    if (!s.ok()) {
      std::cerr << fmt::format("kiln_fuzz: skipping {}: {}\n", path.string(), s.status().message());
      continue;
    }
    ++seeds;
    if (o.fork_each) fuzz_seed_in_child(*s, o, tally);
    else fuzz_seed(*s, o, tally);
  }
  fs::remove_all(o.empty_dir);
  std::string stages;
  for (const auto& [k, v] : tally.by_stage) stages += fmt::format(" {} {}", k, v);
  std::cout << fmt::format("kiln_fuzz: {} seed models, outcomes:{}; {} failures\n", seeds, stages, tally.failures);
  return tally.failures == 0 ? 0 : 1;
}
