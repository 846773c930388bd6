#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "kiln/tensor_io.h"
#include "kiln/half.h"

namespace kiln {
namespace {

TEST(Npy, RoundTripAllDtypes) {
  for (DType dt : {DType::kF32, DType::kF64, DType::kF16, DType::kI8, DType::kU8, DType::kI32, DType::kI64, DType::kBool}) {
    Tensor t(dt, {2, 3});
    for (size_t i = 0; i < t.nbytes(); ++i) static_cast<uint8_t*>(t.raw())[i] = static_cast<uint8_t>(i % 2);
    auto back = io::parse_npy(io::to_npy(t), "t");
    ASSERT_TRUE(back.ok()) << dtype_name(dt) << back.status().to_string();
    EXPECT_EQ(back->dtype(), dt);
    EXPECT_EQ(back->dims(), t.dims());
    EXPECT_EQ(0, std::memcmp(back->raw(), t.raw(), t.nbytes()));
  }
  auto scalar = io::parse_npy(io::to_npy(Tensor::scalar_f32(2.5f)), "s");
  ASSERT_TRUE(scalar.ok());
  EXPECT_EQ(scalar->rank(), 0u);
}

TEST(Npy, RejectsGarbageAndWrongSize) {
  EXPECT_FALSE(io::parse_npy("hello", "x").ok());
  std::string good = io::to_npy(Tensor(DType::kF32, {4}));
  auto r = io::parse_npy(good.substr(0, good.size() - 3), "x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("data bytes"), std::string::npos);
}

TEST(Half, ConversionsRoundTripAndRound) {
  for (float f : {0.f, 1.f, -2.5f, 65504.f, 6.1035e-05f, 1e-7f}) EXPECT_NEAR(half_to_float(float_to_half(f)), f, std::fabs(f) * 1e-3 + 1e-7);
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(1e6f))));
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f)), 1.0f);
  EXPECT_NEAR(bf16_to_float(float_to_bf16(3.14159f)), 3.14159f, 0.02f);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
}

}  // namespace
}  // namespace kiln
