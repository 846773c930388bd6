// Concat and Split (src/backends/cuda/kernels/concat_split.cu) against the CPU reference: every element
// width, axes 0 / middle / last / negative, parts of uneven and zero width, more parts than one launch takes
// (16), Split's attribute (opset 11), input (13) and num_outputs (18) forms, and misaligned parts.
#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

void concat_case(DType dt, const std::vector<Dims>& parts, int64_t axis, uint64_t seed,
                 bool misaligned = false) {
  SCOPED_TRACE(trace("Concat", dt, parts[0],
                     "parts " + std::to_string(parts.size()) + " axis " + std::to_string(axis)));
  ModelBuilder m;
  std::map<std::string, Tensor> inputs;
  std::vector<std::string> names;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string n = "x" + std::to_string(i);
    m.input(n, dt, sdims(parts[i]));
    inputs[n] = values(dt, parts[i], seed + i);
    names.push_back(n);
  }
  m.node("Concat", names, {"y"}).attr("axis", axis).output("y");
  ewtest::check(m, inputs, 1, std::nullopt, misaligned);
}

TEST(GpuConcat, AxesAndDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : all_dtypes()) {
    concat_case(dt, {{3}, {1}, {5}}, 0, seed += 5);
    concat_case(dt, {{2, 3}, {4, 3}}, 0, seed += 5);
    concat_case(dt, {{2, 3, 4}, {2, 1, 4}, {2, 7, 4}}, 1, seed += 5);
    concat_case(dt, {{2, 3, 4}, {2, 3, 1}, {2, 3, 3}}, -1, seed += 5);
    concat_case(dt, {{2, 3, 4}, {2, 0, 4}, {2, 2, 4}}, 1, seed += 5);  // an empty part
    concat_case(dt, {{0, 3}, {0, 3}}, 1, seed += 5);                   // empty output
    concat_case(dt, {{2, 5, 7}}, 1, seed += 5);                        // a single part
    concat_case(dt, {{1, 2, 16}, {1, 2, 16}}, 2, seed += 5);           // wide units
  }
}

TEST(GpuConcat, ManyPartsLargeAndMisaligned) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 100;
  for (DType dt : {DType::kF32, DType::kF16, DType::kI64, DType::kBool}) {
    std::vector<Dims> many;
    for (int i = 0; i < 37; ++i) many.push_back({3, 1 + i % 4, 5});
    concat_case(dt, many, 1, seed += 50);
    concat_case(dt, {{2, 12, 127, 64}, {2, 12, 1, 64}}, 2, seed += 50, true);  // KV cache append
    concat_case(dt, {{1, 1, 768}, {1, 196, 768}}, 1, seed += 50, true);        // ViT class token
    concat_case(dt, {{33, 31}, {33, 1}, {33, 17}}, 1, seed += 50, true);
  }
}

// opset 11: 'split' attribute (or equal parts); 13: split input; 18: num_outputs.
void split_case(DType dt, const Dims& d, int64_t axis, int64_t opset, const std::vector<int64_t>& split,
                size_t outputs, uint64_t seed, bool misaligned = false) {
  SCOPED_TRACE(trace("Split", dt, d,
                     "opset " + std::to_string(opset) + " axis " + std::to_string(axis) + " split " +
                         dims_to_string(split) + " outputs " + std::to_string(outputs)));
  ModelBuilder m(opset);
  m.input("x", dt, sdims(d));
  std::vector<std::string> outs;
  for (size_t i = 0; i < outputs; ++i) outs.push_back("y" + std::to_string(i));
  std::vector<std::string> ins = {"x"};
  if (opset >= 13 && !split.empty()) {
    m.initializer("split", testing::i64_tensor({static_cast<int64_t>(split.size())}, split));
    ins.push_back("split");
  }
  m.node("Split", ins, outs).attr("axis", axis);
  if (opset < 13 && !split.empty()) m.attr("split", split);
  if (opset >= 18 && split.empty()) m.attr("num_outputs", static_cast<int64_t>(outputs));
  for (const auto& o : outs) m.output(o);
  ewtest::check(m, {{"x", values(dt, d, seed)}}, 1, std::nullopt, misaligned);
}

TEST(GpuSplit, FormsAndDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : all_dtypes()) {
    split_case(dt, {6, 5}, 0, 11, {}, 3, seed++);
    split_case(dt, {4, 7}, 1, 11, {2, 0, 5}, 3, seed++);  // an empty part
    split_case(dt, {3, 7, 2}, -2, 13, {1, 4, 2}, 3, seed++);
    split_case(dt, {2, 7, 3}, 1, 18, {}, 3, seed++);   // uneven: 3, 3, 1
    split_case(dt, {2, 2304}, 1, 18, {}, 3, seed++);   // GPT-2 qkv
    split_case(dt, {0, 4}, 1, 13, {1, 3}, 2, seed++);  // empty input
    split_case(dt, {5}, 0, 13, {5}, 1, seed++);
  }
}

TEST(GpuSplit, LargeAndMisaligned) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 200;
  for (DType dt : {DType::kF32, DType::kF16, DType::kI64, DType::kU8}) {
    split_case(dt, {2, 128, 2304}, 2, 18, {}, 3, seed++, true);
    split_case(dt, {2, 129, 35}, 2, 13, {1, 33, 1}, 3, seed++, true);
    std::vector<int64_t> parts(20, 1);
    split_case(dt, {3, 20, 4}, 1, 13, parts, 20, seed++);
  }
}

}  // namespace
}  // namespace kiln
