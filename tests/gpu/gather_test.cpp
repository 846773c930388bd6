// Gather, GatherElements and GatherND (src/backends/cuda/kernels/gather.cu) against the CPU reference: every
// element width, int32 and int64 indices (GatherND: int64 only) with negative values, every axis (negative
// too), scalar / 2-D / empty indices, batch_dims, the embedding lookups of the real models, and the
// documented out-of-range behaviour (zeros, no out-of-bounds read), which the CPU reference reports as an
// error instead.
#include "gpu/data_test_util.h"

namespace kiln {
namespace {

using namespace datatest;

void gather_case(const std::string& op, DType dt, const Dims& d, const Tensor& idx, int64_t axis,
                 uint64_t seed, const char* axis_attr = "axis", bool misaligned = false) {
  SCOPED_TRACE(trace(op, dt, d,
                     "indices " + std::string(dtype_name(idx.dtype())) + dims_to_string(idx.dims()) + " " +
                         axis_attr + " " + std::to_string(axis)));
  ModelBuilder m;
  m.input("x", dt, sdims(d)).input("i", idx.dtype(), sdims(idx.dims()));
  m.node(op, {"x", "i"}, {"y"}).attr(axis_attr, axis).output("y");
  ewtest::check(m, {{"x", values(dt, d, seed)}, {"i", idx}}, 1, std::nullopt, misaligned);
}

TEST(GpuGather, AxesIndicesAndDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : all_dtypes()) {
    for (DType it : {DType::kI32, DType::kI64}) {
      gather_case("Gather", dt, {5, 3}, index_tensor(it, {4}, {0, 4, -1, 2}), 0, seed++);
      gather_case("Gather", dt, {5, 3}, index_tensor(it, {}, {-2}), 0, seed++);  // scalar index
      gather_case("Gather", dt, {2, 5, 3}, index_tensor(it, {2, 3}, {4, 0, -5, 1, 1, 3}), 1, seed++);
      gather_case("Gather", dt, {2, 5, 7}, index_tensor(it, {3}, {6, -7, 3}), -1, seed++);
      gather_case("Gather", dt, {2, 5, 7}, index_tensor(it, {0}, {}), 1, seed++);  // empty indices
      gather_case("Gather", dt, {33, 64}, random_indices(it, {2, 7}, seed++, -33, 33), 0, seed++);
    }
  }
}

TEST(GpuGather, EmbeddingsLargeAndMisaligned) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 100;
  for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
    gather_case("Gather", dt, {1000, 768}, random_indices(DType::kI64, {2, 17}, seed++, 0, 1000), 0, seed++,
                "axis", true);
    gather_case("Gather", dt, {2, 197, 768}, index_tensor(DType::kI64, {}, {0}), 1, seed++, "axis",
                true);  // ViT cls
    gather_case("Gather", dt, {3, 1031}, random_indices(DType::kI32, {1025}, seed++, -1031, 1031), 1, seed++,
                "axis", true);
  }
}

TEST(GpuGatherElements, AxesIndicesAndDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : all_dtypes()) {
    for (DType it : {DType::kI32, DType::kI64}) {
      gather_case("GatherElements", dt, {3, 4}, random_indices(it, {3, 4}, seed++, -3, 3), 0, seed++);
      gather_case("GatherElements", dt, {3, 4}, random_indices(it, {2, 6}, seed++, -4, 4), 1,
                  seed++);  // wider
      gather_case("GatherElements", dt, {2, 3, 5}, random_indices(it, {2, 2, 5}, seed++, -5, 5), -1, seed++);
      gather_case("GatherElements", dt, {2, 3, 5}, random_indices(it, {1, 3, 2}, seed++, 0, 3), 1, seed++);
      gather_case("GatherElements", dt, {2, 3}, random_indices(it, {0, 3}, seed++, 0, 2), 0, seed++);
    }
  }
  gather_case("GatherElements", DType::kF32, {64, 1031},
              random_indices(DType::kI64, {64, 513}, seed++, -1031, 1031), 1, seed++, "axis", true);
}

TEST(GpuGatherND, BatchDimsAndDtypes) {
  KILN_REQUIRE_GPU();
  uint64_t seed = 1;
  for (DType dt : all_dtypes()) {
    for (DType it : {DType::kI64}) {  // GatherND's indices are int64 only
      gather_case("GatherND", dt, {2, 2}, index_tensor(it, {2, 2}, {0, 0, 1, -1}), 0, seed++, "batch_dims");
      gather_case("GatherND", dt, {2, 3}, index_tensor(it, {2, 1}, {1, -2}), 0, seed++, "batch_dims");
      gather_case("GatherND", dt, {2, 3, 4}, index_tensor(it, {3, 2}, {0, 1, 1, 2, -1, 0}), 0, seed++,
                  "batch_dims");
      gather_case("GatherND", dt, {2, 3, 4}, index_tensor(it, {2, 1}, {1, 2}), 1, seed++, "batch_dims");
      gather_case("GatherND", dt, {2, 3, 4}, index_tensor(it, {2, 2, 2}, {0, 1, 2, 3, 1, 0, 2, 2}), 1, seed++,
                  "batch_dims");
      gather_case("GatherND", dt, {2, 3, 4}, index_tensor(it, {2, 3, 1}, {3, 2, 1, 0, -1, -4}), 2, seed++,
                  "batch_dims");
      gather_case("GatherND", dt, {2, 3}, index_tensor(it, {0, 2}, {}), 0, seed++, "batch_dims");
    }
  }
  // GPT-2's last-token pick: data [batch, seq], index tuples [batch, 2].
  gather_case("GatherND", DType::kI64, {4, 1031},
              index_tensor(DType::kI64, {4, 2}, {0, 1030, 1, 5, 2, 0, 3, -1}), 0, seed++);
  gather_case("GatherND", DType::kF32, {4, 129, 768},
              index_tensor(DType::kI64, {4, 2}, {0, 128, 1, 5, 2, 0, 3, -1}), 0, seed++, "batch_dims", true);
}

// The CPU reference rejects out-of-range indices; the kernels give zeros for them and read nothing outside.
TEST(GpuGather, OutOfRangeIndicesGiveZeros) {
  KILN_REQUIRE_GPU();
  struct C {
    std::string op;
    Dims d;
    Tensor idx;
    int64_t axis;
    const char* attr;
    std::vector<bool> zero;  // per output element: expected zero
  };
  const std::vector<C> cases = {
      {"Gather", {3, 2}, index_tensor(DType::kI64, {3}, {1, 3, -4}), 0, "axis", {0, 0, 1, 1, 1, 1}},
      {"GatherElements", {2, 2}, index_tensor(DType::kI32, {2, 2}, {0, 2, -3, 1}), 1, "axis", {0, 1, 1, 0}},
      {"GatherND", {2, 2}, index_tensor(DType::kI64, {2, 2}, {0, 1, 2, 0}), 0, "batch_dims", {0, 1}},
  };
  for (const C& c : cases) {
    SCOPED_TRACE(c.op);
    ModelBuilder m;
    m.input("x", DType::kF32, sdims(c.d)).input("i", c.idx.dtype(), sdims(c.idx.dims()));
    m.node(c.op, {"x", "i"}, {"y"}).attr(c.attr, c.axis).output("y");
    auto g = onnx::import_model_bytes(m.bytes(), ".", "gpu test");
    ASSERT_TRUE(g.ok()) << g.status().to_string();
    ASSERT_TRUE(passes::infer_shapes(*g).ok());
    auto ex = cuda::GraphExecutor::create(std::make_shared<const ir::Graph>(std::move(*g)), false);
    ASSERT_TRUE(ex.ok()) << ex.status().to_string();
    Tensor x(DType::kF32, c.d);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = static_cast<float>(i + 1);  // no zeros
    auto got = (*ex)->run({{"x", x}, {"i", c.idx}});
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    EXPECT_EQ((*ex)->last_stats().gpu_nodes, 1);
    const Tensor& y = got->at("y");
    ASSERT_EQ(static_cast<size_t>(y.numel()), c.zero.size());
    for (int64_t i = 0; i < y.numel(); ++i)
      EXPECT_EQ(y.data<float>()[i] == 0.f, c.zero[i]) << "element " << i << " = " << y.data<float>()[i];
  }
}

}  // namespace
}  // namespace kiln
