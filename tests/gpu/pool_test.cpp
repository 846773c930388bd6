// MaxPool / AveragePool on the GPU against the CPU reference: cuDNN-expressible windows (symmetric pads,
// floor-mode sizes, 1-D/2-D/3-D) and the direct kernel (ceil_mode windows, asymmetric/SAME pads, dilations,
// 4-D spatial), count_include_pad both ways, padding that must not win a max, NaN, f32/f16/bf16.
#include <limits>

#include "gpu/gpu_harness.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

std::vector<std::string> str_dims(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (auto x : d) s.push_back(std::to_string(x));
  return s;
}

// Random values in [-1, 1) + shift, in dtype dt.
Tensor shifted_tensor(DType dt, const std::vector<int64_t>& dims, uint64_t seed, float shift) {
  Tensor f = testing::random_f32(dims, seed);
  Tensor out(dt, dims);
  for (int64_t i = 0; i < f.numel(); ++i) {
    const float v = f.data<float>()[i] + shift;
    if (dt == DType::kF32) out.data<float>()[i] = v;
    if (dt == DType::kF16) out.data<uint16_t>()[i] = float_to_half(v);
    if (dt == DType::kBF16) out.data<uint16_t>()[i] = float_to_bf16(v);
  }
  return out;
}

struct PoolCase {
  std::vector<int64_t> x, kernel;
  std::vector<int64_t> strides, dilations, pads;  // empty: attribute omitted
  std::string auto_pad;                           // empty: attribute omitted
  int64_t ceil_mode = -1;                         // -1: attribute omitted
  int64_t count_include_pad = -1;                 // AveragePool only; -1: attribute omitted
  float shift = 0.f;                              // added to the random inputs (negative: padding must not win)
};

void check_pool(const std::string& op, DType dt, const PoolCase& c, uint64_t seed, int opset = 19) {
  SCOPED_TRACE(op + " " + std::string(dtype_name(dt)) + " X " + dims_to_string(c.x) + " kernel " +
               dims_to_string(c.kernel) + " strides " + dims_to_string(c.strides) + " pads " + dims_to_string(c.pads) +
               " dilations " + dims_to_string(c.dilations) + " auto_pad " + c.auto_pad + " ceil " +
               std::to_string(c.ceil_mode) + " include_pad " + std::to_string(c.count_include_pad));
  ModelBuilder b(opset);
  b.input("x", dt, str_dims(c.x)).node(op, {"x"}, {"y"}).attr("kernel_shape", c.kernel);
  if (!c.strides.empty()) b.attr("strides", c.strides);
  if (!c.dilations.empty()) b.attr("dilations", c.dilations);
  if (!c.pads.empty()) b.attr("pads", c.pads);
  if (!c.auto_pad.empty()) b.attr("auto_pad", c.auto_pad);
  if (c.ceil_mode >= 0) b.attr("ceil_mode", c.ceil_mode);
  if (c.count_include_pad >= 0 && op == "AveragePool") b.attr("count_include_pad", c.count_include_pad);
  b.output("y");
  gputest::expect_gpu_matches_cpu(b, {{"x", shifted_tensor(dt, c.x, seed, c.shift)}});
}

const DType kFloatTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

TEST(GpuPool, MaxPoolCudnnWindows) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    // ResNet: 3x3 stride 2 pads 1, all inputs negative so a zero from the padding would win.
    check_pool("MaxPool", dt, {.x = {1, 16, 32, 32}, .kernel = {3, 3}, .strides = {2, 2}, .pads = {1, 1, 1, 1},
                               .shift = -2.f}, 1);
    check_pool("MaxPool", dt, {.x = {3, 7, 7, 7}, .kernel = {2, 2}, .strides = {2, 2}}, 2);
    check_pool("MaxPool", dt, {.x = {3, 3, 17, 5}, .kernel = {5, 3}, .strides = {1, 2}, .pads = {2, 1, 2, 1},
                               .shift = -2.f}, 3);
    check_pool("MaxPool", dt, {.x = {1, 1, 1, 1}, .kernel = {1, 1}}, 4);
    // ceil_mode that adds no window stays on cuDNN: (17 - 3) / 2 is exact.
    check_pool("MaxPool", dt, {.x = {1, 7, 17, 17}, .kernel = {3, 3}, .strides = {2, 2}, .ceil_mode = 1}, 5);
    // Large enough for many blocks.
    check_pool("MaxPool", dt, {.x = {3, 16, 128, 127}, .kernel = {3, 3}, .pads = {1, 1, 1, 1}}, 6);
  }
}

TEST(GpuPool, MaxPoolDirectWindows) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    // ceil_mode adding a last partial window: 16 -> 8 rather than 7.
    check_pool("MaxPool", dt, {.x = {1, 7, 16, 16}, .kernel = {3, 3}, .strides = {2, 2}, .ceil_mode = 1,
                               .shift = -2.f}, 11);
    // ceil_mode with pads: the extra window would start in the end padding and is dropped, so this one keeps
    // the floor size (and runs on cuDNN).
    check_pool("MaxPool", dt, {.x = {3, 3, 5, 7}, .kernel = {2, 2}, .strides = {2, 2}, .pads = {1, 1, 1, 1},
                               .ceil_mode = 1, .shift = -2.f}, 12);
    check_pool("MaxPool", dt, {.x = {1, 16, 32, 32}, .kernel = {3, 3}, .strides = {2, 2}, .pads = {0, 0, 1, 1},
                               .shift = -2.f}, 13);
    check_pool("MaxPool", dt, {.x = {1, 3, 32, 17}, .kernel = {3, 3}, .strides = {2, 2}, .auto_pad = "SAME_UPPER",
                               .shift = -2.f}, 14);
    check_pool("MaxPool", dt, {.x = {1, 3, 32, 17}, .kernel = {2, 2}, .strides = {2, 2}, .auto_pad = "SAME_LOWER",
                               .shift = -2.f}, 15);
    check_pool("MaxPool", dt, {.x = {3, 7, 17, 17}, .kernel = {3, 3}, .dilations = {2, 2}, .pads = {2, 2, 2, 2},
                               .shift = -2.f}, 16);
  }
}

TEST(GpuPool, AveragePoolCountIncludePadBothWays) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    for (int64_t include : {0, 1}) {
      check_pool("AveragePool", dt, {.x = {3, 7, 17, 17}, .kernel = {3, 3}, .strides = {2, 2},
                                     .pads = {1, 1, 1, 1}, .count_include_pad = include}, 21);
      check_pool("AveragePool", dt, {.x = {1, 16, 5, 7}, .kernel = {5, 5}, .pads = {2, 2, 2, 2},
                                     .count_include_pad = include}, 22);
      // Direct kernel: asymmetric pads, ceil_mode windows past the end padding, SAME_UPPER.
      check_pool("AveragePool", dt, {.x = {1, 7, 17, 16}, .kernel = {3, 3}, .strides = {2, 2},
                                     .pads = {0, 1, 1, 2}, .count_include_pad = include}, 23);
      check_pool("AveragePool", dt, {.x = {3, 3, 16, 16}, .kernel = {3, 3}, .strides = {2, 2},
                                     .pads = {1, 1, 1, 1}, .ceil_mode = 1, .count_include_pad = include}, 24);
      check_pool("AveragePool", dt, {.x = {1, 3, 32, 17}, .kernel = {3, 3}, .strides = {2, 2},
                                     .auto_pad = "SAME_UPPER", .count_include_pad = include}, 25);
      check_pool("AveragePool", dt, {.x = {1, 3, 17, 17}, .kernel = {3, 3}, .dilations = {2, 2},
                                     .pads = {1, 1, 1, 1}, .count_include_pad = include}, 26);
    }
    // Attribute omitted (defaults to 0), global-sized window.
    check_pool("AveragePool", dt, {.x = {3, 16, 7, 7}, .kernel = {7, 7}}, 27);
    check_pool("AveragePool", dt, {.x = {3, 16, 128, 127}, .kernel = {2, 2}, .strides = {2, 2}}, 28);
  }
}

TEST(GpuPool, OneDAndThreeD) {
  KILN_REQUIRE_GPU();
  for (DType dt : kFloatTypes) {
    for (const char* op : {"MaxPool", "AveragePool"}) {
      check_pool(op, dt, {.x = {3, 7, 17}, .kernel = {3}, .strides = {2}, .pads = {1, 1}, .count_include_pad = 1,
                          .shift = -2.f}, 31);
      check_pool(op, dt, {.x = {1, 16, 32}, .kernel = {4}, .strides = {3}, .ceil_mode = 1}, 32);  // direct
      check_pool(op, dt, {.x = {1, 3, 5, 7, 7}, .kernel = {2, 3, 3}, .strides = {1, 2, 2},
                          .pads = {0, 1, 1, 0, 1, 1}, .shift = -2.f}, 33);
      check_pool(op, dt, {.x = {3, 1, 5, 5, 17}, .kernel = {3, 3, 3}, .strides = {2, 2, 2},
                          .pads = {1, 0, 1, 0, 1, 1}, .count_include_pad = 1}, 34);  // direct: asymmetric
      check_pool(op, dt, {.x = {1, 3, 7, 7, 7}, .kernel = {2, 2, 2}, .strides = {2, 2, 2}, .ceil_mode = 1}, 35);
      // 4 spatial dims: direct kernel.
      check_pool(op, dt, {.x = {1, 3, 4, 5, 3, 6}, .kernel = {2, 3, 1, 2}, .strides = {1, 2, 1, 2},
                          .pads = {0, 1, 0, 1, 1, 1, 0, 0}, .count_include_pad = 0}, 36);
    }
  }
}

TEST(GpuPool, MaxPoolPropagatesNaN) {
  KILN_REQUIRE_GPU();
  Tensor x = shifted_tensor(DType::kF32, {1, 2, 7, 7}, 41, 0.f);
  x.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
  x.data<float>()[49 + 24] = std::numeric_limits<float>::quiet_NaN();
  for (int64_t ceil : {0, 1}) {  // cuDNN and the direct kernel
    ModelBuilder b;
    b.input("x", DType::kF32, {"1", "2", "7", "7"})
        .node("MaxPool", {"x"}, {"y"})
        .attr("kernel_shape", std::vector<int64_t>{2, 2})
        .attr("strides", std::vector<int64_t>{2, 2})
        .attr("ceil_mode", ceil)
        .output("y");
    gputest::expect_gpu_matches_cpu(b, {{"x", x}});
  }
}

// MaxPool's Indices output is left to the CPU reference: the model still runs.
TEST(GpuPool, MaxPoolWithIndicesFallsBack) {
  KILN_REQUIRE_GPU();
  ModelBuilder b;
  b.input("x", DType::kF32, {"1", "3", "7", "7"})
      .node("MaxPool", {"x"}, {"y", "i"})
      .attr("kernel_shape", std::vector<int64_t>{3, 3})
      .attr("strides", std::vector<int64_t>{2, 2})
      .output("y")
      .output("i");
  gputest::expect_gpu_matches_cpu(b, {{"x", shifted_tensor(DType::kF32, {1, 3, 7, 7}, 51, 0.f)}}, 0);
}

TEST(GpuPool, EmptyBatch) {
  KILN_REQUIRE_GPU();
  for (const char* op : {"MaxPool", "AveragePool"}) {
    ModelBuilder b;
    b.input("x", DType::kF32, {"0", "3", "5", "5"})
        .node(op, {"x"}, {"y"})
        .attr("kernel_shape", std::vector<int64_t>{3, 3})
        .output("y");
    gputest::expect_gpu_matches_cpu(b, {{"x", Tensor(DType::kF32, {0, 3, 5, 5})}});
  }
}

}  // namespace
}  // namespace kiln
