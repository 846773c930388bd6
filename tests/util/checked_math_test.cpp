// Checked size arithmetic and the host-memory limit: the pieces every size computation from a file uses.
#include "util/checked_math.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/shape.h"
#include "kiln/tensor.h"
#include "util/host_memory.h"

namespace kiln {
namespace {

TEST(CheckedMath, AddAndMulReportOverflow) {
  EXPECT_EQ(checked_add<int64_t>(2, 3), 5);
  EXPECT_FALSE(checked_add<int64_t>(2, INT64_MAX).has_value());
  EXPECT_EQ(checked_mul<int64_t>(int64_t{1} << 31, int64_t{1} << 31), int64_t{1} << 62);
  EXPECT_FALSE(checked_mul<int64_t>(int64_t{1} << 62, 4).has_value());
  EXPECT_FALSE(checked_sub<int64_t>(INT64_MIN, 1).has_value());
}

TEST(CheckedMath, ElementCountsAndBytes) {
  EXPECT_EQ(checked_num_elements({2, 3, 4}), 24);
  EXPECT_EQ(checked_num_elements({}), 1);
  EXPECT_EQ(checked_num_elements({0, INT64_MAX}), 0);
  EXPECT_FALSE(checked_num_elements({int64_t{1} << 62, 4}).has_value());
  EXPECT_FALSE(checked_num_elements({-1, 4}).has_value());
  EXPECT_EQ(checked_nbytes(DType::kF32, {int64_t{1} << 60}), int64_t{1} << 62);
  EXPECT_FALSE(checked_nbytes(DType::kF32, {INT64_MAX}).has_value());
  EXPECT_EQ(checked_nbytes(DType::kU8, {INT64_MAX}), INT64_MAX);
}

// Before: dim_add(2, INT64_MAX) wrapped to a negative value, which reads as an unknown dim, and the build went on.
TEST(CheckedMath, DimArithmeticRefusesOverflow) {
  auto sum = dim_add(Dim(2), Dim(INT64_MAX));
  ASSERT_FALSE(sum.ok());
  EXPECT_EQ(sum.status().code(), StatusCode::kInvalidModel);
  EXPECT_NE(sum.status().message().find("2 + 9223372036854775807"), std::string::npos) << sum.status().message();
  auto product = dim_mul(Dim(int64_t{1} << 62), Dim(4));
  ASSERT_FALSE(product.ok());
  EXPECT_NE(product.status().message().find("4611686018427387904 * 4"), std::string::npos);
  EXPECT_EQ(dim_add(Dim(3), Dim(4))->value(), 7);
  EXPECT_EQ(dim_mul(Dim::symbol("batch"), Dim(2))->to_string(), "batch*2");
}

// Before: the count wrapped, so a Reshape to [2^62, 4] reported "(0 elements)".
TEST(CheckedMath, NumElementsSaturates) {
  EXPECT_EQ(num_elements({int64_t{1} << 62, 4}), INT64_MAX);
  EXPECT_EQ(num_elements({3, 5}), 15);
  Tensor wrapped = Tensor::wrap(DType::kF32, {int64_t{1} << 62, 4}, nullptr);
  EXPECT_EQ(wrapped.nbytes(), SIZE_MAX);
}

TEST(CheckedMath, ParseByteSize) {
  EXPECT_EQ(parse_byte_size("4096"), 4096);
  EXPECT_EQ(parse_byte_size("512M"), int64_t{512} << 20);
  EXPECT_EQ(parse_byte_size("8g"), int64_t{8} << 30);
  EXPECT_FALSE(parse_byte_size("").has_value());
  EXPECT_FALSE(parse_byte_size("G").has_value());
  EXPECT_FALSE(parse_byte_size("-1").has_value());
  EXPECT_FALSE(parse_byte_size("12 MB").has_value());
  EXPECT_FALSE(parse_byte_size("99999999999T").has_value());  // past int64
}

// Sets an environment variable for one test and restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old, had_ = true;
    setenv(name, value, 1);
  }
  ~ScopedEnv() { had_ ? setenv(name_, old_.c_str(), 1) : unsetenv(name_); }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(TensorAllocate, OverflowIsAnErrorNamingTheTensor) {
  auto t = Tensor::allocate(DType::kF32, {int64_t{1} << 62, 4}, "output 'y'");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("output 'y' is f32[4611686018427387904,4]"), std::string::npos)
      << t.status().message();
  EXPECT_NE(t.status().message().find("overflows"), std::string::npos);
}

TEST(TensorAllocate, HostMemoryLimitRefusesLargerTensors) {
  ScopedEnv env(kHostMemoryLimitEnv, "1K");
  auto small = Tensor::allocate(DType::kF32, {256}, "small");
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  EXPECT_EQ(small->nbytes(), 1024u);
  EXPECT_EQ(small->data<float>()[255], 0.0f);
  auto big = Tensor::allocate(DType::kF32, {257}, "input 'x'");
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("input 'x' is f32[257] (1028 bytes), more than KILN_HOST_MEMORY_LIMIT=1024"),
            std::string::npos)
      << big.status().message();
}

TEST(TensorAllocate, BadLimitIsReported) {
  ScopedEnv env(kHostMemoryLimitEnv, "lots");
  auto t = Tensor::allocate(DType::kF32, {4}, "x");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("KILN_HOST_MEMORY_LIMIT='lots' is not a size"), std::string::npos);
}

// Past what the machine has but below int64: the failed `new` is an error, not an escaping bad_alloc.
TEST(TensorAllocate, FailedAllocationIsAnError) {
#ifdef __SANITIZE_ADDRESS__
  // ASan reports a 4 EiB request itself unless ASAN_OPTIONS has allocator_may_return_null=1.
  if (!getenv("ASAN_OPTIONS") || !strstr(getenv("ASAN_OPTIONS"), "allocator_may_return_null=1"))
    GTEST_SKIP() << "needs ASAN_OPTIONS=allocator_may_return_null=1 under AddressSanitizer";
#endif
  auto t = Tensor::allocate(DType::kU8, {int64_t{1} << 62}, "huge");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("huge is u8[4611686018427387904] (4611686018427387904 bytes)"),
            std::string::npos)
      << t.status().message();
}

}  // namespace
}  // namespace kiln
