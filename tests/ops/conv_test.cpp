#include <gtest/gtest.h>

#include "ops/nn_test_util.h"

namespace kiln {
namespace {

using namespace nn_test;

struct ConvCfg {
  std::vector<int64_t> x, w, strides, dilations, pads;
  int64_t group = 1;
  bool bias = true;
};

std::vector<int64_t> row_strides(const std::vector<int64_t>& d) {
  std::vector<int64_t> s(d.size(), 1);
  for (size_t i = d.size() - 1; i-- > 0;) s[i] = s[i + 1] * d[i + 1];
  return s;
}

bool next(std::vector<int64_t>& idx, const std::vector<int64_t>& dims) {
  for (size_t d = dims.size(); d-- > 0;) {
    if (++idx[d] < dims[d]) return true;
    idx[d] = 0;
  }
  return false;
}

// Direct N-D convolution from the ONNX definition.
std::vector<double> conv_ref(const Tensor& x, const Tensor& w, const Tensor* b, const ConvCfg& c,
                             std::vector<int64_t>& out_dims) {
  const size_t n = x.rank() - 2;
  std::vector<int64_t> osp;
  for (size_t i = 0; i < n; ++i)
    osp.push_back((x.dim(2 + i) + c.pads[i] + c.pads[n + i] - (w.dim(2 + i) - 1) * c.dilations[i] - 1) / c.strides[i] + 1);
  out_dims = {x.dim(0), w.dim(0)};
  out_dims.insert(out_dims.end(), osp.begin(), osp.end());
  const auto xs = row_strides(x.dims()), ws = row_strides(w.dims());
  const int64_t cg = x.dim(1) / c.group, mg = w.dim(0) / c.group;
  const std::vector<int64_t> ksp(w.dims().begin() + 2, w.dims().end());
  std::vector<double> y;
  for (int64_t bn = 0; bn < x.dim(0); ++bn)
    for (int64_t m = 0; m < w.dim(0); ++m) {
      std::vector<int64_t> o(n, 0);
      do {
        double s = b ? at(*b, m) : 0.0;
        for (int64_t ci = 0; ci < cg; ++ci) {
          std::vector<int64_t> k(n, 0);
          do {
            int64_t xo = bn * xs[0] + ((m / mg) * cg + ci) * xs[1], wo = m * ws[0] + ci * ws[1];
            bool ok = true;
            for (size_t d = 0; d < n; ++d) {
              const int64_t p = o[d] * c.strides[d] - c.pads[d] + k[d] * c.dilations[d];
              ok = ok && p >= 0 && p < x.dim(2 + d);
              xo += p * xs[2 + d];
              wo += k[d] * ws[2 + d];
            }
            if (ok) s += at(x, xo) * at(w, wo);
          } while (next(k, ksp));
        }
        y.push_back(s);
      } while (next(o, osp));
    }
  return y;
}

void check_conv(const ConvCfg& c, DType dt = DType::kF32) {
  Tensor x = random_f32(c.x, 11), w = random_f32(c.w, 12), b = random_f32({c.w[0]}, 13);
  std::vector<int64_t> od;
  const auto want = conv_ref(x, w, c.bias ? &b : nullptr, c, od);
  if (dt == DType::kF64) {
    auto widen = [](const Tensor& t) {
      Tensor d(DType::kF64, t.dims());
      for (int64_t i = 0; i < t.numel(); ++i) d.data<double>()[i] = t.data<float>()[i];
      return d;
    };
    x = widen(x), w = widen(w), b = widen(b);
  }
  ModelBuilder mb(17);
  mb.input("x", dt, dim_strs(c.x)).initializer("w", w);
  std::vector<std::string> ins{"x", "w"};
  if (c.bias) mb.initializer("b", b), ins.push_back("b");
  mb.node("Conv", ins, {"y"}).attr("strides", c.strides).attr("dilations", c.dilations).attr("pads", c.pads)
      .attr("group", c.group).output("y");
  Tensor y = run_y(mb, {{"x", x}});
  EXPECT_EQ(y.dims(), od);
  expect_near(y, want, 1e-4);
}

TEST(NnConv, TwoDWithPadsStridesDilationsGroups) {
  check_conv({{2, 4, 7, 5}, {6, 2, 3, 2}, {2, 1}, {1, 2}, {1, 0, 2, 1}, 2});
  check_conv({{1, 3, 9, 9}, {5, 3, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false});
  check_conv({{1, 4, 6, 6}, {8, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 4});  // depthwise x2
  check_conv({{3, 5, 4, 3}, {7, 5, 1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1});   // pointwise fast path
}

TEST(NnConv, OneDThreeDAndDouble) {
  check_conv({{2, 3, 11}, {4, 3, 3}, {3}, {2}, {2, 1}, 1});
  check_conv({{1, 2, 4, 5, 3}, {3, 2, 2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {0, 1, 1, 1, 0, 0}, 1});
  check_conv({{1, 2, 5, 5}, {2, 1, 3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 2}, DType::kF64);
  check_conv({{2, 3, 4, 5, 6}, {3, 1, 2, 3, 2}, {2, 1, 3}, {1, 2, 1}, {1, 0, 1, 0, 2, 1}, 3});  // depthwise 3-D
  check_conv({{1, 2, 9}, {6, 1, 4}, {3}, {2}, {5, 4}, 2});
}

TEST(NnConv, AutoPadAndEmptyBatch) {
  ModelBuilder mb(17);
  mb.input("x", DType::kF32, {"1", "1", "5", "5"}).initializer("w", f32_tensor({1, 1, 3, 3}, std::vector<float>(9, 1.f)))
      .node("Conv", {"x", "w"}, {"y"}).attr("auto_pad", std::string("SAME_UPPER")).attr("strides", std::vector<int64_t>{2, 2})
      .output("y");
  Tensor x(DType::kF32, {1, 1, 5, 5});
  for (int i = 0; i < 25; ++i) x.data<float>()[i] = 1.f;
  // Output 3x3, total padding 2 per axis split 1/1: corners see 4 ones, edges 6, the centre 9.
  expect_near(run_y(mb, {{"x", x}}), {4, 6, 4, 6, 9, 6, 4, 6, 4});

  ModelBuilder e(17);
  e.input("x", DType::kF32, {"n", "2", "3"}).initializer("w", random_f32({4, 2, 2}, 1))
      .node("Conv", {"x", "w"}, {"y"}).output("y");
  Tensor y = run_y(e, {{"x", Tensor(DType::kF32, {0, 2, 3})}});
  EXPECT_EQ(y.dims(), (std::vector<int64_t>{0, 4, 2}));
}

TEST(NnConv, SymbolicShapes) {
  ModelBuilder mb(17);
  mb.input("x", DType::kF32, {"N", "3", "H", "224"}).initializer("w", random_f32({8, 3, 3, 3}, 1))
      .node("Conv", {"x", "w"}, {"y"}).attr("pads", std::vector<int64_t>{1, 1, 1, 1}).output("y");
  EXPECT_EQ(built_shape(mb), "[N,8,H,224]");
  ModelBuilder s(17);
  s.input("x", DType::kF32, {"N", "3", "H", "224"}).initializer("w", random_f32({8, 3, 7, 7}, 1))
      .node("Conv", {"x", "w"}, {"y"}).attr("pads", std::vector<int64_t>{3, 3, 3, 3})
      .attr("strides", std::vector<int64_t>{2, 2}).output("y");
  EXPECT_EQ(built_shape(s), "[N,8,?,112]");
}

TEST(NnConv, ChannelMismatchError) {
  ModelBuilder mb(17);
  mb.input("x", DType::kF32, {"1", "4", "8", "8"}).initializer("w", random_f32({2, 3, 3, 3}, 1))
      .node("Conv", {"x", "w"}, {"y"}, "conv1").output("y");
  std::string e = build_error(mb);
  EXPECT_NE(e.find("node 'conv1' (Conv): input X has 4 channels but weight W expects 3 (group=1)"), std::string::npos)
      << e;
  ModelBuilder k(17);
  k.input("x", DType::kF32, {"1", "3", "2", "2"}).initializer("w", random_f32({2, 3, 3, 3}, 1))
      .node("Conv", {"x", "w"}, {"y"}).output("y");
  e = build_error(k);
  EXPECT_NE(e.find("too small"), std::string::npos) << e;
}

// ConvTranspose from its definition: every input pixel scatters kernel * value into the output.
std::vector<double> conv_transpose_ref(const Tensor& x, const Tensor& w, const std::vector<int64_t>& s,
                                       const std::vector<int64_t>& dl, const std::vector<int64_t>& pads,
                                       const std::vector<int64_t>& out_pad, int64_t group,
                                       std::vector<int64_t>& out_dims) {
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3), kh = w.dim(2), kw = w.dim(3);
  const int64_t mg = w.dim(1), m = mg * group, cg = c / group;
  const int64_t oh = s[0] * (h - 1) + out_pad[0] + (kh - 1) * dl[0] + 1 - pads[0] - pads[2];
  const int64_t ow = s[1] * (wd - 1) + out_pad[1] + (kw - 1) * dl[1] + 1 - pads[1] - pads[3];
  out_dims = {n, m, oh, ow};
  std::vector<double> y(n * m * oh * ow, 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < wd; ++j)
          for (int64_t mo = 0; mo < mg; ++mo)
            for (int64_t p = 0; p < kh; ++p)
              for (int64_t q = 0; q < kw; ++q) {
                const int64_t yi = i * s[0] + p * dl[0] - pads[0], yj = j * s[1] + q * dl[1] - pads[1];
                if (yi < 0 || yi >= oh || yj < 0 || yj >= ow) continue;
                const int64_t oc = (ci / cg) * mg + mo;
                y[((b * m + oc) * oh + yi) * ow + yj] +=
                    at(x, ((b * c + ci) * h + i) * wd + j) * at(w, ((ci * mg + mo) * kh + p) * kw + q);
              }
  return y;
}

TEST(NnConvTranspose, StridesPadsDilationsGroupsOutputPadding) {
  Tensor x = random_f32({2, 4, 3, 4}, 21), w = random_f32({4, 3, 3, 2}, 22);
  const std::vector<int64_t> s{2, 3}, dl{1, 2}, pads{1, 0, 0, 2}, op{1, 2};
  std::vector<int64_t> od;
  auto want = conv_transpose_ref(x, w, s, dl, pads, op, 2, od);
  ModelBuilder mb(17);
  mb.input("x", DType::kF32, {"2", "4", "3", "4"}).initializer("w", w).node("ConvTranspose", {"x", "w"}, {"y"})
      .attr("strides", s).attr("dilations", dl).attr("pads", pads).attr("output_padding", op)
      .attr("group", int64_t(2)).output("y");
  Tensor y = run_y(mb, {{"x", x}});
  EXPECT_EQ(y.dims(), od);
  expect_near(y, want);
}

TEST(NnConvTranspose, OutputShapeAndErrors) {
  // output_shape one past the full size: the extra row and column only get the bias.
  ModelBuilder mb(17);
  mb.input("x", DType::kF32, {"1", "1", "2", "2"}).initializer("w", f32_tensor({1, 1, 2, 2}, {1, 1, 1, 1}))
      .initializer("b", f32_tensor({1}, {0.5f})).node("ConvTranspose", {"x", "w", "b"}, {"y"})
      .attr("strides", std::vector<int64_t>{2, 2}).attr("output_shape", std::vector<int64_t>{5, 5}).output("y");
  Tensor y = run_y(mb, {{"x", f32_tensor({1, 1, 2, 2}, {1, 2, 3, 4})}});
  ASSERT_EQ(y.dims(), (std::vector<int64_t>{1, 1, 5, 5}));
  expect_near(y, {1.5, 1.5, 2.5, 2.5, 0.5, 1.5, 1.5, 2.5, 2.5, 0.5, 3.5, 3.5, 4.5, 4.5, 0.5,
                  3.5, 3.5, 4.5, 4.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5});

  ModelBuilder e(17);
  e.input("x", DType::kF32, {"1", "3", "4", "4"}).initializer("w", random_f32({2, 2, 3, 3}, 1))
      .node("ConvTranspose", {"x", "w"}, {"y"}).output("y");
  std::string msg = build_error(e);
  EXPECT_NE(msg.find("input X has 3 channels but weight W [2,2,3,3] expects 2"), std::string::npos) << msg;
  ModelBuilder sym(17);
  sym.input("x", DType::kF32, {"N", "2", "4", "4"}).initializer("w", random_f32({2, 5, 3, 3}, 1))
      .node("ConvTranspose", {"x", "w"}, {"y"}).attr("strides", std::vector<int64_t>{2, 2}).output("y");
  EXPECT_EQ(built_shape(sym), "[N,5,9,9]");
}

}  // namespace
}  // namespace kiln
