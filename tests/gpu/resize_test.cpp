// Resize / Upsample (src/backends/cuda/kernels/resize.cu) against the CPU reference: nearest (every
// nearest_mode) and linear over every coordinate mode the kernel takes, up- and down-scaling by integer and
// fractional scales and by sizes, 2-D images (NCHW) and 1-D / 3-D inputs, f32/f16/bf16/f64/u8/i32, Resize-10
// and Upsample-9. The kernel reproduces the reference's arithmetic step by step, so results must match
// exactly.
#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

const gputest::Tolerance kExact{0.0, 0.0};

struct R {
  std::string mode, coord, nearest;
  Dims d;
  std::vector<float> scales;  // empty: sizes
  std::vector<int64_t> sizes;
};

Tensor f32_vec(const std::vector<float>& v) {
  return testing::f32_tensor({static_cast<int64_t>(v.size())}, v);
}

void resize_case(DType dt, const R& r, uint64_t seed) {
  SCOPED_TRACE(trace("Resize", dt, r.d,
                     r.mode + " " + r.coord + " " + r.nearest + " scales " +
                         fmt::format("{}", fmt::join(r.scales, ",")) + " sizes " + dims_to_string(r.sizes)));
  ModelBuilder m(13);
  m.input("x", dt, sdims(r.d));
  std::vector<std::string> ins = {"x", ""};
  if (!r.scales.empty()) {
    m.initializer("scales", f32_vec(r.scales));
    ins.push_back("scales");
  } else {
    ins.push_back("");
    m.initializer("sizes", testing::i64_tensor({static_cast<int64_t>(r.sizes.size())}, r.sizes));
    ins.push_back("sizes");
  }
  m.node("Resize", ins, {"y"}).attr("mode", r.mode).attr("coordinate_transformation_mode", r.coord);
  if (!r.nearest.empty()) m.attr("nearest_mode", r.nearest);
  m.output("y");
  ewtest::check(m, {{"x", values(dt, r.d, seed)}}, 1, kExact);
}

TEST(GpuResize, NearestAndLinearModes) {
  KILN_REQUIRE_GPU();
  const std::vector<std::string> coords = {"half_pixel",    "half_pixel_symmetric", "pytorch_half_pixel",
                                           "align_corners", "asymmetric",           "tf_half_pixel_for_nn"};
  const std::vector<R> shapes = {
      {"", "", "", {1, 2, 5, 7}, {1, 1, 2, 2}, {}},       {"", "", "", {1, 1, 6, 9}, {1, 1, 0.5f, 0.34f}, {}},
      {"", "", "", {2, 3, 4, 5}, {1, 1, 1.7f, 2.3f}, {}}, {"", "", "", {1, 2, 7, 3}, {}, {1, 2, 3, 8}},
      {"", "", "", {1, 1, 1, 4}, {}, {1, 1, 3, 1}},       {"", "", "", {9}, {2.5f}, {}},
      {"", "", "", {2, 5, 6}, {1, 0.6f, 1.5f}, {}},
  };
  uint64_t seed = 1;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64, DType::kU8, DType::kI32}) {
    for (const std::string& coord : coords) {
      for (R r : shapes) {
        r.coord = coord;
        r.mode = "linear";
        r.nearest = "";
        if (coord != "tf_half_pixel_for_nn") resize_case(dt, r, seed++);  // only meant for nearest
        r.mode = "nearest";
        for (const char* nm : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}) {
          r.nearest = nm;
          resize_case(dt, r, seed++);
        }
      }
    }
  }
}

TEST(GpuResize, LargeImages) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 500;
  for (DType dt : {DType::kF32, DType::kF16}) {
    resize_case(dt, {"linear", "half_pixel", "", {2, 3, 61, 67}, {1, 1, 2, 2}, {}}, seed++);
    resize_case(dt, {"nearest", "asymmetric", "floor", {2, 3, 61, 67}, {1, 1, 2, 2}, {}}, seed++);
    resize_case(dt, {"linear", "align_corners", "", {1, 3, 224, 224}, {}, {1, 3, 299, 299}}, seed++);
    resize_case(dt, {"linear", "pytorch_half_pixel", "", {1, 8, 100, 100}, {}, {1, 8, 37, 41}}, seed++);
  }
}

TEST(GpuResize, Resize10AndUpsample9) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 900;
  for (DType dt : {DType::kF32, DType::kF16, DType::kU8}) {
    for (const char* mode : {"nearest", "linear"}) {
      for (int64_t opset : {9, 10}) {
        SCOPED_TRACE(trace(opset == 9 ? "Upsample-9" : "Resize-10", dt, {1, 2, 5, 6}, mode));
        ModelBuilder m(opset);
        m.input("x", dt, {"1", "2", "5", "6"}).initializer("scales", f32_vec({1, 1, 2.5f, 1.5f}));
        m.node(opset == 9 ? "Upsample" : "Resize", {"x", "scales"}, {"y"})
            .attr("mode", std::string(mode))
            .output("y");
        ewtest::check(m, {{"x", values(dt, {1, 2, 5, 6}, seed++)}}, 1, kExact);
      }
    }
  }
}

}  // namespace
}  // namespace kiln
