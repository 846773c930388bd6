// FusedConv: Y = act(Conv(X, W) + B + Z), f32/f16/bf16 (f32 accumulation), layout NCHW or NHWC
// (ops/fused_conv.h). Geometry comes from ops::read_window on the channels-first view, as in inference and
// the CPU reference.
//  - cuDNN (1-D as 2-D, 2-D, 3-D; symmetric pads; int32 sizes), per shape one plan made on the first run and
//  kept
//    in the context's Resources::kernel_state: descriptors, algorithm, math type, how the epilogue runs.
//      relu / none: cudnnConvolutionBiasActivationForward, bias + residual (alpha2 = 1) + activation in one
//      call.
//        cuDNN runs the identity activation only with IMPLICIT_PRECOMP_GEMM.
//      sigmoid / silu (that API has neither), or when it declines every algorithm (some dtype/layout mixes):
//        cudnnConvolutionForward with the best algorithm, then one in-place epilogue kernel (bias + Z + act).
//    Candidates come from cudnnFindConvolutionForwardAlgorithmEx (measured; heuristics of
//    GetConvolutionForwardAlgorithm_v7 while a CUDA graph is being captured). With Resources::time_tactics
//    every (path, algorithm) cuDNN accepts is timed on the real buffers and the fastest kept: FindEx times the
//    bare convolution only, and the fused API often runs a slower kernel than conv + epilogue would.
//    With timing, the first configurations of the cuDNN graph API (cudnn_conv_graph.h: conv + bias + Z + act
//    as one operation graph, run by cuDNN's fused / runtime-fusion engines) compete too.
//    Otherwise they are tried in order until cuDNN runs one. f32 stays FMA-only unless Resources::allow_tf32; f16/bf16 use tensor-op math, f32
//    compute. Scratch: Resources::workspace, or when an algorithm wants more, a larger buffer owned by the
//    plan cache (grown only outside capture, after the stream drained; at most kMaxWorkspaceBytes).
//  - Everything else (asymmetric pads, more spatial dims, int32 overflow, no cuDNN algorithm): a direct
//  kernel,
//    one thread per output, the whole epilogue fused.
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

#include "backends/cuda/kernel_list.h"
#include "backends/cuda/kernels/cudnn_conv_graph.h"
#include "backends/cuda/kernels/conv_pool_common.cuh"
#include "backends/cuda/kernels/depthwise_conv.h"
#include "backends/cuda/kernels/fused_conv_direct.cuh"
#include "ops/conv_pool_attrs.h"
#include "ops/fused_conv.h"

namespace kiln::cuda {

namespace {

// Most scratch an algorithm may get beyond the context's workspace (not counted in the memory limit).
constexpr size_t kMaxWorkspaceBytes = size_t{256} << 20;
constexpr size_t kMaxPlans = 1024;

using ActDesc = convpool::Desc<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor,
                               cudnnDestroyActivationDescriptor>;

// ---- plans -----------------------------------------------------------------------------------------------

// kGraph: one cuDNN operation graph (cudnn_conv_graph.h), conv and epilogue fused by cuDNN's engines.
// kDepthwise: kiln's channels-last depthwise kernel (depthwise_conv.h), epilogue fused.
enum class Path { kFusedApi, kConvThenEpilogue, kDirect, kGraph, kDepthwise };

struct Plan {
  Path path = Path::kDirect;
  convpool::TensorDesc x, y, bias;
  convpool::FilterDesc w;
  convpool::ConvDesc conv;
  ActDesc act;
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t ws_need = 0;
  std::unique_ptr<ConvGraphPlan> graph;  // Path::kGraph
  std::string tactic;
};

struct PlanCache : KernelState {
  std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans;
  void* extra = nullptr;  // scratch beyond Resources::workspace, for algorithms that want more
  size_t extra_bytes = 0;
  ~PlanCache() override {
    if (extra) cudaFree(extra);
  }
  size_t device_bytes() const override { return extra_bytes; }
};

PlanCache& plan_cache(Resources& res) {
  auto& slot = res.kernel_state["FusedConv"];
  if (!slot) slot = std::make_shared<PlanCache>();
  return static_cast<PlanCache&>(*slot);
}

bool capturing(cudaStream_t s) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &st) != cudaSuccess) {
    cudaGetLastError();
    return true;  // unsure: behave as if capturing (no allocation, no measurement)
  }
  return st != cudaStreamCaptureStatusNone;
}

// Scratch of at least `bytes`: the context's workspace, else the cache's extra buffer (grown when allowed).
void* scratch(Resources& res, PlanCache& cache, size_t bytes, bool may_grow) {
  if (bytes <= res.workspace_bytes) return bytes ? res.workspace : nullptr;
  if (bytes <= cache.extra_bytes) return cache.extra;
  if (!may_grow || bytes > kMaxWorkspaceBytes) return nullptr;
  // The old buffer may still be in use by queued work on this stream.
  if (cudaStreamSynchronize(res.stream) != cudaSuccess) return nullptr;
  if (cache.extra) cudaFree(cache.extra);
  cache.extra = nullptr;
  cache.extra_bytes = 0;
  // Optional: the caller then picks an algorithm that fits the workspace, so a failure is not an error.
  if (!device_alloc(&cache.extra, bytes, "FusedConv extra workspace").ok()) return nullptr;
  cache.extra_bytes = bytes;
  return cache.extra;
}

const char* algo_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM:
      return "implicit_gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM:
      return "implicit_precomp_gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM:
      return "gemm";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT:
      return "direct";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT:
      return "fft";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING:
      return "fft_tiling";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD:
      return "winograd";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED:
      return "winograd_nonfused";
    default:
      return "?";
  }
}

// cuDNN 9 refines BAD_PARAM (2xxx) and NOT_SUPPORTED (3xxx) into sub-codes (layout, alignment, data type…):
// any of them means "not this algorithm / configuration", and the next candidate or path is tried.
bool declined(cudnnStatus_t s) {
  const int category = static_cast<int>(s) / 1000;
  return category == 2 || category == 3;
}

bool is_tensor_op(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// cuDNN tensor descriptor for an activation (X, Y, Z) of dims `nc_spatial` (N, C, spatial... in that order)
// stored in `layout`.
Status set_activation_desc(convpool::TensorDesc& d, cudnnDataType_t t, const std::vector<int>& nc_spatial,
                           bool nhwc) {
  KILN_RETURN_IF_ERROR(d.create());
  KILN_CUDNN_CHECK(cudnnSetTensorNdDescriptorEx(d.h, nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, t,
                                                static_cast<int>(nc_spatial.size()), nc_spatial.data()));
  return Status();
}

// Operands of one run.
struct Operands {
  const void *x = nullptr, *w = nullptr, *b = nullptr, *z = nullptr;
  void* y = nullptr;
  int64_t total = 0;
};

// Runs the plan's cuDNN call. true: it ran; false: cuDNN declined (not supported / workspace).
template <class T>
Result<bool> run_cudnn(KernelContext& ctx, const Geometry& g, Plan& p, const Operands& op, bool may_grow) {
  Resources& res = ctx.res();
  PlanCache& cache = plan_cache(res);
  const float one = 1.f, zero = 0.f;
  if (p.path == Path::kGraph) {
    void* ws = scratch(res, cache, p.ws_need, may_grow);
    if (!ws && p.ws_need > 0) return false;
    return p.graph->run(res.cudnn, ConvGraphArgs{op.x, op.w, op.b, op.z, op.y, ws});
  }
  if (p.path == Path::kFusedApi) {
    // The fused API needs a bias: without one it reads zeros from the front of the scratch.
    const size_t bias_bytes = op.b ? 0 : (static_cast<size_t>(g.m) * sizeof(T) + 255) / 256 * 256;
    char* ws = static_cast<char*>(scratch(res, cache, bias_bytes + p.ws_need, may_grow));
    if (!ws && bias_bytes + p.ws_need > 0) return false;
    const void* bias = op.b;
    if (!bias) {
      KILN_CUDA_CHECK(cudaMemsetAsync(ws, 0, bias_bytes, ctx.stream()));
      bias = ws;
    }
    const float alpha2 = op.z ? 1.f : 0.f;
    const cudnnStatus_t s = cudnnConvolutionBiasActivationForward(
        res.cudnn, &one, p.x.h, op.x, p.w.h, op.w, p.conv.h, p.algo, p.ws_need ? ws + bias_bytes : nullptr,
        p.ws_need, &alpha2, p.y.h, op.z ? op.z : op.y, p.bias.h, bias, p.act.h, p.y.h, op.y);
    if (declined(s)) return false;
    KILN_RETURN_IF_ERROR(cudnn_status(s, "cudnnConvolutionBiasActivationForward", __FILE__, __LINE__));
    return true;
  }
  void* ws = scratch(res, cache, p.ws_need, may_grow);
  if (!ws && p.ws_need > 0) return false;
  const cudnnStatus_t s = cudnnConvolutionForward(res.cudnn, &one, p.x.h, op.x, p.w.h, op.w, p.conv.h, p.algo,
                                                  ws, p.ws_need, &zero, p.y.h, op.y);
  if (declined(s)) return false;
  KILN_RETURN_IF_ERROR(cudnn_status(s, "cudnnConvolutionForward", __FILE__, __LINE__));
  KILN_RETURN_IF_ERROR(launch_epilogue<T>(ctx, g, static_cast<T*>(op.y), static_cast<const T*>(op.b),
                                          static_cast<const T*>(op.z), op.total));
  return true;
}

// Builds the cuDNN descriptors of a plan; false when cuDNN cannot take this geometry.
Result<bool> describe(KernelContext& ctx, DType dt, const Geometry& g, Plan& p) {
  const size_t nsp = g.nsp();
  cudnnDataType_t t;
  if (!ctx.res().cudnn || nsp < 1 || nsp > 3 || !convpool::cudnn_dtype(dt, &t)) return false;
  for (size_t i = 0; i < nsp; ++i)
    if (g.pad_begin[i] != g.pad_end[i] || !convpool::fits_int(g.pad_begin[i]) ||
        !convpool::fits_int(g.stride[i]) || !convpool::fits_int(g.dil[i]))
      return false;
  if (!convpool::fits_int(g.n * g.c * g.in_size()) || !convpool::fits_int(g.n * g.m * g.out_size()) ||
      !convpool::fits_int(g.m * (g.c / g.group) * g.k_size()))
    return false;
  std::vector<int> xd{static_cast<int>(g.n), static_cast<int>(g.c)};
  std::vector<int> wd{static_cast<int>(g.m), static_cast<int>(g.c / g.group)};
  std::vector<int> yd{static_cast<int>(g.n), static_cast<int>(g.m)};
  std::vector<int> pad, stride, dil;
  if (nsp == 1) {  // 1-D as 2-D with a unit height (same memory in both layouts)
    xd.push_back(1), wd.push_back(1), yd.push_back(1);
    pad.push_back(0), stride.push_back(1), dil.push_back(1);
  }
  for (size_t i = 0; i < nsp; ++i) {
    xd.push_back(static_cast<int>(g.in[i]));
    wd.push_back(static_cast<int>(g.k[i]));
    yd.push_back(static_cast<int>(g.out[i]));
    pad.push_back(static_cast<int>(g.pad_begin[i]));
    stride.push_back(static_cast<int>(g.stride[i]));
    dil.push_back(static_cast<int>(g.dil[i]));
  }
  const int nd = static_cast<int>(xd.size());
  KILN_RETURN_IF_ERROR(set_activation_desc(p.x, t, xd, g.nhwc()));
  KILN_RETURN_IF_ERROR(set_activation_desc(p.y, t, yd, g.nhwc()));
  KILN_RETURN_IF_ERROR(p.w.create());
  KILN_CUDNN_CHECK(
      cudnnSetFilterNdDescriptor(p.w.h, t, g.nhwc() ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, nd, wd.data()));
  std::vector<int> bd(nd, 1);
  bd[1] = static_cast<int>(g.m);
  KILN_RETURN_IF_ERROR(convpool::set_packed(p.bias, t, bd));
  KILN_RETURN_IF_ERROR(p.conv.create());
  KILN_CUDNN_CHECK(cudnnSetConvolutionNdDescriptor(p.conv.h, nd - 2, pad.data(), stride.data(), dil.data(),
                                                   CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  KILN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(p.conv.h, static_cast<int>(g.group)));
  std::vector<int> out(nd, 0);
  if (cudnnGetConvolutionNdForwardOutputDim(p.conv.h, p.x.h, p.w.h, nd, out.data()) != CUDNN_STATUS_SUCCESS ||
      out != yd)
    return false;
  KILN_RETURN_IF_ERROR(p.act.create());
  const bool relu = g.act == ConvActivation::kRelu;
  KILN_CUDNN_CHECK(cudnnSetActivationDescriptor(
      p.act.h, relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  return true;
}

struct Candidate {
  cudnnConvolutionFwdAlgo_t algo;
  cudnnMathType_t math;
};

// Algorithms to try, best first: measured when we may run cuDNN's search, else cuDNN's heuristics.
Result<std::vector<Candidate>> candidates(KernelContext& ctx, DType dt, Plan& p, const Operands& op,
                                          bool may_measure) {
  Resources& res = ctx.res();
  const bool fma_only = dt == DType::kF32 && !res.allow_tf32;
  const cudnnMathType_t base =
      fma_only ? CUDNN_FMA_MATH : (dt == DType::kF32 ? CUDNN_DEFAULT_MATH : CUDNN_TENSOR_OP_MATH);
  KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.h, base));
  std::vector<Candidate> out;
  auto add = [&](const cudnnConvolutionFwdAlgoPerf_t& perf) {
    if (perf.status != CUDNN_STATUS_SUCCESS || perf.memory > kMaxWorkspaceBytes) return;
    if (fma_only && is_tensor_op(perf.mathType)) return;
    const Candidate c{perf.algo, fma_only ? CUDNN_FMA_MATH : perf.mathType};
    for (const auto& e : out)
      if (e.algo == c.algo && e.math == c.math) return;
    out.push_back(c);
  };
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int found = 0;
  KILN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(res.cudnn, p.x.h, p.w.h, p.conv.h, p.y.h,
                                                          CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> heuristic(perf, perf + found);
  if (may_measure) {
    // Give the search the scratch the most promising heuristic choices would want.
    size_t want = 0;
    int considered = 0;
    for (const auto& h : heuristic) {
      if (h.status != CUDNN_STATUS_SUCCESS || h.memory > kMaxWorkspaceBytes) continue;
      want = std::max(want, h.memory);
      if (++considered == 3) break;
    }
    PlanCache& cache = plan_cache(res);
    scratch(res, cache, want, true);  // grows the extra buffer when the context's workspace is too small
    const bool extra = cache.extra_bytes > res.workspace_bytes;
    void* ws = extra ? cache.extra : res.workspace;
    const size_t ws_bytes = extra ? cache.extra_bytes : res.workspace_bytes;
    int measured = 0;
    const cudnnStatus_t s = cudnnFindConvolutionForwardAlgorithmEx(
        res.cudnn, p.x.h, op.x, p.w.h, op.w, p.conv.h, p.y.h, op.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
        &measured, perf, ws, ws_bytes);
    if (s == CUDNN_STATUS_SUCCESS)
      for (int i = 0; i < measured; ++i) add(perf[i]);
  }
  for (const auto& h : heuristic) add(h);
  return out;
}

// One way to run the convolution: the cuDNN call (path), its algorithm and math, and the scratch it wants.
// For Path::kGraph, c.algo holds the configuration's position in cuDNN's heuristic list instead.
struct Option {
  Path path;
  Candidate c;
  size_t ws_need;
  void apply(Plan& p) const {
    p.path = path;
    p.algo = c.algo;
    p.math = c.math;
    p.ws_need = ws_need;
    if (path != Path::kGraph && path != Path::kDepthwise) cudnnSetConvolutionMathType(p.conv.h, c.math);
  }
  int graph_index() const { return static_cast<int>(c.algo); }
  // "path algo math ws" for the tactic cache.
  std::string encode() const {
    return fmt::format("{} {} {} {}", static_cast<int>(path), static_cast<int>(c.algo), static_cast<int>(c.math),
                       ws_need);
  }
  static std::optional<Option> decode(const std::string& s) {
    int path = 0, algo = 0, math = 0;
    unsigned long long ws = 0;
    if (std::sscanf(s.c_str(), "%d %d %d %llu", &path, &algo, &math, &ws) != 4) return std::nullopt;
    if (path == static_cast<int>(Path::kGraph)) {
      if (algo < 0) return std::nullopt;
    } else if (path == static_cast<int>(Path::kDepthwise)) {
      algo = 0, math = 0, ws = 0;
    } else if (path != static_cast<int>(Path::kFusedApi) && path != static_cast<int>(Path::kConvThenEpilogue)) {
      return std::nullopt;
    } else if (algo < 0 || algo >= CUDNN_CONVOLUTION_FWD_ALGO_COUNT) {
      return std::nullopt;
    }
    return Option{static_cast<Path>(path),
                  {static_cast<cudnnConvolutionFwdAlgo_t>(algo), static_cast<cudnnMathType_t>(math)},
                  static_cast<size_t>(ws)};
  }
};

std::string tactic_name(const Plan& p, const Geometry& g) {
  if (p.path == Path::kDepthwise) return "kiln depthwise nhwc";
  if (p.path == Path::kGraph)
    return fmt::format("cudnn graph engine {} cfg {}{} ws={}", p.graph ? p.graph->engine_id() : -1,
                       p.graph ? p.graph->config_index() : -1, g.nhwc() ? " nhwc" : "", p.ws_need);
  return fmt::format("cudnn {} {} {}{} ws={}", p.path == Path::kFusedApi ? "conv_bias_act" : "conv+epilogue",
                     algo_name(p.algo), is_tensor_op(p.math) ? "tensor_op" : "fma", g.nhwc() ? " nhwc" : "",
                     p.ws_need);
}

// At most this many of cuDNN's ranked graph configurations are planned and timed per convolution shape, and
// no more once planning this shape has taken kGraphPlanningSeconds: runtime-fusion engines compile (NVRTC)
// when planned, so each one costs build time.
constexpr int kGraphConfigs = 2;
constexpr double kGraphPlanningSeconds = 0.5;

bool aligned16(const Operands& op) {
  for (const void* p : {op.x, op.w, op.b, op.z, static_cast<const void*>(op.y)})
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}

// The operation graph for this convolution, or nullptr when the graph path does not apply: f32 without TF32
// (graph engines may use tensor cores), data pointers not 16-byte aligned, or cuDNN declining the graph.
// Only channels-last convolutions whose channel counts per group are multiples of 8 are offered: those are
// the shapes cuDNN's fused engines are built for, and planning the others (compiles that rarely win) made
// builds of small odd convolutions take seconds each.
std::shared_ptr<ConvGraph> make_graph(KernelContext& ctx, DType dt, const Geometry& g, const Operands& op) {
  Resources& res = ctx.res();
  cudnnDataType_t t;
  if (!res.cudnn || !convpool::cudnn_dtype(dt, &t) || (dt == DType::kF32 && !res.allow_tf32)) return nullptr;
  if (!aligned16(op) || !g.nhwc() || (g.c / g.group) % 8 != 0 || (g.m / g.group) % 8 != 0) return nullptr;
  if (op.z && op.z == op.y) return nullptr;  // cuDNN does not promise that its engines may write Y over Z
  ConvGraphSpec s;
  s.dtype = t;
  s.nhwc = g.nhwc();
  s.x = {g.n, g.c};
  s.w = {g.m, g.c / g.group};
  s.y = {g.n, g.m};
  if (g.nsp() == 1) {  // 1-D as 2-D with a unit height, as the legacy path does
    s.x.push_back(1), s.w.push_back(1), s.y.push_back(1);
    s.pad_begin.push_back(0), s.pad_end.push_back(0), s.stride.push_back(1), s.dil.push_back(1);
  }
  s.x.insert(s.x.end(), g.in.begin(), g.in.end());
  s.w.insert(s.w.end(), g.k.begin(), g.k.end());
  s.y.insert(s.y.end(), g.out.begin(), g.out.end());
  s.pad_begin.insert(s.pad_begin.end(), g.pad_begin.begin(), g.pad_begin.end());
  s.pad_end.insert(s.pad_end.end(), g.pad_end.begin(), g.pad_end.end());
  s.stride.insert(s.stride.end(), g.stride.begin(), g.stride.end());
  s.dil.insert(s.dil.end(), g.dil.begin(), g.dil.end());
  s.bias = op.b != nullptr;
  s.residual = op.z != nullptr;
  s.act = g.act;
  std::string why;
  return ConvGraph::create(res.cudnn, s, &why);
}

// Median-free but steady: the mean of a few back-to-back runs after the warm-up run the caller made.
struct TacticTimer {
  static constexpr int kRuns = 3;
  cudaEvent_t start = nullptr, stop = nullptr;
  ~TacticTimer() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
  template <class F>
  Result<float> time(cudaStream_t s, F&& run) {
    if (!start) KILN_CUDA_CHECK(cudaEventCreate(&start));
    if (!stop) KILN_CUDA_CHECK(cudaEventCreate(&stop));
    KILN_CUDA_CHECK(cudaEventRecord(start, s));
    for (int r = 0; r < kRuns; ++r) KILN_RETURN_IF_ERROR(run());
    KILN_CUDA_CHECK(cudaEventRecord(stop, s));
    KILN_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.f;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return ms / kRuns;
  }
};

// The depthwise kernel's view of this convolution when it is one it can take: 2-D, channels-last, one filter
// per channel.
std::optional<DepthwiseConvShape> depthwise_shape(DType dt, const Geometry& g) {
  if (!g.nhwc() || g.nsp() != 2 || g.group != g.c || g.m != g.c) return std::nullopt;
  DepthwiseConvShape s;
  s.n = g.n, s.c = g.c, s.in_h = g.in[0], s.in_w = g.in[1], s.out_h = g.out[0], s.out_w = g.out[1];
  s.k_h = g.k[0], s.k_w = g.k[1], s.stride_h = g.stride[0], s.stride_w = g.stride[1];
  s.dil_h = g.dil[0], s.dil_w = g.dil[1], s.pad_h = g.pad_begin[0], s.pad_w = g.pad_begin[1];
  s.act = static_cast<int>(g.act);
  s.clip_lo = g.clip_lo, s.clip_hi = g.clip_hi;
  if (!depthwise_conv_can_implement(dt, s, nullptr)) return std::nullopt;
  return s;
}

// Runs the plan's way: kiln's depthwise kernel or the cuDNN call (false: cuDNN declined).
template <class T>
Result<bool> run_plan(KernelContext& ctx, DType dt, const Geometry& g, Plan& p, const Operands& op,
                      bool may_grow) {
  if (p.path == Path::kDepthwise) {
    // From this run's geometry: plans are shared by convolutions that differ only in clip bounds.
    const std::optional<DepthwiseConvShape> s = depthwise_shape(dt, g);
    if (!s) return ctx.error("the depthwise kernel planned for this shape cannot take it");
    KILN_RETURN_IF_ERROR(launch_depthwise_conv(ctx.stream(), dt, *s, op.x, op.w, op.b, op.z, op.y));
    return true;
  }
  return run_cudnn<T>(ctx, g, p, op, may_grow);
}

// Makes the plan for this geometry, running the convolution once in the process (so the result is in Y).
template <class T>
Result<std::unique_ptr<Plan>> make_plan(KernelContext& ctx, DType dt, const Geometry& g, const Operands& op,
                                       const std::string& cache_key) {
  auto p = std::make_unique<Plan>();
  const bool dw = depthwise_shape(dt, g).has_value();
  auto run_depthwise = [&]() -> Result<std::unique_ptr<Plan>> {
    p->path = Path::kDepthwise;
    p->tactic = tactic_name(*p, g);
    KILN_ASSIGN_OR_RETURN(bool ran, run_plan<T>(ctx, dt, g, *p, op, false));
    (void)ran;
    return std::move(p);
  };
  const bool may_grow = !capturing(ctx.stream());
  // Timing reruns the call, so Y must not also be an input (Z in place would accumulate).
  const bool timed = may_grow && ctx.res().time_tactics && op.z != op.y;
  const std::shared_ptr<TacticCache>& cache = ctx.res().tactics;
  // Untimed and with no stored choice, the depthwise kernel is taken on trust: cuDNN's channels-last
  // depthwise kernels are its known slow case.
  if (dw && !timed && !(cache && cache->find(cache_key))) return run_depthwise();
  KILN_ASSIGN_OR_RETURN(bool described, describe(ctx, dt, g, *p));
  if (!described && dw) return run_depthwise();
  if (!described) {
    p->path = Path::kDirect;
    p->tactic = "direct";
    KILN_RETURN_IF_ERROR(launch_direct<T>(ctx, g, static_cast<const T*>(op.x), static_cast<const T*>(op.w),
                                          static_cast<const T*>(op.b), static_cast<const T*>(op.z),
                                          static_cast<T*>(op.y), op.total));
    return std::move(p);
  }
  if (auto stored = cache ? cache->find(cache_key) : std::nullopt) {
    // Chosen before (at build, or by another context): run it; if cuDNN declines it now, choose again.
    std::optional<Option> o = Option::decode(*stored);
    if (o && o->path == Path::kDepthwise) {
      if (!dw) {
        o.reset();  // stored for a shape this kernel cannot take (another kiln): choose again
      } else {
        KILN_ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, run_depthwise());
        plan->tactic += " (cached)";
        return std::move(plan);
      }
    }
    if (o && o->path == Path::kGraph) {
      std::shared_ptr<ConvGraph> graph = make_graph(ctx, dt, g, op);
      p->graph = graph ? graph->plan(ctx.res().cudnn, o->graph_index(), kMaxWorkspaceBytes) : nullptr;
      if (!p->graph) o.reset();  // another cuDNN or GPU: choose again
      else o->ws_need = p->graph->workspace_bytes();
    }
    if (o) {
      o->apply(*p);
      KILN_ASSIGN_OR_RETURN(bool ran, run_cudnn<T>(ctx, g, *p, op, may_grow));
      if (ran) {
        p->tactic = tactic_name(*p, g) + " (cached)";
        return std::move(p);
      }
    }
  }
  KILN_ASSIGN_OR_RETURN(std::vector<Candidate> cands, candidates(ctx, dt, *p, op, may_grow));
  const bool fused_ok = g.act == ConvActivation::kRelu || g.act == ConvActivation::kNone;
  TacticTimer timer;
  std::optional<Option> best;
  float best_ms = 0.f;
  for (Path path : {Path::kFusedApi, Path::kConvThenEpilogue}) {
    if (path == Path::kFusedApi && !fused_ok) continue;
    for (const Candidate& c : cands) {
      if (path == Path::kFusedApi && g.act == ConvActivation::kNone &&
          c.algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)
        continue;
      KILN_CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv.h, c.math));
      size_t need = 0;
      if (cudnnGetConvolutionForwardWorkspaceSize(ctx.res().cudnn, p->x.h, p->w.h, p->conv.h, p->y.h, c.algo,
                                                  &need) != CUDNN_STATUS_SUCCESS)
        continue;
      const Option o{path, c, need};
      o.apply(*p);
      KILN_ASSIGN_OR_RETURN(bool ran, run_cudnn<T>(ctx, g, *p, op, may_grow));
      if (!ran) continue;
      if (!timed) {  // cuDNN's order (measured for the bare convolution, or its heuristics)
        best = o;
        break;
      }
      KILN_ASSIGN_OR_RETURN(float ms, timer.time(ctx.stream(), [&]() -> Status {
        KILN_ASSIGN_OR_RETURN(bool again, run_cudnn<T>(ctx, g, *p, op, may_grow));
        (void)again;
        return Status();
      }));
      if (!best || ms < best_ms) best = o, best_ms = ms;
    }
    if (best && !timed) break;
  }
  // The graph API only competes when timed: its configurations are ranked by heuristics, not measured, and an
  // untimed first run should not pay for runtime-fusion compiles.
  std::unique_ptr<ConvGraphPlan> best_graph;
  if (timed) {
    if (std::shared_ptr<ConvGraph> graph = make_graph(ctx, dt, g, op)) {
      const auto planning_start = std::chrono::steady_clock::now();
      for (int i = 0; i < std::min(graph->config_count(), kGraphConfigs); ++i) {
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - planning_start).count() >
            kGraphPlanningSeconds)
          break;
        p->graph = graph->plan(ctx.res().cudnn, i, kMaxWorkspaceBytes);
        if (!p->graph) continue;
        const Option o{Path::kGraph, {static_cast<cudnnConvolutionFwdAlgo_t>(i), CUDNN_DEFAULT_MATH},
                       p->graph->workspace_bytes()};
        o.apply(*p);
        KILN_ASSIGN_OR_RETURN(bool ran, run_cudnn<T>(ctx, g, *p, op, may_grow));
        if (!ran) continue;
        KILN_ASSIGN_OR_RETURN(float ms, timer.time(ctx.stream(), [&]() -> Status {
          KILN_ASSIGN_OR_RETURN(bool again, run_cudnn<T>(ctx, g, *p, op, may_grow));
          (void)again;
          return Status();
        }));
        if (!best || ms < best_ms) best = o, best_ms = ms, best_graph = std::move(p->graph);
      }
    }
    p->graph.reset();
    if (dw) {
      const Option o{Path::kDepthwise, {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_DEFAULT_MATH}, 0};
      o.apply(*p);
      KILN_ASSIGN_OR_RETURN(bool ran, run_plan<T>(ctx, dt, g, *p, op, may_grow));
      (void)ran;
      KILN_ASSIGN_OR_RETURN(float ms, timer.time(ctx.stream(), [&]() -> Status {
        KILN_ASSIGN_OR_RETURN(bool again, run_plan<T>(ctx, dt, g, *p, op, may_grow));
        (void)again;
        return Status();
      }));
      if (!best || ms < best_ms) best = o, best_ms = ms;
    }
  }
  if (best) {
    best->apply(*p);
    if (best->path == Path::kGraph) p->graph = std::move(best_graph);
    if (timed) {  // Y holds the last option's result; the chosen one writes it again
      KILN_ASSIGN_OR_RETURN(bool ran, run_plan<T>(ctx, dt, g, *p, op, may_grow));
      if (!ran) return ctx.error("cuDNN declined tactic '{}' that it ran a moment ago", tactic_name(*p, g));
    }
    p->tactic = tactic_name(*p, g) + (timed ? fmt::format(" ({:.1f} us)", best_ms * 1000.f) : std::string());
    if (timed && cache) cache->put(cache_key, best->encode());
    return std::move(p);
  }
  p->path = Path::kDirect;
  p->tactic = "direct (no cuDNN algorithm)";
  KILN_RETURN_IF_ERROR(launch_direct<T>(ctx, g, static_cast<const T*>(op.x), static_cast<const T*>(op.w),
                                        static_cast<const T*>(op.b), static_cast<const T*>(op.z),
                                        static_cast<T*>(op.y), op.total));
  return std::move(p);
}

template <class T>
Status fused_conv_typed(KernelContext& ctx, DType dt, const Geometry& g, const Operands& op) {
  if (g.c == 0 || g.k_size() == 0) {  // an empty reduction: Y = act(B + Z)
    KILN_CUDA_CHECK(cudaMemsetAsync(op.y, 0, static_cast<size_t>(op.total) * sizeof(T), ctx.stream()));
    return launch_epilogue<T>(ctx, g, static_cast<T*>(op.y), static_cast<const T*>(op.b),
                              static_cast<const T*>(op.z), op.total);
  }
  int device = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&device));
  std::vector<int64_t> key{device,
                           static_cast<int64_t>(dt),
                           static_cast<int64_t>(g.layout),
                           static_cast<int64_t>(g.act),
                           op.b != nullptr,
                           op.z != nullptr,
                           ctx.res().allow_tf32,
                           // graph plans are made for 16-byte aligned data (arena and weights always are)
                           aligned16(op),
                           op.z != nullptr && op.z == op.y,  // residual updated in place: no graph plan
                           g.n,
                           g.c,
                           g.m,
                           g.group};
  for (const auto* v : {&g.in, &g.k, &g.stride, &g.dil, &g.pad_begin, &g.pad_end})
    key.insert(key.end(), v->begin(), v->end());
  PlanCache& cache = plan_cache(ctx.res());
  auto it = cache.plans.find(key);
  if (it == cache.plans.end()) {
    // The device ordinal stays out of the tactic key: the engine is tied to one GPU model, not to an ordinal.
    const std::string cache_key =
        fmt::format("FusedConv:{}", fmt::join(std::vector<int64_t>(key.begin() + 1, key.end()), ","));
    KILN_ASSIGN_OR_RETURN(std::unique_ptr<Plan> plan, make_plan<T>(ctx, dt, g, op, cache_key));
    ctx.res().tactic = plan->tactic;
    if (cache.plans.size() >= kMaxPlans) cache.plans.clear();
    cache.plans[key] = std::move(plan);
    return Status();
  }
  Plan& p = *it->second;
  ctx.res().tactic = p.tactic;
  if (p.path != Path::kDirect) {
    KILN_ASSIGN_OR_RETURN(bool ran, run_plan<T>(ctx, dt, g, p, op, !capturing(ctx.stream())));
    if (ran) return Status();
    // It ran before with this shape; only the scratch can be missing now (capture with a smaller workspace).
    return ctx.error(
        "cuDNN declined its planned tactic '{}' (scratch {} bytes): rebuild or raise the workspace", p.tactic,
        p.ws_need);
  }
  return launch_direct<T>(ctx, g, static_cast<const T*>(op.x), static_cast<const T*>(op.w),
                          static_cast<const T*>(op.b), static_cast<const T*>(op.z), static_cast<T*>(op.y),
                          op.total);
}

std::vector<int64_t> channels_first(const std::vector<int64_t>& dims, bool nhwc) {
  if (!nhwc) return dims;
  std::vector<int64_t> out;
  for (size_t p : ops::to_channels_first(dims.size())) out.push_back(dims[p]);
  return out;
}

Status run_fused_conv(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  Geometry g;
  KILN_ASSIGN_OR_RETURN(g.act, ops::read_conv_activation(node));
  KILN_ASSIGN_OR_RETURN(ops::ConvClip clip, ops::read_conv_clip(node));
  g.clip_lo = clip.lo;
  g.clip_hi = clip.hi;
  KILN_ASSIGN_OR_RETURN(g.layout, ops::read_conv_layout(node));
  const DeviceTensor& X = ctx.input(ops::kFusedConvX);
  const DeviceTensor& W = ctx.input(ops::kFusedConvW);
  const DeviceTensor* B = ctx.has_input(ops::kFusedConvB) ? &ctx.input(ops::kFusedConvB) : nullptr;
  const DeviceTensor* Z = ctx.has_input(ops::kFusedConvZ) ? &ctx.input(ops::kFusedConvZ) : nullptr;
  DeviceTensor& Y = ctx.output(0);
  if (Y.numel() == 0) return Status();
  if (X.rank() < 3 || W.rank() != X.rank() || Y.rank() != X.rank())
    return ctx.error("FusedConv needs X, W and Y of one rank >= 3, got X {}, W {}, Y {}",
                     dims_to_string(X.dims), dims_to_string(W.dims), dims_to_string(Y.dims));
  const size_t nsp = X.rank() - 2;
  if (nsp > static_cast<size_t>(kMaxSpatial))
    return ctx.error("{} spatial dims are not supported on the GPU (at most {})", nsp, kMaxSpatial);
  const std::vector<int64_t> xc = channels_first(X.dims, g.nhwc()), wc = channels_first(W.dims, g.nhwc()),
                             yc = channels_first(Y.dims, g.nhwc());
  KILN_ASSIGN_OR_RETURN(ops::Window win, ops::read_window(node, nsp, {wc.begin() + 2, wc.end()}));
  g.n = xc[0];
  g.c = xc[1];
  g.m = wc[0];
  g.group = node.attr_int("group", 1);
  if (g.group <= 0 || g.c % g.group != 0 || g.m % g.group != 0 || wc[1] * g.group != g.c || yc[0] != g.n ||
      yc[1] != g.m || (B && (B->rank() != 1 || B->dims[0] != g.m)) || (Z && Z->dims != Y.dims))
    return ctx.error("inconsistent FusedConv shapes: X {}, W {}, B {}, Z {}, Y {}, group {}",
                     dims_to_string(X.dims), dims_to_string(W.dims), B ? dims_to_string(B->dims) : "-",
                     Z ? dims_to_string(Z->dims) : "-", dims_to_string(Y.dims), g.group);
  g.in.assign(xc.begin() + 2, xc.end());
  for (size_t i = 0; i < nsp; ++i) {
    const int64_t o = ops::window_output_size(win, i, g.in[i]);
    if (o != yc[2 + i])
      return ctx.error("output spatial dim {} is {} but the window gives {}", i, yc[2 + i], o);
    g.out.push_back(o);
  }
  g.k = win.kernel;
  g.stride = win.strides;
  g.dil = win.dilations;
  g.pad_begin = win.pad_begin;
  g.pad_end = win.pad_end;
  Operands op{X.data, W.data, B ? B->data : nullptr, Z ? Z->data : nullptr, Y.data, Y.numel()};
  std::optional<Status> st = convpool::dispatch_float(X.dtype, [&](auto tag) -> Status {
    using T = decltype(tag);
    return fused_conv_typed<T>(ctx, X.dtype, g, op);
  });
  if (!st) return ctx.error("dtype {} is not supported", dtype_name(X.dtype));
  return *st;
}

bool supports_fused_conv(const ir::Node& node, const std::vector<DType>& dts) {
  if (dts.size() < 2 || !convpool::is_float_dtype(dts[0])) return false;
  for (size_t i = 1; i < dts.size(); ++i)
    if (dts[i] != DType::kUndefined && dts[i] != dts[0]) return false;
  if (!ops::read_conv_activation(node).ok() || !ops::read_conv_layout(node).ok()) return false;
  if (node.attr_ints("kernel_shape").size() > static_cast<size_t>(kMaxSpatial)) return false;
  return true;
}

}  // namespace

void register_cuda_fused_conv(KernelTable& t) {
  t.add({"FusedConv", run_fused_conv, supports_fused_conv});
}

}  // namespace kiln::cuda
