// Reference data users bring: .npz archives (stored; deflate refused), NAME.npy directories, ONNX .pb test sets.
#include <gtest/gtest.h>

#include <filesystem>

#include "kiln/tensor_io.h"
#include "kiln/compare.h"
#include "onnx/tensor_proto.h"
#include "support/model_builder.h"
#include "util/file.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using testing::f32_tensor;

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::path(::testing::TempDir()) / ("kiln_compare_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(Npz, RoundTripKeepsNamesOrderAndData) {
  Tensor a = f32_tensor({2, 2}, {1, 2, 3, 4});
  Tensor b = testing::i64_tensor({3}, {7, 8, 9});
  auto back = io::parse_npz(io::to_npz({{"x", a}, {"out/y", b}}), "t.npz");
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].first, "x");
  EXPECT_EQ((*back)[1].first, "out/y");
  EXPECT_EQ((*back)[1].second.dtype(), DType::kI64);
  EXPECT_EQ((*back)[0].second.data<float>()[3], 4.f);
  EXPECT_EQ((*back)[1].second.data<int64_t>()[2], 9);
}

TEST(Npz, RejectsDeflateCorruptionAndTruncation) {
  std::string bytes = io::to_npz({{"x", f32_tensor({4}, {1, 2, 3, 4})}});
  // Compression method 8 (deflate) in the central directory, as numpy.savez_compressed writes.
  std::string deflated = bytes;
  const size_t central = deflated.rfind("PK\x01\x02");
  ASSERT_NE(central, std::string::npos);
  deflated[central + 10] = 8;
  auto d = io::parse_npz(deflated, "c.npz");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("savez_compressed"), std::string::npos);
  std::string corrupt = bytes;
  corrupt[corrupt.find("NUMPY") + 70] ^= 0x55;  // a data byte: the CRC catches it
  auto c = io::parse_npz(corrupt, "c.npz");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("CRC"), std::string::npos);
  for (size_t cut : {size_t(10), bytes.size() / 2, bytes.size() - 5})
    EXPECT_FALSE(io::parse_npz(bytes.substr(0, cut), "t.npz").ok()) << cut;
  EXPECT_FALSE(io::parse_npz("not a zip at all, just text", "t.npz").ok());
}

TEST(CompareReferenceData, NpyDirectoryWithInputsBeside) {
  fs::path d = fresh_dir("npy");
  ASSERT_TRUE(io::save_npy(f32_tensor({2}, {1, 2}), (d / "x.npy").string()).ok());
  ASSERT_TRUE(io::save_npy(f32_tensor({2}, {3, 4}), (d / "out_y.npy").string()).ok());  // output "out/y"
  auto r = compare::load_reference_data(d.string(), {"x"}, {"out/y", "z"}, {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->outputs.count("out/y"), 1u);
  EXPECT_EQ(r->outputs.count("z"), 0u);  // not saved: the report says it is not compared
  EXPECT_EQ(r->inputs.at("x").data<float>()[1], 2.f);
  // An input neither beside the outputs nor given is an error that says how to give it.
  auto missing = compare::load_reference_data(d.string(), {"x", "w"}, {"out/y"}, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("--input w=FILE"), std::string::npos);
  auto given = compare::load_reference_data(d.string(), {"x", "w"}, {"out/y"}, {{"w", f32_tensor({1}, {5})}});
  EXPECT_TRUE(given.ok());
  auto none = compare::load_reference_data(d.string(), {"x"}, {"q"}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("'q'"), std::string::npos);
}

TEST(CompareReferenceData, NpzFileAndDirectoryHoldingOne) {
  fs::path d = fresh_dir("npz");
  const std::string npz = io::to_npz({{"x", f32_tensor({1}, {1})}, {"y", f32_tensor({1}, {2})}});
  ASSERT_TRUE(write_file_atomic((d / "ref.npz").string(), npz).ok());
  for (const fs::path& p : {d / "ref.npz", d}) {
    auto r = compare::load_reference_data(p.string(), {"x"}, {"y"}, {});
    ASSERT_TRUE(r.ok()) << p << r.status().to_string();
    EXPECT_EQ(r->outputs.at("y").data<float>()[0], 2.f);
    EXPECT_EQ(r->inputs.at("x").data<float>()[0], 1.f);
  }
}

TEST(CompareReferenceData, OnnxTestDataSetByNameOrIndex) {
  fs::path d = fresh_dir("pb");
  // Names inside the protos win over file order; unnamed tensors go by the model's order.
  ASSERT_TRUE(onnx::save_tensor_pb(f32_tensor({1}, {10}), "b", (d / "input_0.pb").string()).ok());
  ASSERT_TRUE(onnx::save_tensor_pb(f32_tensor({1}, {20}), "a", (d / "input_1.pb").string()).ok());
  ASSERT_TRUE(onnx::save_tensor_pb(f32_tensor({1}, {30}), "", (d / "output_0.pb").string()).ok());
  auto r = compare::load_reference_data(d.string(), {"a", "b"}, {"y"}, {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->inputs.at("a").data<float>()[0], 20.f);
  EXPECT_EQ(r->inputs.at("b").data<float>()[0], 10.f);
  EXPECT_EQ(r->outputs.at("y").data<float>()[0], 30.f);
  EXPECT_NE(r->source.find("ONNX test data set"), std::string::npos);
}

}  // namespace
}  // namespace kiln
