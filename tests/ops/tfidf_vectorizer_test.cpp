#include <gtest/gtest.h>

#include <kiln_onnx/onnx.pb.h>

#include "kiln/kiln.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::ModelBuilder;

ModelBuilder tfidf_model(const std::string& mode, int64_t min_n, int64_t max_n, int64_t skip) {
  ModelBuilder b(9);
  b.input("x", DType::kI32, {"?", "?"})
      .node("TfIdfVectorizer", {"x"}, {"y"})
      .attr("mode", mode)
      .attr("min_gram_length", min_n)
      .attr("max_gram_length", max_n)
      .attr("max_skip_count", skip)
      .attr("ngram_counts", std::vector<int64_t>{0, 2})
      .attr("ngram_indexes", std::vector<int64_t>{4, 0, 1, 2})
      .attr("pool_int64s", std::vector<int64_t>{7, 9, 7, 9, 9, 9})  // unigrams 7, 9; bigrams (7,9), (9,9)
      .output("y");
  return b;
}

Result<std::vector<float>> run(const ModelBuilder& b, const Tensor& x) {
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  KILN_ASSIGN_OR_RETURN(Engine engine, Builder::build_from_bytes(b.bytes(), cfg));
  KILN_ASSIGN_OR_RETURN(ExecutionContext ctx, engine.create_context());
  KILN_ASSIGN_OR_RETURN(auto out, ctx.infer({{"x", x}}));
  const Tensor& y = out.at("y");
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

const Tensor kRows = Tensor::from_vector(DType::kI32, {2, 4}, std::vector<int32_t>{7, 9, 1, 9, 9, 9, 9, 3});

TEST(TfIdfVectorizerOp, UniAndBigramsWithSkips) {
  auto y = run(tfidf_model("TF", 1, 2, 1), kRows);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  // Output slots: 7->4, 9->0, (7,9)->1, (9,9)->2, slot 3 unused.
  // Row 0 [7 9 1 9]: 7 once, 9 twice, (7,9) at positions (0,1), (9,9) at (1,3) with one skip.
  // Row 1 [9 9 9 3]: 9 three times, (9,9) at (0,1), (1,2) and, skipping one, (0,2).
  EXPECT_EQ(*y, (std::vector<float>{2, 1, 1, 0, 1, 3, 0, 3, 0, 0}));
}

TEST(TfIdfVectorizerOp, IdfAndTfidfWeights) {
  ModelBuilder idf = tfidf_model("IDF", 1, 1, 0);
  ModelBuilder tfidf = tfidf_model("TFIDF", 1, 1, 0);
  auto& a1 = *idf.proto().mutable_graph()->mutable_node(0)->add_attribute();
  auto& a2 = *tfidf.proto().mutable_graph()->mutable_node(0)->add_attribute();
  for (auto* a : {&a1, &a2}) {
    a->set_name("weights");
    a->set_type(kiln_onnx::AttributeProto::FLOATS);
    for (float w : {0.5f, 2.f, 3.f, 4.f}) a->add_floats(w);
  }
  const Tensor x = Tensor::from_vector(DType::kI32, {1, 3}, std::vector<int32_t>{9, 7, 9});
  auto y1 = run(idf, x);
  ASSERT_TRUE(y1.ok()) << y1.status().to_string();
  EXPECT_EQ(*y1, (std::vector<float>{2, 0, 0, 0, 0.5f}));
  auto y2 = run(tfidf, x);
  ASSERT_TRUE(y2.ok()) << y2.status().to_string();
  EXPECT_EQ(*y2, (std::vector<float>{4, 0, 0, 0, 0.5f}));
}

TEST(TfIdfVectorizerOp, IndexCountMismatchIsABuildError) {
  ModelBuilder b(9);
  b.input("x", DType::kI64, {"5"})
      .node("TfIdfVectorizer", {"x"}, {"y"})
      .attr("mode", std::string("TF"))
      .attr("min_gram_length", int64_t{1})
      .attr("max_gram_length", int64_t{1})
      .attr("max_skip_count", int64_t{0})
      .attr("ngram_counts", std::vector<int64_t>{0})
      .attr("ngram_indexes", std::vector<int64_t>{0, 1})
      .attr("pool_int64s", std::vector<int64_t>{4, 5, 6})
      .output("y");
  BuildConfig cfg;
  cfg.backend = BackendKind::kCpu;
  auto e = Builder::build_from_bytes(b.bytes(), cfg);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("ngram_indexes has 2 entries but the pool holds 3 n-grams"), std::string::npos)
      << e.status().message();
}

}  // namespace
}  // namespace kiln
