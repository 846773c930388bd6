// Helpers shared by the pass and fusion tests: import a test model with shapes inferred, count or find ops,
// run a graph on the CPU reference, and write static dims as ModelBuilder's dim strings.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/cpu/executor.h"
#include "onnx/importer.h"
#include "passes/pass.h"

namespace kiln::testing {

inline ir::Graph import_inferred(const std::string& bytes) {
  auto g = onnx::import_model_bytes(bytes, ".", "test");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  if (!g.ok()) return {};
  Status s = passes::infer_shapes(*g);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return std::move(*g);
}

// Static dims as the strings ModelBuilder takes for a value's shape.
inline std::vector<std::string> sdims(const std::vector<int64_t>& d) {
  std::vector<std::string> s;
  for (int64_t v : d) s.push_back(std::to_string(v));
  return s;
}

inline int count_op(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op_type == op;
  return n;
}

inline const ir::Node* find_op(const ir::Graph& g, const std::string& op) {
  for (const auto& n : g.nodes)
    if (n.op_type == op) return &n;
  return nullptr;
}

// Every graph output on the CPU reference (empty, with a test failure, when the run fails).
inline std::map<std::string, Tensor> run_cpu(const ir::Graph& g, const std::map<std::string, Tensor>& inputs) {
  cpu::GraphExecutor ex(std::make_shared<const ir::Graph>(g));
  auto out = ex.run(inputs);
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  return out.ok() ? *out : std::map<std::string, Tensor>{};
}

// Every output of `want` is in `got` with the same dims and values within rtol * (1 + |want|).
inline void expect_same_outputs(const std::map<std::string, Tensor>& want, const std::map<std::string, Tensor>& got,
                                double rtol) {
  for (const auto& [name, w] : want) {
    EXPECT_TRUE(got.count(name)) << name;
    if (!got.count(name)) continue;
    const Tensor& o = got.at(name);
    EXPECT_EQ(o.dims(), w.dims()) << name;
    for (int64_t i = 0; i < w.numel() && o.dims() == w.dims(); ++i)
      EXPECT_NEAR(o.get_as_double(i), w.get_as_double(i), rtol * (1 + std::fabs(w.get_as_double(i))))
          << name << "[" << i << "]";
  }
}

// Imports the model, runs `pass` (then dead-code removal and shape inference) and checks that the graph still
// computes what it did on the CPU reference; returns the rewritten graph.
template <class Pass>
ir::Graph pass_keeps_outputs(const std::string& bytes, Pass&& pass, const std::map<std::string, Tensor>& inputs,
                             double rtol) {
  ir::Graph g = import_inferred(bytes);
  auto want = run_cpu(g, inputs);
  Status s = pass(g);
  EXPECT_TRUE(s.ok()) << s.to_string();
  EXPECT_TRUE(passes::eliminate_dead_code(g).ok());
  s = passes::infer_shapes(g);
  EXPECT_TRUE(s.ok()) << s.to_string();
  expect_same_outputs(want, run_cpu(g, inputs), rtol);
  return g;
}

// The default pipeline without the passes named.
inline std::vector<passes::Pass> pipeline_without(std::initializer_list<std::string_view> names) {
  std::vector<passes::Pass> out;
  for (const auto& p : passes::default_pipeline())
    if (std::find(names.begin(), names.end(), p.name) == names.end()) out.push_back(p);
  return out;
}

// A model imported as it is (no passes run), for comparing pipelines on it.
inline ir::Graph import_plain(const std::string& bytes, const std::string& name) {
  auto g = onnx::import_model_bytes(bytes, ".", name);
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? std::move(*g) : ir::Graph();
}

// input_ids and attention_mask [2, 7] for the BERT/GPT-2 skeletons: the second row padded after 4 tokens.
inline std::map<std::string, Tensor> token_inputs(bool with_mask) {
  Tensor ids(DType::kI64, {2, 7}), mask(DType::kI64, {2, 7});
  for (int64_t i = 0; i < 14; ++i) {
    ids.data<int64_t>()[i] = (i * 131) % 30000;
    mask.data<int64_t>()[i] = i < 7 || i % 7 < 4 ? 1 : 0;
  }
  std::map<std::string, Tensor> in = {{"input_ids", ids}};
  if (with_mask) in["attention_mask"] = mask;
  return in;
}

}  // namespace kiln::testing
