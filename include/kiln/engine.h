// Engine: an immutable, shareable compiled model. Load/save it, read its I/O, create contexts.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/shape.h"
#include "kiln/status.h"

namespace kiln {

class ExecutionContext;
struct EngineState;  // internal

enum class BackendKind { kAuto, kCpu, kCuda };
std::string_view backend_name(BackendKind b);

struct TensorDesc {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;  // symbolic dims for dynamic axes
};

struct InputRange {
  std::vector<int64_t> min, opt, max;
};
struct OptimizationProfile {
  std::map<std::string, InputRange> inputs;
};

struct EngineInfo {
  uint32_t format_version = 0;
  std::string kiln_version;
  BackendKind backend = BackendKind::kCpu;
  std::string precision;
  std::vector<std::string> fp32_layers;  // nodes kept in f32 in an f16/bf16 engine (kiln build --fp32-layers)
  std::string manifest_json;  // the full manifest of a loaded engine (JSON)
  std::string gpu_json;       // for CUDA engines: GPU, SM and library versions it was built with (JSON)
  size_t num_nodes = 0;
  size_t weight_bytes = 0;
  size_t tactics = 0;  // CUDA: kernel tactic choices stored in the engine (timed at build)
  bool cuda_graphs = true;  // contexts replay CUDA graphs unless built with --no-cuda-graph
  // Outputs that land in an input's buffer (a KV cache updated in place): output name -> input name. An enqueue
  // whose output is unbound, or bound to that input's buffer, writes the output there (kiln build --alias).
  std::map<std::string, std::string> aliases;
  // An engine bundle (kiln build --bundle): its number of member engines; 0 for a single engine.
  size_t bundle_members = 0;
};

class Engine {
 public:
  Engine();
  ~Engine();
  Engine(const Engine&);
  Engine& operator=(const Engine&);
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;

  static Result<Engine> load(const std::string& path);
  static Result<Engine> deserialize(std::string_view bytes);
  // Written to PATH.tmp and renamed, so a failed save never leaves a partial engine.
  Status save(const std::string& path) const;
  Result<std::string> serialize() const;

  const std::vector<TensorDesc>& inputs() const;
  const std::vector<TensorDesc>& outputs() const;
  const std::vector<OptimizationProfile>& profiles() const;
  const EngineInfo& info() const;
  // Op type -> count in the optimized graph.
  std::map<std::string, int> op_histogram() const;

  Result<ExecutionContext> create_context() const;

  // Engine bundles: several engines of one model (per shape range, per precision) in one file, equal weights
  // stored and uploaded once. A bundle's contexts run each call on the member whose profile fits its input
  // shapes best: of those that take every dim, the one whose largest shape is smallest; a tie goes to the
  // earlier member (ExecutionContext::set_profile pins one). Its profiles() are the members' profiles in order
  // (a member with no profile gets one of its static shapes); precision() joins theirs ("f32+f16").
  // bundle(): the members must share backend, input and output names and dtypes, and aliases; each needs a
  // profile or static input shapes. Members of a bundle cannot be bundles.
  static Result<Engine> bundle(const std::vector<Engine>& members);
  // The member engines of a bundle, in routing order; empty for a single engine.
  std::vector<Engine> members() const;

  explicit Engine(std::shared_ptr<const EngineState> state);
  const std::shared_ptr<const EngineState>& state() const { return state_; }

 private:
  std::shared_ptr<const EngineState> state_;
};

}  // namespace kiln
