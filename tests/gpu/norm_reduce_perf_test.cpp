// Throughput of the softmax / normalization / reduction kernels on model-sized shapes. Disabled by default (it
// checks nothing); run with --gtest_also_run_disabled_tests --gtest_filter='GpuNormReducePerf.*', ideally under
// ncu for per-kernel times. Prints effective bandwidth = (bytes read + bytes written) / time per run, where the
// time includes the executor's per-node host work and run_device's copy of the output into the caller's
// buffer (tens of microseconds all told): ncu gives the kernels' own times.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "gpu/norm_reduce_test_util.h"

namespace kiln {
namespace {

using gputest::sdims;
using testing::ModelBuilder;

void time_model(const std::string& label, const ModelBuilder& b, const std::map<std::string, Tensor>& inputs) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "perf");
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_TRUE(passes::infer_shapes(*g).ok());
  auto graph = std::make_shared<const ir::Graph>(std::move(*g));
  auto ex = cuda::GraphExecutor::create(graph, false);
  ASSERT_TRUE(ex.ok());
  std::map<std::string, cuda::DeviceTensor> din, dout;
  std::vector<void*> bufs;
  size_t bytes = 0;
  for (const auto& [name, t] : inputs) {
    cuda::DeviceTensor d;
    d.dtype = t.dtype();
    d.dims = t.dims();
    ASSERT_EQ(cudaMalloc(&d.data, std::max<size_t>(t.nbytes(), 1)), cudaSuccess);
    bufs.push_back(d.data);
    ASSERT_EQ(cudaMemcpy(d.data, t.raw(), t.nbytes(), cudaMemcpyHostToDevice), cudaSuccess);
    bytes += t.nbytes();
    din[name] = d;
  }
  for (const auto& name : graph->outputs) {
    const auto* info = graph->value(name);
    ASSERT_TRUE(info && info->shape.is_static()) << name;
    cuda::DeviceTensor d;
    d.dtype = info->dtype;
    d.dims = info->shape.static_dims();
    ASSERT_EQ(cudaMalloc(&d.data, std::max<size_t>(d.nbytes(), 1)), cudaSuccess);
    bufs.push_back(d.data);
    bytes += d.nbytes();
    dout[name] = d;
  }
  // KILN_PERF_ITERS=1 under ncu: one profiled launch per kernel after one warm-up.
  const char* env = std::getenv("KILN_PERF_ITERS");
  const int iters = env ? std::max(1, std::atoi(env)) : 20;
  for (int i = 0; i < (env ? 1 : 3); ++i) ASSERT_TRUE((*ex)->run_device(din, dout, nullptr).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) ASSERT_TRUE((*ex)->run_device(din, dout, nullptr).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
  std::printf("PERF %-48s %9.1f us  %7.1f GB/s\n", label.c_str(), us, bytes / us * 1e-3);
  for (void* p : bufs) cudaFree(p);
}

ModelBuilder unary(const std::string& op, DType dt, const std::vector<int64_t>& dims, int64_t opset = 18) {
  ModelBuilder b(opset);
  b.input("x", dt, sdims(dims)).node(op, {"x"}, {"y"}).output("y");
  return b;
}

TEST(GpuNormReducePerf, DISABLED_Shapes) {
  KILN_REQUIRE_GPU();
  for (DType dt : {DType::kF16, DType::kF32}) {
    const std::string tn = gputest::dname(dt);
    for (std::vector<int64_t> d : {std::vector<int64_t>{4096, 1024}, std::vector<int64_t>{24576, 128},
                                   std::vector<int64_t>{256, 32000}, std::vector<int64_t>{32, 12, 128, 128}}) {
      time_model("Softmax " + tn + " " + dims_to_string(d), unary("Softmax", dt, d),
                 {{"x", gputest::random_tensor(dt, d, 1)}});
    }
    {
      std::vector<int64_t> d = {8, 512, 4096};  // softmax over axis 1 (strided)
      ModelBuilder b(18);
      b.input("x", dt, sdims(d)).node("Softmax", {"x"}, {"y"}).attr("axis", int64_t{1}).output("y");
      time_model("Softmax axis1 " + tn + " " + dims_to_string(d), b, {{"x", gputest::random_tensor(dt, d, 1)}});
    }
    for (std::vector<int64_t> d : {std::vector<int64_t>{8192, 768}, std::vector<int64_t>{4096, 4096},
                                   std::vector<int64_t>{16384, 1024}, std::vector<int64_t>{64, 32768}}) {
      const int64_t h = d.back();
      ModelBuilder b(18);
      b.input("x", dt, sdims(d)).input("s", dt, {std::to_string(h)}).input("b", dt, {std::to_string(h)})
          .node("LayerNormalization", {"x", "s", "b"}, {"y"}).output("y");
      time_model("LayerNorm " + tn + " " + dims_to_string(d), b,
                 {{"x", gputest::random_tensor(dt, d, 1)}, {"s", gputest::random_tensor(dt, {h}, 2)},
                  {"b", gputest::random_tensor(dt, {h}, 3)}});
      ModelBuilder r(23);
      r.input("x", dt, sdims(d)).input("s", dt, {std::to_string(h)}).node("RMSNormalization", {"x", "s"}, {"y"}).output("y");
      time_model("RMSNorm " + tn + " " + dims_to_string(d), r,
                 {{"x", gputest::random_tensor(dt, d, 1)}, {"s", gputest::random_tensor(dt, {h}, 2)}});
    }
    struct R {
      const char* op;
      std::vector<int64_t> dims, axes;
    };
    for (const R& c : {R{"ReduceMean", {8192, 4096}, {1}}, R{"ReduceSum", {8192, 4096}, {0}},
                       R{"ReduceMean", {32, 256, 56, 56}, {2, 3}}, R{"ReduceSum", {1 << 26}, {0}},
                       R{"ReduceMax", {64, 4096, 8}, {1}}, R{"ReduceSum", {64, 128, 64}, {0, 2}},
                       R{"ReduceLogSumExp", {4096, 4096}, {1}}}) {
      ModelBuilder b(18);
      b.input("x", dt, sdims(c.dims))
          .initializer("axes", testing::i64_tensor({static_cast<int64_t>(c.axes.size())}, c.axes))
          .node(c.op, {"x", "axes"}, {"y"}).output("y");
      time_model(std::string(c.op) + " " + tn + " " + dims_to_string(c.dims) + " axes " + dims_to_string(c.axes), b,
                 {{"x", gputest::random_tensor(dt, c.dims, 1)}});
    }
    {
      std::vector<int64_t> d = {1024, 32000};
      ModelBuilder b(13);
      b.input("x", dt, sdims(d)).node("ArgMax", {"x"}, {"y"}).attr("axis", int64_t{1}).output("y");
      time_model("ArgMax " + tn + " " + dims_to_string(d), b, {{"x", gputest::random_tensor(dt, d, 1)}});
    }
    {
      std::vector<int64_t> d = {32, 64, 112, 112};
      ModelBuilder b(15);
      b.input("x", dt, sdims(d)).input("s", dt, {"64"}).input("b", dt, {"64"}).input("m", dt, {"64"})
          .input("v", dt, {"64"}).node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"}).output("y");
      Tensor p = gputest::uniform_tensor(dt, {64}, 2, 0.5, 1.0);
      time_model("BatchNorm " + tn + " " + dims_to_string(d), b,
                 {{"x", gputest::random_tensor(dt, d, 1)}, {"s", p}, {"b", p}, {"m", p}, {"v", p}});
      std::vector<int64_t> di = {8, 64, 128, 128};
      ModelBuilder in;
      in.input("x", dt, sdims(di)).input("s", dt, {"64"}).input("b", dt, {"64"})
          .node("InstanceNormalization", {"x", "s", "b"}, {"y"}).output("y");
      time_model("InstanceNorm " + tn + " " + dims_to_string(di), in,
                 {{"x", gputest::random_tensor(dt, di, 1)}, {"s", p}, {"b", p}});
      for (std::vector<int64_t> dg : {std::vector<int64_t>{64, 2048, 7, 7}, std::vector<int64_t>{32, 256, 56, 56}}) {
        time_model("GlobalAveragePool " + tn + " " + dims_to_string(dg), unary("GlobalAveragePool", dt, dg),
                   {{"x", gputest::random_tensor(dt, dg, 1)}});
      }
    }
  }
}

}  // namespace
}  // namespace kiln
