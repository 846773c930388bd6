// Helpers shared by the pass and fusion tests: import a test model with shapes inferred, count or find ops,
// and run a graph on the CPU reference.
#pragma once
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

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

}  // namespace kiln::testing
