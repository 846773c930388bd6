// The Python-side ExecutionContext: the C++ context, the engine it needs alive, and what the torch path caches.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bindings.h"

namespace kiln::python {

class ContextHandle {
 public:
  static std::shared_ptr<ContextHandle> create(const Engine& engine);

  ContextHandle(Engine engine, ExecutionContext ctx, int device)
      : engine_(std::move(engine)), ctx_(std::move(ctx)), device_(device) {}

  Engine& engine() { return engine_; }
  ExecutionContext& ctx() { return ctx_; }
  // CUDA device the context runs on (the current device when it was created); -1 for CPU engines.
  int device() const { return device_; }
  bool is_cuda() const { return device_ >= 0; }

  // A context is single-threaded state; two Python threads sharing one would race inside the runtime once the
  // GIL is released, so the second gets an error instead.
  std::unique_lock<std::mutex> claim();

  // The torch path binds inputs and enqueues in two calls with Python in between; the thread that bound the
  // inputs is recorded so another thread's binding in that gap is an error, not a run on its inputs.
  std::thread::id bound_by;

  // Output dims per input-dims signature, so a repeated shape skips shape inference (it copies the graph).
  const std::vector<std::vector<int64_t>>& output_dims_for(const std::vector<std::vector<int64_t>>& input_dims);

 private:
  Engine engine_;
  ExecutionContext ctx_;
  int device_ = -1;
  std::mutex busy_;
  std::map<std::vector<std::vector<int64_t>>, std::vector<std::vector<int64_t>>> output_dims_;
};

}  // namespace kiln::python
