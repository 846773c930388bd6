// Pieces shared by the kiln subcommands.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::cli {

// Parses "NAME:MIN,OPT,MAX" with dims written 1x3x224x224 (or one "NAME:DIMS" for a fixed shape) into profile 0.
Status parse_shapes(const std::vector<std::string>& specs, OptimizationProfile& profile);
// kiln build --shapes: the k-th --shapes of an input goes to profile k; an input given fewer times keeps its
// last range in the later profiles.
Result<std::vector<OptimizationProfile>> parse_profiles(const std::vector<std::string>& specs);
// kiln run/bench --opt-profile: an error unless the engine has that profile.
Status check_profile_index(const Engine& e, int index);
std::optional<BackendKind> parse_backend(const std::string& s);
// --fp32-layers: node names as given, each "@FILE" replaced by the names in FILE (one per line or
// comma-separated; '#' starts a comment; blank lines ignored), the format kiln compare --precision-bisect writes.
Result<std::vector<std::string>> expand_fp32_layers(const std::vector<std::string>& items);
// MODEL.onnx is built in memory for the CPU/auto backend; FILE.kiln is loaded.
Result<Engine> load_or_build(const std::string& path, const std::string& backend, const std::vector<std::string>& shapes,
                             bool quiet);
// An output file a flag names (--html FILE): an error before any work unless its directory exists and it is
// not a directory itself.
Status check_output_file(const std::string& flag, const std::string& path);
// Writes `text` to `path`; an error naming the flag and the reason when it cannot.
Status write_output_file(const std::string& flag, const std::string& path, const std::string& text);
// Prints "error: <message>" to stderr and returns the exit code for it.
int fail(const Status& s);

// Prints build progress lines to stderr.
std::function<void(std::string_view)> progress_printer(bool quiet);

void add_build_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_doctor_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_lint_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_extract_command(CLI::App& app);

}  // namespace kiln::cli
