// Pad (src/backends/cuda/kernels/pad.cu) against the CPU reference: every element width, the four modes with
// growing and cropping pads, opset 2 / 13 / 19 forms (attribute, constant_value input, axes), empty tensors.
#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

struct PadCase {
  Dims d;
  std::vector<int64_t> pads;
  std::vector<int64_t> axes;  // opset 18 axes input; empty: none
};

void pad_case(DType dt, const PadCase& c, const std::string& mode, int64_t opset, uint64_t seed) {
  SCOPED_TRACE(trace("Pad", dt, c.d,
                     mode + " pads " + dims_to_string(c.pads) + " axes " + dims_to_string(c.axes) +
                         " opset " + std::to_string(opset)));
  ModelBuilder m(opset);
  m.input("x", dt, sdims(c.d));
  std::vector<std::string> ins = {"x"};
  if (opset >= 11) {
    m.initializer("pads", testing::i64_tensor({static_cast<int64_t>(c.pads.size())}, c.pads));
    ins.push_back("pads");
    if (mode == "constant") {
      m.initializer("value", values(dt, {}, seed + 7));
      ins.push_back("value");
    } else if (!c.axes.empty()) {
      ins.push_back("");
    }
    if (!c.axes.empty()) {
      m.initializer("axes", testing::i64_tensor({static_cast<int64_t>(c.axes.size())}, c.axes));
      ins.push_back("axes");
    }
  }
  m.node("Pad", ins, {"y"}).attr("mode", mode);
  if (opset < 11) m.attr("pads", c.pads).attr("value", 1.5f);
  m.output("y");
  ewtest::check(m, {{"x", values(dt, c.d, seed)}});
}

TEST(GpuPad, ModesAndDtypes) {
  KILN_REQUIRE_GPU();
  const std::vector<PadCase> cases = {
      {{5}, {2, 3}, {}},
      {{3, 4}, {1, 2, 2, 1}, {}},
      {{3, 4}, {0, -1, 2, -2}, {}},         // crop and grow
      {{2, 3, 4}, {0, 2, 3, 0, 1, 3}, {}},  // pads up to the dim - 1 (reflect's limit)
      {{1, 3, 5, 7}, {0, 0, 1, 2, 0, 0, 2, 1}, {}},
      {{2, 3, 4}, {1, 2, 3, 1}, {-1, 1}},  // opset 18 axes
      {{4, 1}, {2, 1, 1, 2}, {}},          // a size-1 axis
  };
  uint64_t seed = 1;
  for (DType dt : all_dtypes())
    for (const char* mode : {"constant", "reflect", "edge", "wrap"})
      for (const PadCase& c : cases) {
        if (!c.axes.empty() || std::string(mode) == "wrap") {
          pad_case(dt, c, mode, 19, seed++);
        } else {
          pad_case(dt, c, mode, 13, seed++);
        }
      }
}

TEST(GpuPad, Opset2AttributesAndEmpty) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 300;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16, DType::kF64}) {
    pad_case(dt, {{3, 4}, {1, 0, 2, 3}, {}}, "constant", 2, seed++);
    pad_case(dt, {{3, 4}, {1, 2, 1, 2}, {}}, "reflect", 2, seed++);
  }
  pad_case(DType::kF32, {{0, 4}, {1, 1, 2, 0}, {}}, "constant", 13, seed++);  // empty input, constant output
  pad_case(DType::kF32, {{3, 4}, {0, -2, 0, -2}, {}}, "constant", 13, seed++);  // cropped to nothing
  pad_case(DType::kF16, {{2, 3, 130, 130}, {0, 0, 3, 3, 0, 0, 3, 3}, {}}, "reflect", 13, seed++);
}

}  // namespace
}  // namespace kiln
