// Helpers shared by the pass and fusion tests: import a test model with shapes inferred, count or find ops,
// run a graph on the CPU reference, and write static dims as ModelBuilder's dim strings.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
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

}  // namespace kiln::testing
