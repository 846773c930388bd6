// TfIdfVectorizer on integer tokens: every n-gram of each row (n in [min, max], with 0..max_skip_count tokens
// skipped between its items) that appears in the pool is counted, then scaled by mode.
#include <algorithm>
#include <map>

#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

Status run_tfidf(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  const std::string mode = node.attr_string("mode", "TF");
  const int64_t min_n = node.attr_int("min_gram_length", 1), max_n = node.attr_int("max_gram_length", 1);
  const int64_t max_skip = node.attr_int("max_skip_count", 0);
  const auto counts = node.attr_ints("ngram_counts");
  const auto indexes = node.attr_ints("ngram_indexes");
  const auto pool = node.attr_ints("pool_int64s");
  const auto weights = node.attr_floats("weights");

  // lookup[n - 1]: n-gram -> its position in ngram_indexes.
  std::vector<std::map<std::vector<int64_t>, int64_t>> lookup(counts.size());
  int64_t g = 0;
  for (size_t k = 0; k < counts.size(); ++k) {
    const int64_t end = k + 1 < counts.size() ? counts[k + 1] : static_cast<int64_t>(pool.size());
    for (int64_t p = counts[k]; p + static_cast<int64_t>(k) < end; p += static_cast<int64_t>(k + 1))
      lookup[k][std::vector<int64_t>(pool.begin() + p, pool.begin() + p + static_cast<int64_t>(k) + 1)] = g++;
  }

  const Tensor& x = ctx.input(0);
  const int64_t rows = x.rank() == 2 ? x.dim(0) : 1;
  const int64_t cols = x.rank() == 2 ? x.dim(1) : (x.rank() == 1 ? x.dim(0) : 0);
  Tensor& y = ctx.output(0);
  const int64_t width = y.dims().back();
  float* py = y.data<float>();
  std::vector<int64_t> found(indexes.size());
  std::vector<int64_t> gram;
  for (int64_t r = 0; r < rows; ++r) {
    std::fill(found.begin(), found.end(), 0);
    for (int64_t n = min_n; n <= max_n && n <= static_cast<int64_t>(lookup.size()); ++n) {
      const auto& table = lookup[n - 1];
      if (table.empty()) continue;
      // Unigrams have no gaps, so only skip 0 applies to them.
      // A gap as wide as the row fits no n-gram (n >= 2), so skips past cols are not tried.
      for (int64_t skip = 0; skip <= (n == 1 ? 0 : std::min(max_skip, cols)); ++skip) {
        const int64_t stride = skip + 1;
        for (int64_t start = 0; start + (n - 1) * stride < cols; ++start) {
          gram.clear();
          for (int64_t j = 0; j < n; ++j) gram.push_back(x.get_as_int(r * cols + start + j * stride));
          if (auto it = table.find(gram); it != table.end()) ++found[it->second];
        }
      }
    }
    for (size_t i = 0; i < indexes.size(); ++i) {
      const double w = weights.empty() ? 1.0 : weights[i];
      double v = static_cast<double>(found[i]);
      if (mode == "IDF") v = found[i] > 0 ? w : 0.0;
      else if (mode == "TFIDF") v *= w;
      py[r * width + indexes[i]] = static_cast<float>(v);
    }
  }
  return Status();
}

}  // namespace

void register_cpu_tfidf_vectorizer(KernelTable& t) { t.add({"TfIdfVectorizer", run_tfidf}); }

}  // namespace kiln::cpu
