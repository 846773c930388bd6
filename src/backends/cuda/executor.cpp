#include "backends/cuda/executor.h"

#include <cstring>
#include <set>

#include "backends/cpu/executor.h"
#include "backends/cuda/cuda_check.h"
#include "ops/op.h"
#include "util/error.h"

namespace kiln::cuda {

namespace {
constexpr size_t kWorkspaceBytes = 32u << 20;
// Below this many elements, integer computations on host values stay on the host (shape math: no launch, no
// copy back).
constexpr int64_t kHostComputeLimit = 1024;
}  // namespace

struct GraphExecutor::Slot {
  std::optional<Tensor> host;
  std::optional<DeviceTensor> dev;
  DType dtype() const { return host ? host->dtype() : dev->dtype; }
  const std::vector<int64_t>& dims() const { return host ? host->dims() : dev->dims; }
};

Result<std::unique_ptr<GraphExecutor>> GraphExecutor::create(std::shared_ptr<const ir::Graph> graph, bool allow_tf32,
                                                             size_t memory_limit_bytes) {
  std::unique_ptr<GraphExecutor> ex(new GraphExecutor());
  ex->graph_ = std::move(graph);
  ex->pool_ = std::make_shared<MemoryPool>(memory_limit_bytes);
  ex->res_.allow_tf32 = allow_tf32;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&ex->res_.stream, cudaStreamNonBlocking));
  ex->owns_stream_ = true;
  KILN_CUBLAS_CHECK(cublasLtCreate(&ex->res_.cublaslt));
  KILN_CUDNN_CHECK(cudnnCreate(&ex->res_.cudnn));
  KILN_CUDNN_CHECK(cudnnSetStream(ex->res_.cudnn, ex->res_.stream));
  KILN_CUDA_CHECK(cudaMalloc(&ex->res_.workspace, kWorkspaceBytes));
  ex->res_.workspace_bytes = kWorkspaceBytes;
  std::map<std::string, size_t> last_use;
  for (size_t i = 0; i < ex->graph_->nodes.size(); ++i)
    for (const auto& in : ex->graph_->nodes[i].inputs)
      if (!in.empty()) last_use[in] = i;
  std::set<std::string> keep(ex->graph_->outputs.begin(), ex->graph_->outputs.end());
  ex->release_after_.resize(ex->graph_->nodes.size());
  for (const auto& [name, i] : last_use)
    if (!keep.count(name) && !ex->graph_->is_constant(name)) ex->release_after_[i].push_back(name);
  return ex;
}

GraphExecutor::~GraphExecutor() {
  if (res_.stream) cudaStreamSynchronize(res_.stream);
  device_weights_.clear();
  if (res_.workspace) cudaFree(res_.workspace);
  if (res_.cudnn) cudnnDestroy(res_.cudnn);
  if (res_.cublaslt) cublasLtDestroy(res_.cublaslt);
  if (owns_stream_ && res_.stream) cudaStreamDestroy(res_.stream);
}

Status GraphExecutor::ensure_host(const std::string& name, Slot& s) {
  if (s.host) return Status();
  Tensor t(s.dev->dtype, s.dev->dims);
  if (t.nbytes()) {
    KILN_CUDA_CHECK(cudaMemcpyAsync(t.raw(), s.dev->data, t.nbytes(), cudaMemcpyDeviceToHost, res_.stream));
    KILN_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
  }
  s.host = std::move(t);
  return Status();
}

Status GraphExecutor::ensure_device(const std::string& name, Slot& s) {
  if (s.dev) return Status();
  const Tensor& h = *s.host;
  DeviceTensor d;
  d.dtype = h.dtype();
  d.dims = h.dims();
  KILN_ASSIGN_OR_RETURN(d.storage, pool_->allocate(std::max<size_t>(h.nbytes(), 1)));
  d.data = d.storage.get();
  if (h.nbytes()) KILN_CUDA_CHECK(cudaMemcpyAsync(d.data, h.raw(), h.nbytes(), cudaMemcpyHostToDevice, res_.stream));
  // The host tensor must outlive the async copy: keep it in the slot (it is).
  s.dev = std::move(d);
  return Status();
}

Result<std::map<std::string, GraphExecutor::Slot>> GraphExecutor::execute(std::map<std::string, Slot> live) {
  const ir::Graph& g = *graph_;
  stats_ = {};
  auto slot_of = [&](const std::string& name) -> Slot* {
    if (auto it = live.find(name); it != live.end()) return &it->second;
    auto c = g.initializers.find(name);
    if (c == g.initializers.end()) return nullptr;
    Slot s;
    s.host = c->second;
    if (auto w = device_weights_.find(name); w != device_weights_.end()) s.dev = w->second;
    return &(live[name] = std::move(s));
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& node = g.nodes[i];
    std::vector<Slot*> in(node.inputs.size(), nullptr);
    bool all_host = true, any_float = false;
    int64_t host_elems = 0;
    std::vector<DType> dtypes;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (node.inputs[k].empty()) {
        dtypes.push_back(DType::kUndefined);
        continue;
      }
      in[k] = slot_of(node.inputs[k]);
      if (!in[k]) return internal_error("{}: input '{}' has no value at run time", node.label(), node.inputs[k]);
      dtypes.push_back(in[k]->dtype());
      all_host &= in[k]->host.has_value();
      any_float |= is_float(in[k]->dtype());
      host_elems += num_elements(in[k]->dims());
    }
    const KernelDef* kernel = kernel_table().find(node.op_type);
    const bool dims_only = node.op_type == "Shape" || node.op_type == "Size";
    const bool gpu_ok = kernel && (!kernel->supports || kernel->supports(node, dtypes));
    // Integer math on small host values is shape plumbing: it stays on the host, where inference reads it.
    const bool shape_math = all_host && !any_float && host_elems <= kHostComputeLimit;
    const bool on_host = dims_only || !gpu_ok || shape_math;

    std::vector<Slot> outs(node.outputs.size());
    if (on_host) {
      std::vector<Tensor> views(in.size());
      std::vector<const Tensor*> ptrs(in.size(), nullptr);
      for (size_t k = 0; k < in.size(); ++k) {
        if (!in[k]) continue;
        if (dims_only) {
          views[k] = Tensor::wrap(in[k]->dtype(), in[k]->dims(), nullptr);  // Shape/Size read dims only
        } else {
          KILN_RETURN_IF_ERROR(ensure_host(node.inputs[k], *in[k]));
          views[k] = *in[k]->host;
        }
        ptrs[k] = &views[k];
      }
      KILN_ASSIGN_OR_RETURN(auto results, cpu::run_node(node, g.opset, ptrs));
      for (size_t k = 0; k < results.size(); ++k) outs[k].host = std::move(results[k]);
      (dims_only || all_host ? stats_.host_nodes : stats_.fallback_nodes)++;
    } else {
      // Shapes on the host: inference sees dims, and values of inputs that live on the host.
      std::vector<ir::ValueInfo> infos(in.size());
      std::vector<const ir::ValueInfo*> info_ptrs(in.size(), nullptr);
      std::vector<const Tensor*> values(in.size(), nullptr);
      std::vector<const DeviceTensor*> dev_in(in.size(), nullptr);
      std::vector<const Tensor*> host_in(in.size(), nullptr);
      for (size_t k = 0; k < in.size(); ++k) {
        if (!in[k]) continue;
        infos[k] = {in[k]->dtype(), Shape::from_dims(in[k]->dims())};
        info_ptrs[k] = &infos[k];
        if ((kernel->host_inputs >> k) & 1u) {
          KILN_RETURN_IF_ERROR(ensure_host(node.inputs[k], *in[k]));
          host_in[k] = &*in[k]->host;
        } else {
          KILN_RETURN_IF_ERROR(ensure_device(node.inputs[k], *in[k]));
          dev_in[k] = &*in[k]->dev;
          if (g.is_constant(node.inputs[k]) && !device_weights_.count(node.inputs[k]))
            device_weights_[node.inputs[k]] = *in[k]->dev;
        }
        if (in[k]->host) values[k] = &*in[k]->host;
      }
      ops::InferContext ictx(node, g.opset, info_ptrs, values);
      KILN_RETURN_IF_ERROR(ops::infer_node(node, g.opset, ictx));
      std::vector<DeviceTensor> dev_out(node.outputs.size());
      for (size_t k = 0; k < dev_out.size(); ++k) {
        if (node.outputs[k].empty()) continue;
        const auto& o = ictx.outputs()[k];
        if (!o.shape.is_static())
          return unsupported("{}: output {} has data-dependent shape {}; this op needs a CPU fallback entry",
                             node.label(), k, o.shape.to_string());
        dev_out[k].dtype = o.dtype;
        dev_out[k].dims = o.shape.static_dims();
        KILN_ASSIGN_OR_RETURN(dev_out[k].storage, pool_->allocate(std::max<size_t>(dev_out[k].nbytes(), 1)));
        dev_out[k].data = dev_out[k].storage.get();
      }
      KernelContext kctx(node, g.opset, dev_in, host_in, &dev_out, res_);
      KILN_RETURN_IF_ERROR(kernel->run(kctx));
      KILN_CUDA_CHECK_LAUNCH();
      for (size_t k = 0; k < dev_out.size(); ++k)
        if (!node.outputs[k].empty()) outs[k].dev = std::move(dev_out[k]);
      stats_.gpu_nodes++;
    }
    for (size_t k = 0; k < node.outputs.size(); ++k)
      if (!node.outputs[k].empty()) live[node.outputs[k]] = std::move(outs[k]);
    for (const auto& name : release_after_[i]) live.erase(name);
  }
  return live;
}

Result<std::map<std::string, Tensor>> GraphExecutor::run(const std::map<std::string, Tensor>& inputs) {
  std::map<std::string, Slot> live;
  for (const auto& name : graph_->inputs) {
    auto it = inputs.find(name);
    if (it == inputs.end()) return invalid_argument("input '{}' was not given", name);
    live[name].host = it->second;
  }
  KILN_ASSIGN_OR_RETURN(auto done, execute(std::move(live)));
  std::map<std::string, Tensor> result;
  for (const auto& name : graph_->outputs) {
    Slot* s = nullptr;
    if (auto it = done.find(name); it != done.end()) s = &it->second;
    Slot init;
    if (!s) {
      auto c = graph_->initializers.find(name);
      if (c == graph_->initializers.end()) return internal_error("graph output '{}' was not produced", name);
      init.host = c->second;
      s = &init;
    }
    KILN_RETURN_IF_ERROR(ensure_host(name, *s));
    result[name] = *s->host;
  }
  KILN_CUDA_CHECK(cudaStreamSynchronize(res_.stream));
  return result;
}

Status GraphExecutor::run_device(const std::map<std::string, DeviceTensor>& inputs,
                                 std::map<std::string, DeviceTensor>& outputs, cudaStream_t stream) {
  // Work runs on our stream, ordered after the caller's stream and back.
  cudaEvent_t ready;
  KILN_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  KILN_CUDA_CHECK(cudaEventRecord(ready, stream));
  KILN_CUDA_CHECK(cudaStreamWaitEvent(res_.stream, ready));
  std::map<std::string, Slot> live;
  for (const auto& name : graph_->inputs) {
    auto it = inputs.find(name);
    if (it == inputs.end()) return invalid_argument("input '{}' has no device buffer", name);
    live[name].dev = it->second;
  }
  KILN_ASSIGN_OR_RETURN(auto done, execute(std::move(live)));
  // Check every output fits before writing any, so a too-small buffer never leaves partial results.
  for (const auto& name : graph_->outputs) {
    auto it = done.find(name);
    if (it == done.end()) return internal_error("graph output '{}' was not produced", name);
    const auto& dims = it->second.dims();
    const size_t bytes = static_cast<size_t>(num_elements(dims)) * dtype_size(it->second.dtype());
    if (bytes > outputs.at(name).nbytes())
      return invalid_argument("output '{}' is {} bytes ({}) but its buffer holds {} bytes", name, bytes,
                              dims_to_string(dims), outputs.at(name).nbytes());
  }
  for (const auto& name : graph_->outputs) {
    Slot& s = done.at(name);
    const size_t bytes = static_cast<size_t>(num_elements(s.dims())) * dtype_size(s.dtype());
    if (!bytes) continue;
    void* dst = outputs.at(name).data;
    if (s.dev) KILN_CUDA_CHECK(cudaMemcpyAsync(dst, s.dev->data, bytes, cudaMemcpyDeviceToDevice, res_.stream));
    else KILN_CUDA_CHECK(cudaMemcpyAsync(dst, s.host->raw(), bytes, cudaMemcpyHostToDevice, res_.stream));
  }
  KILN_CUDA_CHECK(cudaEventRecord(ready, res_.stream));
  KILN_CUDA_CHECK(cudaStreamWaitEvent(stream, ready));
  // Host-side slots referenced by pending copies must live until those copies finish.
  KILN_CUDA_CHECK(cudaEventSynchronize(ready));
  cudaEventDestroy(ready);
  return Status();
}

}  // namespace kiln::cuda
