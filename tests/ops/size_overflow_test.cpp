// Shapes whose sizes do not fit in 64 bits, as a crafted or corrupted model gives them: each is a build error
// naming the node, the op and the values, never a wrapped size that later allocates too little or aborts.
#include <cstdlib>

#include "ops/shape_ops_test_util.h"

namespace kiln {
namespace {

using namespace shape_ops_test;

constexpr const char* kInt64Max = "9223372036854775807";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Before: the output dim wrapped (2 + INT64_MAX < 0 reads as unknown), the build succeeded and `kiln run`
// aborted with std::bad_alloc.
TEST(SizeOverflow, ConcatAxisSumOverflows) {
  ModelBuilder b(13);
  b.input("a", DType::kU8, {kInt64Max}).input("b", DType::kU8, {"2"});
  b.node("Concat", {"a", "b"}, {"y"}, "cat").attr("axis", int64_t{0}).output("y");
  const std::string err = build_error(b);
  EXPECT_TRUE(contains(err, "node 'cat' (Concat)")) << err;
  EXPECT_TRUE(contains(err, "9223372036854775807 + 2 overflows")) << err;
}

// The exact model: an f32 input of INT64_MAX elements cannot exist, so the import refuses it.
TEST(SizeOverflow, InputWhoseByteSizeOverflowsIsRefused) {
  ModelBuilder b(13);
  b.input("a", DType::kF32, {kInt64Max}).input("b", DType::kF32, {"2"});
  b.node("Concat", {"a", "b"}, {"y"}, "cat").attr("axis", int64_t{0}).output("y");
  auto engine = Builder::build_from_bytes(b.bytes(), cpu_config());
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidModel);
  EXPECT_TRUE(contains(engine.status().message(), "graph input 'a' is declared f32[9223372036854775807]"))
      << engine.status().message();
}

// Before: "cannot reshape [4] (4 elements) to [4611686018427387904,4] (0 elements)".
TEST(SizeOverflow, ReshapeTargetCountOverflows) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"4"});
  b.initializer("shape", i64_tensor({2}, {int64_t{1} << 62, 4}));
  b.node("Reshape", {"x", "shape"}, {"y"}, "r").output("y");
  const std::string err = build_error(b);
  EXPECT_TRUE(contains(err, "node 'r' (Reshape)")) << err;
  EXPECT_TRUE(contains(err, "4611686018427387904 * 4 overflows")) << err;
  EXPECT_FALSE(contains(err, "(0 elements)")) << err;
}

TEST(SizeOverflow, ReshapeInferredDimAfterOverflow) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"4"});
  b.initializer("shape", i64_tensor({3}, {int64_t{1} << 32, int64_t{1} << 32, -1}));
  b.node("Reshape", {"x", "shape"}, {"y"}, "r").output("y");
  const std::string err = build_error(b);
  EXPECT_TRUE(contains(err, "4294967296 * 4294967296 overflows")) << err;
}

TEST(SizeOverflow, TileRepeatsOverflow) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"1024"});
  b.initializer("repeats", i64_tensor({1}, {int64_t{1} << 60}));
  b.node("Tile", {"x", "repeats"}, {"y"}, "t").output("y");
  const std::string err = build_error(b);
  EXPECT_TRUE(contains(err, "node 't' (Tile)")) << err;
  EXPECT_TRUE(contains(err, "1024 * 1152921504606846976 overflows")) << err;
}

// Each dim fits, their product does not: the check every op's output passes through catches it.
TEST(SizeOverflow, OutputBytesOverflowCaughtForEveryOp) {
  ModelBuilder b(13);
  b.initializer("shape", i64_tensor({2}, {int64_t{1} << 61, 4}));
  b.node("ConstantOfShape", {"shape"}, {"y"}, "fill").output("y");
  const std::string err = build_error(b);
  EXPECT_TRUE(contains(err, "node 'fill' (ConstantOfShape): output 0 ('y') would be f32[2305843009213693952,4]"))
      << err;
  EXPECT_TRUE(contains(err, "overflows a 64-bit byte count")) << err;
}

TEST(SizeOverflow, ExpandToOverflowingShape) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"1"});
  b.initializer("shape", i64_tensor({2}, {int64_t{1} << 40, int64_t{1} << 40}));
  b.node("Expand", {"x", "shape"}, {"y"}, "e").output("y");
  const std::string err = build_error(b);
  EXPECT_TRUE(contains(err, "node 'e' (Expand)")) << err;
  EXPECT_TRUE(contains(err, "overflows")) << err;
}

// Before: limit - start wrapped (signed overflow) and the length came out small or negative.
TEST(SizeOverflow, RangeLengthPastInt64) {
  ModelBuilder b(13);
  b.initializer("start", Tensor::scalar_i64(INT64_MIN)).initializer("limit", Tensor::scalar_i64(INT64_MAX));
  b.initializer("delta", Tensor::scalar_i64(1));
  b.node("Range", {"start", "limit", "delta"}, {"y"}, "range").output("y");
  const std::string err = build_error(b);
  EXPECT_TRUE(contains(err, "node 'range' (Range): start -9223372036854775808, limit 9223372036854775807 and delta 1"))
      << err;
  ModelBuilder f(13);
  f.initializer("start", Tensor::scalar_f32(0)).initializer("limit", Tensor::scalar_f32(1e30f));
  f.initializer("delta", Tensor::scalar_f32(1));
  f.node("Range", {"start", "limit", "delta"}, {"y"}, "frange").output("y");
  const std::string ferr = build_error(f);
  EXPECT_TRUE(contains(ferr, "node 'frange' (Range)")) << ferr;
  EXPECT_TRUE(contains(ferr, "past int64")) << ferr;
}

// Window arithmetic ((kernel-1)*dilation, in+pads) stays in range: a dilated extent past 2^62 and a stride past
// 2^31 are refused by name; a huge kernel alone is valid (Fuzz.HugePoolWindowCostsOnlyTheInput runs one).
TEST(SizeOverflow, PoolWindowAttributesBounded) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"1", "1", "8"});
  b.node("MaxPool", {"x"}, {"y"}, "pool")
      .attr("kernel_shape", std::vector<int64_t>{int64_t{1} << 40})
      .attr("dilations", std::vector<int64_t>{int64_t{1} << 30});
  b.output("y");
  const std::string err = build_error(b);
  EXPECT_TRUE(contains(err, "node 'pool' (MaxPool): kernel_shape [1099511627776] with dilations [1073741824] spans"))
      << err;
  ModelBuilder s(13);
  s.input("x", DType::kF32, {"1", "1", "8"});
  s.node("AveragePool", {"x"}, {"y"}, "avg")
      .attr("kernel_shape", std::vector<int64_t>{2})
      .attr("strides", std::vector<int64_t>{int64_t{1} << 40});
  s.output("y");
  const std::string serr = build_error(s);
  EXPECT_TRUE(contains(serr, "strides value 1099511627776 is too large")) << serr;
}

// A size that fits int64 but not the machine, known only at run time: an error from infer(), never an abort.
TEST(SizeOverflow, RunTimeShapeTooLargeToAllocate) {
  ModelBuilder b(13);
  b.input("x", DType::kF32, {"1"}).input("shape", DType::kI64, {"2"});
  b.node("Expand", {"x", "shape"}, {"y"}, "e").output("y");
  auto engine = Builder::build_from_bytes(b.bytes(), cpu_config());
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  auto ctx = engine->create_context();
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  setenv("KILN_HOST_MEMORY_LIMIT", "1M", 1);
  auto out = ctx->infer({{"x", f32_tensor({1}, {1})}, {"shape", i64_tensor({2}, {1024, 1024})}});
  unsetenv("KILN_HOST_MEMORY_LIMIT");
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(contains(out.status().message(), "node 'e' (Expand): output 0 ('y') is f32[1024,1024] (4194304 bytes)"))
      << out.status().message();
  EXPECT_TRUE(contains(out.status().message(), "KILN_HOST_MEMORY_LIMIT=1048576")) << out.status().message();
  // The context keeps working at a size that fits.
  auto small = ctx->infer({{"x", f32_tensor({1}, {2})}, {"shape", i64_tensor({2}, {2, 3})}});
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  EXPECT_EQ(values(small->at("y")), std::vector<float>(6, 2.0f));
}

}  // namespace
}  // namespace kiln
