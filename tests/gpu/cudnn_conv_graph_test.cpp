// The cuDNN graph-API convolution (backends/cuda/kernels/cudnn_conv_graph.h), every planned engine
// configuration checked against a host f64 reference: NCHW and NHWC, odd channel counts, batch 1 and 3,
// strides, dilation, groups (depthwise), asymmetric pads, 1-D (as 2-D) and 3-D, bias / residual / each
// activation, f16 and bf16.
#include <cudnn.h>

#include <cstring>

#include "backends/cuda/kernels/cudnn_conv_graph.h"
#include "gpu/gpu_harness.h"

namespace kiln {
namespace {

using ops::ConvActivation;

struct Case {
  const char* name;
  DType dt;
  bool nhwc;
  std::vector<int64_t> x, w;  // channels first: X [N, C, spatial...], W [M, C/group, k...]
  std::vector<int64_t> pad_begin, pad_end, stride, dil;
  int64_t group;
  bool bias, residual;
  ConvActivation act;
  bool must_plan;  // a shape cuDNN's graph engines are known to take (NHWC, channels multiples of 8)
};

std::vector<int64_t> out_dims(const Case& c) {
  std::vector<int64_t> y{c.x[0], c.w[0]};
  for (size_t i = 0; i + 2 < c.x.size(); ++i)
    y.push_back((c.x[2 + i] + c.pad_begin[i] + c.pad_end[i] - ((c.w[2 + i] - 1) * c.dil[i] + 1)) / c.stride[i] + 1);
  return y;
}

// Element offset of channels-first index `idx` in a tensor of channels-first `dims` stored in its layout.
int64_t offset(const std::vector<int64_t>& dims, const std::vector<int64_t>& idx, bool nhwc) {
  std::vector<size_t> order;  // memory order, outermost first
  order.push_back(0);
  if (nhwc) {
    for (size_t i = 2; i < dims.size(); ++i) order.push_back(i);
    order.push_back(1);
  } else {
    for (size_t i = 1; i < dims.size(); ++i) order.push_back(i);
  }
  int64_t off = 0;
  for (size_t d : order) off = off * dims[d] + idx[d];
  return off;
}

std::vector<int64_t> unflatten(int64_t flat, const std::vector<int64_t>& dims) {
  std::vector<int64_t> idx(dims.size());
  for (size_t i = dims.size(); i-- > 0;) {
    idx[i] = flat % dims[i];
    flat /= dims[i];
  }
  return idx;
}

// The tensor's bytes in the case's memory layout.
std::vector<char> to_layout(const Tensor& t, bool nhwc) {
  const size_t es = dtype_size(t.dtype());
  std::vector<char> out(t.nbytes());
  for (int64_t i = 0; i < t.numel(); ++i)
    std::memcpy(out.data() + offset(t.dims(), unflatten(i, t.dims()), nhwc) * es,
                static_cast<const char*>(t.raw()) + i * es, es);
  return out;
}

double activate(double v, ConvActivation a) {
  switch (a) {
    case ConvActivation::kRelu:
      return v > 0 ? v : 0;
    case ConvActivation::kSigmoid:
      return 1 / (1 + std::exp(-v));
    case ConvActivation::kSilu:
      return v / (1 + std::exp(-v));
    default:
      return v;
  }
}

// Y (channels first, f64) from the channels-first host tensors.
std::vector<double> reference(const Case& c, const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& z) {
  const std::vector<int64_t> yd = out_dims(c);
  const size_t nsp = c.x.size() - 2;
  const int64_t cg = c.x[1] / c.group, mg = c.w[0] / c.group;
  int64_t ysize = 1, ksize = 1;
  for (auto d : yd) ysize *= d;
  for (size_t i = 0; i < nsp; ++i) ksize *= c.w[2 + i];
  std::vector<double> y(static_cast<size_t>(ysize));
  std::vector<int64_t> kdims(c.w.begin() + 2, c.w.end());
  for (int64_t f = 0; f < ysize; ++f) {
    const std::vector<int64_t> yi = unflatten(f, yd);
    const int64_t n = yi[0], m = yi[1], grp = m / mg;
    double acc = 0;
    for (int64_t ci = 0; ci < cg; ++ci)
      for (int64_t kf = 0; kf < ksize; ++kf) {
        const std::vector<int64_t> k = unflatten(kf, kdims);
        std::vector<int64_t> xi{n, grp * cg + ci};
        bool inside = true;
        for (size_t d = 0; d < nsp; ++d) {
          const int64_t pos = yi[2 + d] * c.stride[d] - c.pad_begin[d] + k[d] * c.dil[d];
          inside = inside && pos >= 0 && pos < c.x[2 + d];
          xi.push_back(pos);
        }
        if (!inside) continue;
        std::vector<int64_t> wi{m, ci};
        wi.insert(wi.end(), k.begin(), k.end());
        int64_t xf = 0, wf = 0;
        for (size_t d = 0; d < xi.size(); ++d) xf = xf * c.x[d] + xi[d], wf = wf * c.w[d] + wi[d];
        acc += x.get_as_double(xf) * w.get_as_double(wf);
      }
    if (c.bias) acc += b.get_as_double(m);
    if (c.residual) acc += z.get_as_double(f);
    y[static_cast<size_t>(f)] = activate(acc, c.act);
  }
  return y;
}

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(const std::vector<char>& host) {
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(host.size(), 16)), cudaSuccess);
    if (!host.empty()) EXPECT_EQ(cudaMemcpy(p, host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(p); }
};

// Plans and runs up to `configs` engine configurations; returns how many ran (each compared).
int check_case(cudnnHandle_t handle, const Case& c, uint64_t seed, int configs) {
  const std::vector<int64_t> yd = out_dims(c);
  SCOPED_TRACE(std::string(c.name) + " " + std::string(dtype_name(c.dt)) + (c.nhwc ? " NHWC" : " NCHW") + " X " +
               dims_to_string(c.x) + " W " + dims_to_string(c.w) + " Y " + dims_to_string(yd));
  const Tensor x = gputest::random_tensor(c.dt, c.x, seed), w = gputest::random_tensor(c.dt, c.w, seed + 1),
               b = gputest::random_tensor(c.dt, {c.w[0]}, seed + 2), z = gputest::random_tensor(c.dt, yd, seed + 3);
  const std::vector<double> want = reference(c, x, w, b, z);
  cudnnDataType_t t = c.dt == DType::kF16 ? CUDNN_DATA_HALF : c.dt == DType::kBF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  cuda::ConvGraphSpec spec;
  spec.dtype = t;
  spec.nhwc = c.nhwc;
  spec.x = c.x;
  spec.w = c.w;
  spec.y = yd;
  spec.pad_begin = c.pad_begin;
  spec.pad_end = c.pad_end;
  spec.stride = c.stride;
  spec.dil = c.dil;
  spec.bias = c.bias;
  spec.residual = c.residual;
  spec.act = c.act;
  std::string why;
  std::shared_ptr<cuda::ConvGraph> graph = cuda::ConvGraph::create(handle, spec, &why);
  if (!graph) {
    EXPECT_FALSE(c.must_plan) << "cuDNN declined the graph: " << why;
    return 0;
  }
  EXPECT_GT(graph->config_count(), 0);
  DeviceBuffer dx(to_layout(x, c.nhwc)), dw(to_layout(w, c.nhwc)), db(to_layout(b, false)),
      dz(to_layout(z, c.nhwc));
  Tensor y(c.dt, yd);
  DeviceBuffer dy(std::vector<char>(y.nbytes(), 0));
  const gputest::Tolerance tol = c.dt == DType::kBF16 ? gputest::Tolerance{3e-2, 3e-2}
                                 : c.dt == DType::kF16 ? gputest::Tolerance{5e-3, 5e-3}
                                                       : gputest::Tolerance{1e-2, 1e-2};  // TF32
  int ran = 0;
  for (int i = 0; i < graph->config_count() && ran < configs; ++i) {
    std::unique_ptr<cuda::ConvGraphPlan> plan = graph->plan(handle, i, size_t{256} << 20);
    if (!plan) continue;
    SCOPED_TRACE("config " + std::to_string(i) + " engine " + std::to_string(plan->engine_id()));
    EXPECT_EQ(plan->config_index(), i);
    DeviceBuffer ws(std::vector<char>(plan->workspace_bytes(), 0));
    EXPECT_EQ(cudaMemset(dy.p, 0xff, y.nbytes()), cudaSuccess);  // NaN-ish garbage: every element must be written
    auto r = plan->run(handle, {dx.p, dw.p, c.bias ? db.p : nullptr, c.residual ? dz.p : nullptr, dy.p, ws.p});
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (!r.ok() || !*r) continue;
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<char> host(y.nbytes());
    EXPECT_EQ(cudaMemcpy(host.data(), dy.p, host.size(), cudaMemcpyDeviceToHost), cudaSuccess);
    const size_t es = dtype_size(c.dt);
    for (int64_t f = 0; f < y.numel(); ++f)  // back to channels first
      std::memcpy(static_cast<char*>(y.raw()) + f * es, host.data() + offset(yd, unflatten(f, yd), c.nhwc) * es, es);
    int bad = 0;
    for (int64_t f = 0; f < y.numel(); ++f) {
      const double got = y.get_as_double(f), e = want[static_cast<size_t>(f)];
      if (!(std::fabs(got - e) <= tol.atol + tol.rtol * std::fabs(e)) && bad++ < 5)
        ADD_FAILURE() << "[" << f << "] gpu " << got << " vs " << e;
    }
    EXPECT_EQ(bad, 0);
    ++ran;
  }
  EXPECT_TRUE(ran > 0 || !c.must_plan) << "no configuration of " << graph->config_count() << " ran";
  return ran;
}

TEST(GpuCudnnConvGraph, EveryPlannedConfigMatchesTheReference) {
  KILN_REQUIRE_GPU();
  cudnnHandle_t handle = nullptr;
  ASSERT_EQ(cudnnCreate(&handle), CUDNN_STATUS_SUCCESS);
  const auto relu = ConvActivation::kRelu, none = ConvActivation::kNone;
  const std::vector<Case> cases = {
      {"resnet block", DType::kF16, true, {1, 64, 7, 7}, {64, 64, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, true, true, relu, true},
      {"1x1 stride 2", DType::kF16, true, {3, 32, 13, 11}, {48, 32, 1, 1}, {0, 0}, {0, 0}, {2, 2}, {1, 1}, 1, true, false, none, true},
      {"dilated sigmoid", DType::kBF16, true, {2, 16, 9, 9}, {24, 16, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {2, 2}, 1, true, true, ConvActivation::kSigmoid, false},
      {"silu no bias", DType::kF16, true, {1, 8, 5, 5}, {8, 8, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, false, false, ConvActivation::kSilu, false},
      {"stem odd M", DType::kF16, false, {1, 3, 17, 17}, {5, 3, 7, 7}, {3, 3}, {3, 3}, {2, 2}, {1, 1}, 1, true, false, relu, false},
      {"stem NHWC", DType::kF16, true, {1, 3, 17, 17}, {64, 3, 7, 7}, {3, 3}, {3, 3}, {2, 2}, {1, 1}, 1, true, false, relu, false},
      {"depthwise", DType::kF16, true, {2, 32, 8, 8}, {32, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 32, true, false, relu, false},
      {"1-D as 2-D", DType::kF16, true, {2, 16, 1, 37}, {16, 16, 1, 5}, {0, 2}, {0, 2}, {1, 1}, {1, 1}, 1, true, true, none, false},
      {"3-D", DType::kF16, true, {1, 8, 4, 5, 6}, {8, 8, 3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, 1, true, false, relu, false},
      {"NCHW bare", DType::kF16, false, {7, 8, 9, 9}, {16, 8, 3, 3}, {0, 0}, {0, 0}, {1, 1}, {1, 1}, 1, false, false, none, false},
      {"asymmetric pads", DType::kF16, true, {1, 16, 8, 8}, {16, 16, 3, 3}, {0, 0}, {1, 1}, {1, 1}, {1, 1}, 1, true, true, relu, false},
      {"bf16 block", DType::kBF16, true, {3, 64, 14, 14}, {128, 64, 3, 3}, {1, 1}, {1, 1}, {2, 2}, {1, 1}, 1, true, false, relu, true},
      {"f32 (TF32)", DType::kF32, true, {1, 16, 7, 7}, {16, 16, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, true, true, relu, false},
  };
  int ran_cases = 0;
  uint64_t seed = 900;
  for (const Case& c : cases) {
    if (check_case(handle, c, seed, 3) > 0) ++ran_cases;
    seed += 10;
  }
  // The graph path must be a real option, not a path cuDNN declines everywhere.
  EXPECT_GE(ran_cases, 4);
  std::printf("graph API ran %d of %zu convolution cases\n", ran_cases, cases.size());
  cudnnDestroy(handle);
}

}  // namespace
}  // namespace kiln
