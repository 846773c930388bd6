// TfIdfVectorizer over integer token ids (pool_int64s): counts of pooled n-grams, with skips, per row.
#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status infer_tfidf(InferContext& ctx) {
  const ir::Node& n = ctx.node();
  if (n.has_attr("pool_strings")) return ctx.unsupported("string pools (pool_strings) are not supported");
  if (ctx.input_dtype(0) != DType::kI32 && ctx.input_dtype(0) != DType::kI64)
    return ctx.error("X must be i32 or i64 token ids, got {}", dtype_name(ctx.input_dtype(0)));
  const std::string mode = n.attr_string("mode", "");
  if (mode != "TF" && mode != "IDF" && mode != "TFIDF") return ctx.error("mode '{}' must be TF, IDF or TFIDF", mode);
  const int64_t lo = n.attr_int("min_gram_length", 0), hi = n.attr_int("max_gram_length", 0);
  if (lo < 1 || hi < lo) return ctx.error("gram lengths [{}, {}] must satisfy 1 <= min <= max", lo, hi);
  if (n.attr_int("max_skip_count", 0) < 0) return ctx.error("max_skip_count must be >= 0");
  const auto counts = n.attr_ints("ngram_counts");
  const auto indexes = n.attr_ints("ngram_indexes");
  const auto pool = n.attr_ints("pool_int64s");
  // Level k holds (k+1)-grams from pool[counts[k]] up to the next level's start.
  int64_t grams = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    const int64_t begin = counts[k];
    const int64_t end = k + 1 < counts.size() ? counts[k + 1] : static_cast<int64_t>(pool.size());
    if (begin < 0 || end < begin || end > static_cast<int64_t>(pool.size()) ||
        (end - begin) % static_cast<int64_t>(k + 1) != 0)
      return ctx.error("ngram_counts {} does not split pool_int64s ({} ids) into whole {}-grams",
                       dims_to_string(counts), pool.size(), k + 1);
    grams += (end - begin) / static_cast<int64_t>(k + 1);
  }
  if (static_cast<int64_t>(indexes.size()) != grams)
    return ctx.error("ngram_indexes has {} entries but the pool holds {} n-grams", indexes.size(), grams);
  const auto weights = n.attr_floats("weights");
  if (!weights.empty() && weights.size() != indexes.size())
    return ctx.error("weights has {} entries but there are {} n-grams", weights.size(), indexes.size());
  int64_t width = 0;
  for (int64_t i : indexes) {
    if (i < 0) return ctx.error("ngram_indexes has a negative entry {}", i);
    width = std::max(width, i + 1);
  }
  const Shape& x = ctx.input_shape(0);
  if (!x.has_rank()) {
    ctx.set_output(0, DType::kF32, Shape::unknown_rank());
  } else if (x.rank() == 1) {
    ctx.set_output(0, DType::kF32, Shape(std::vector<Dim>{Dim(width)}));
  } else if (x.rank() == 2) {
    ctx.set_output(0, DType::kF32, Shape(std::vector<Dim>{x[0], Dim(width)}));
  } else {
    return ctx.error("X must be [C] or [N, C], got {}", x.to_string());
  }
  return Status();
}

}  // namespace

void register_tfidf_vectorizer(OpRegistry& r) { r.add({"TfIdfVectorizer", 1, 1, 1, 1, infer_tfidf}); }

}  // namespace kiln::ops
