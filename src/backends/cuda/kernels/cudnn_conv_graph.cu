// cuDNN backend descriptors for Y = act(Conv(X, W) + B + Z); see cudnn_conv_graph.h.
// The graph: conv(X, W) -> t0 [+ B -> t1] [+ Z -> t2] [act -> Y], intermediates virtual f32, the last node
// writing Y. cuDNN's heuristics (mode A) rank the engine configurations; FusedConv times the first few.
#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "backends/cuda/kernels/cudnn_conv_graph.h"

namespace kiln::cuda {

namespace {

enum Uid : int64_t { kX = 1, kW = 2, kB = 3, kZ = 4, kY = 5, kVirtual = 100 };

// Any failure while describing the graph means "cuDNN cannot do this one": the caller uses another path.
#define KILN_GRAPH_TRY(expr)                                    \
  do {                                                          \
    const cudnnStatus_t s_ = (expr);                            \
    if (s_ != CUDNN_STATUS_SUCCESS) return fail(#expr, s_);     \
  } while (0)

std::vector<int64_t> strides_for(const std::vector<int64_t>& dims, bool channels_last) {
  const size_t nd = dims.size();
  std::vector<int64_t> st(nd, 1);
  if (!channels_last) {
    for (size_t i = nd - 1; i-- > 0;) st[i] = st[i + 1] * dims[i + 1];
    return st;
  }
  // Memory order N, spatial..., C.
  st[1] = 1;
  int64_t run = dims[1];
  for (size_t i = nd - 1; i >= 2; --i) {
    st[i] = run;
    run *= dims[i];
  }
  st[0] = run;
  return st;
}

class Builder {
 public:
  Builder(std::vector<cudnnBackendDescriptor_t>& owned, std::string* reason) : owned_(owned), reason_(reason) {}

  bool fail(const char* what, cudnnStatus_t s) {
    if (reason_) *reason_ = fmt::format("{}: {}", what, cudnnGetErrorString(s));
    return false;
  }

  bool make(cudnnBackendDescriptorType_t type, cudnnBackendDescriptor_t* d) {
    KILN_GRAPH_TRY(cudnnBackendCreateDescriptor(type, d));
    owned_.push_back(*d);
    return true;
  }

  bool tensor(int64_t uid, cudnnDataType_t t, const std::vector<int64_t>& dims, const std::vector<int64_t>& st,
              bool is_virtual, int64_t alignment, cudnnBackendDescriptor_t* d) {
    if (!make(CUDNN_BACKEND_TENSOR_DESCRIPTOR, d)) return false;
    const auto nd = static_cast<int64_t>(dims.size());
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(*d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(*d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, nd, dims.data()));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(*d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, nd, st.data()));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(*d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    KILN_GRAPH_TRY(
        cudnnBackendSetAttribute(*d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(*d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual));
    KILN_GRAPH_TRY(cudnnBackendFinalize(*d));
    return true;
  }

  bool pointwise(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                 cudnnBackendDescriptor_t y, cudnnBackendDescriptor_t* op) {
    cudnnBackendDescriptor_t pw;
    if (!make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR, &pw)) return false;
    const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec));
    if (mode == CUDNN_POINTWISE_SWISH_FWD) {  // SiLU: x * sigmoid(beta x) with beta 1
      const double beta = 1.0;
      KILN_GRAPH_TRY(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_DOUBLE, 1, &beta));
    }
    KILN_GRAPH_TRY(cudnnBackendFinalize(pw));
    if (!make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR, op)) return false;
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR,
                                            CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw));
    KILN_GRAPH_TRY(
        cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
    if (b)
      KILN_GRAPH_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                              CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b));
    KILN_GRAPH_TRY(
        cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
    KILN_GRAPH_TRY(cudnnBackendFinalize(*op));
    return true;
  }

  bool convolution(const ConvGraphSpec& s, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t w,
                   cudnnBackendDescriptor_t y, cudnnBackendDescriptor_t* op) {
    cudnnBackendDescriptor_t conv;
    if (!make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv)) return false;
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    const auto nsp = static_cast<int64_t>(s.stride.size());
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp));
    KILN_GRAPH_TRY(
        cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &nsp));
    KILN_GRAPH_TRY(
        cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, nsp, s.dil.data()));
    KILN_GRAPH_TRY(
        cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, nsp, s.stride.data()));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, nsp,
                                            s.pad_begin.data()));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, nsp,
                                            s.pad_end.data()));
    KILN_GRAPH_TRY(cudnnBackendFinalize(conv));
    if (!make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR, op)) return false;
    const float alpha = 1.f, beta = 0.f;
    KILN_GRAPH_TRY(
        cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha));
    KILN_GRAPH_TRY(
        cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                                            CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                            CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                                            CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w));
    KILN_GRAPH_TRY(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                                            CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
    KILN_GRAPH_TRY(cudnnBackendFinalize(*op));
    return true;
  }

 private:
  std::vector<cudnnBackendDescriptor_t>& owned_;
  std::string* reason_;
};

#undef KILN_GRAPH_TRY

}  // namespace

std::shared_ptr<ConvGraph> ConvGraph::create(cudnnHandle_t handle, const ConvGraphSpec& s, std::string* reason) {
  std::shared_ptr<ConvGraph> g(new ConvGraph());
  g->spec_ = s;
  Builder b(g->owned_, reason);
  const size_t nd = s.x.size();
  if (nd < 3 || s.w.size() != nd || s.y.size() != nd || s.stride.size() != nd - 2) {
    if (reason) *reason = "rank";
    return nullptr;
  }
  cudnnBackendDescriptor_t x, w, y, bias = nullptr, z = nullptr;
  if (!b.tensor(kX, s.dtype, s.x, strides_for(s.x, s.nhwc), false, s.alignment, &x) ||
      !b.tensor(kW, s.dtype, s.w, strides_for(s.w, s.nhwc), false, s.alignment, &w) ||
      !b.tensor(kY, s.dtype, s.y, strides_for(s.y, s.nhwc), false, s.alignment, &y))
    return nullptr;
  const std::vector<int64_t> y_strides = strides_for(s.y, s.nhwc);
  if (s.bias) {
    std::vector<int64_t> bd(nd, 1);
    bd[1] = s.y[1];
    if (!b.tensor(kB, s.dtype, bd, strides_for(bd, false), false, s.alignment, &bias)) return nullptr;
  }
  if (s.residual && !b.tensor(kZ, s.dtype, s.y, y_strides, false, s.alignment, &z)) return nullptr;

  // Steps after the convolution, in order; the last one writes Y.
  struct Step {
    cudnnPointwiseMode_t mode;
    cudnnBackendDescriptor_t operand;
  };
  std::vector<Step> steps;
  if (bias) steps.push_back({CUDNN_POINTWISE_ADD, bias});
  if (z) steps.push_back({CUDNN_POINTWISE_ADD, z});
  switch (s.act) {
    case ops::ConvActivation::kRelu:
      steps.push_back({CUDNN_POINTWISE_RELU_FWD, nullptr});
      break;
    case ops::ConvActivation::kSigmoid:
      steps.push_back({CUDNN_POINTWISE_SIGMOID_FWD, nullptr});
      break;
    case ops::ConvActivation::kSilu:
      steps.push_back({CUDNN_POINTWISE_SWISH_FWD, nullptr});
      break;
    case ops::ConvActivation::kNone:
      break;
    case ops::ConvActivation::kClip:
    case ops::ConvActivation::kHardSwish:
      return nullptr;  // not offered: the conv + epilogue and depthwise paths take them
  }
  std::vector<cudnnBackendDescriptor_t> ops_list;
  cudnnBackendDescriptor_t cur = y;
  if (!steps.empty() && !b.tensor(kVirtual, CUDNN_DATA_FLOAT, s.y, y_strides, true, s.alignment, &cur))
    return nullptr;
  cudnnBackendDescriptor_t op;
  if (!b.convolution(s, x, w, cur, &op)) return nullptr;
  ops_list.push_back(op);
  for (size_t i = 0; i < steps.size(); ++i) {
    cudnnBackendDescriptor_t next = y;
    if (i + 1 < steps.size() &&
        !b.tensor(kVirtual + 1 + static_cast<int64_t>(i), CUDNN_DATA_FLOAT, s.y, y_strides, true, s.alignment,
                  &next))
      return nullptr;
    if (!b.pointwise(steps[i].mode, cur, steps[i].operand, next, &op)) return nullptr;
    ops_list.push_back(op);
    cur = next;
  }

  auto try_ = [&](cudnnStatus_t st, const char* what) {
    if (st == CUDNN_STATUS_SUCCESS) return true;
    if (reason) *reason = fmt::format("{}: {}", what, cudnnGetErrorString(st));
    return false;
  };
  cudnnBackendDescriptor_t graph, heur;
  if (!try_(cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &graph), "operation graph"))
    return nullptr;
  g->owned_.push_back(graph);
  if (!try_(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                     static_cast<int64_t>(ops_list.size()), ops_list.data()),
            "graph ops") ||
      !try_(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle),
            "graph handle") ||
      !try_(cudnnBackendFinalize(graph), "finalize operation graph"))
    return nullptr;
  if (!try_(cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur), "heuristics")) return nullptr;
  g->owned_.push_back(heur);
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  if (!try_(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                     1, &graph),
            "heuristics graph") ||
      !try_(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode),
            "heuristics mode") ||
      !try_(cudnnBackendFinalize(heur), "finalize heuristics"))
    return nullptr;
  int64_t count = 0;
  if (!try_(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                     nullptr),
            "heuristics count"))
    return nullptr;
  if (count <= 0) {
    if (reason) *reason = "no engine configuration";
    return nullptr;
  }
  g->configs_.assign(static_cast<size_t>(count), nullptr);
  for (auto& c : g->configs_)
    if (!try_(cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &c), "engine config")) {
      c = nullptr;
      return nullptr;
    }
  int64_t got = 0;
  if (!try_(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                     g->configs_.data()),
            "heuristics results"))
    return nullptr;
  for (int64_t i = got; i < count; ++i) cudnnBackendDestroyDescriptor(g->configs_[static_cast<size_t>(i)]);
  g->configs_.resize(static_cast<size_t>(std::max<int64_t>(got, 0)));
  return g;
}

ConvGraph::~ConvGraph() {
  for (auto d : configs_)
    if (d) cudnnBackendDestroyDescriptor(d);
  // Users before the things they use: operations before tensors, the graph and heuristics last.
  for (auto it = owned_.rbegin(); it != owned_.rend(); ++it) cudnnBackendDestroyDescriptor(*it);
}

std::unique_ptr<ConvGraphPlan> ConvGraph::plan(cudnnHandle_t handle, int index, size_t max_workspace) const {
  if (index < 0 || index >= config_count()) return nullptr;
  std::unique_ptr<ConvGraphPlan> p(new ConvGraphPlan());
  p->graph_ = shared_from_this();
  p->index_ = index;
  p->bias_ = spec_.bias;
  p->residual_ = spec_.residual;
  cudnnBackendDescriptor_t cfg = configs_[static_cast<size_t>(index)];
  if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &p->plan_) != CUDNN_STATUS_SUCCESS) {
    p->plan_ = nullptr;
    return nullptr;
  }
  if (cudnnBackendSetAttribute(p->plan_, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle) !=
          CUDNN_STATUS_SUCCESS ||
      cudnnBackendSetAttribute(p->plan_, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                               &cfg) != CUDNN_STATUS_SUCCESS ||
      cudnnBackendFinalize(p->plan_) != CUDNN_STATUS_SUCCESS)
    return nullptr;
  int64_t ws = 0, n = 0;
  if (cudnnBackendGetAttribute(p->plan_, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws) !=
          CUDNN_STATUS_SUCCESS ||
      ws < 0 || static_cast<size_t>(ws) > max_workspace)
    return nullptr;
  p->workspace_ = static_cast<size_t>(ws);
  // The engine's global index names the tactic; failing to read it only loses the name.
  cudnnBackendDescriptor_t engine = nullptr;
  if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) == CUDNN_STATUS_SUCCESS) {
    if (cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine) ==
        CUDNN_STATUS_SUCCESS)
      cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &p->engine_);
    cudnnBackendDestroyDescriptor(engine);
  }
  return p;
}

ConvGraphPlan::~ConvGraphPlan() {
  if (pack_) cudnnBackendDestroyDescriptor(pack_);
  if (plan_) cudnnBackendDestroyDescriptor(plan_);
}

Result<bool> ConvGraphPlan::run(cudnnHandle_t handle, const ConvGraphArgs& a) const {
  void* const now[6] = {const_cast<void*>(a.x), const_cast<void*>(a.w), const_cast<void*>(a.b),
                        const_cast<void*>(a.z), a.y, a.workspace};
  cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
  if (!pack_ || !std::equal(now, now + 6, pack_ptrs_)) {
    if (pack_) cudnnBackendDestroyDescriptor(pack_);
    pack_ = nullptr;
    int64_t uids[5];
    void* ptrs[5];
    int64_t n = 0;
    auto add = [&](int64_t uid, void* p) {
      uids[n] = uid;
      ptrs[n] = p;
      ++n;
    };
    add(kX, now[0]);
    add(kW, now[1]);
    if (bias_) add(kB, now[2]);
    if (residual_) add(kZ, now[3]);
    add(kY, now[4]);
    void* ws = a.workspace;
    cudnnBackendDescriptor_t pack = nullptr;
    s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack);
    if (s != CUDNN_STATUS_SUCCESS)
      return Status(StatusCode::kInternal, fmt::format("cuDNN variant pack: {}", cudnnGetErrorString(s)));
    s = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
    if (s == CUDNN_STATUS_SUCCESS)
      s = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, ptrs);
    if (s == CUDNN_STATUS_SUCCESS)
      s = cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(pack);
    if (s != CUDNN_STATUS_SUCCESS) {
      cudnnBackendDestroyDescriptor(pack);
    } else {
      pack_ = pack;
      std::copy(now, now + 6, pack_ptrs_);
    }
  }
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendExecute(handle, plan_, pack_);
  if (s == CUDNN_STATUS_SUCCESS) return true;
  const int category = static_cast<int>(s) / 1000;
  if (category == 2 || category == 3) return false;  // BAD_PARAM / NOT_SUPPORTED families: not this plan
  return Status(StatusCode::kInternal,
                fmt::format("cudnnBackendExecute (engine {}) failed: {} ({})", engine_, cudnnGetErrorString(s),
                            static_cast<int>(s)));
}

}  // namespace kiln::cuda
