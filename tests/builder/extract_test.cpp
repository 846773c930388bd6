// kiln extract: the cut (node set, initializers, I/O, outer-scope reads, leak and name errors), the written
// part (inline and external data) and the check against the whole model.
#include "builder/cut_subgraph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>

#include "kiln/extract.h"
#include "onnx/exporter.h"
#include "ir/node_reads.h"
#include "onnx/importer.h"
#include "support/model_builder.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
using testing::f32_tensor;
using testing::ModelBuilder;
using testing::random_f32;

std::set<std::string> node_names(const ir::Graph& g) {
  std::set<std::string> out;
  for (const auto& n : g.nodes) out.insert(n.name);
  return out;
}

std::set<std::string> init_names(const ir::Graph& g) {
  std::set<std::string> out;
  for (const auto& [k, v] : g.initializers) out.insert(k);
  return out;
}

ir::Graph import(const ModelBuilder& b) {
  auto g = onnx::import_model_bytes(b.bytes(), ".", "test model");
  EXPECT_TRUE(g.ok()) << g.status().to_string();
  return g.ok() ? std::move(*g) : ir::Graph{};
}

// x[batch,4] -> relu -> a -> (+w1) -> b -> (*w2) -> c -> neg -> d; a side chain e = a * w3 -> f.
ModelBuilder chain_model() {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "4"})
      .initializer("w1", random_f32({4}, 1))
      .initializer("w2", random_f32({4}, 2))
      .initializer("w3", random_f32({4}, 3))
      .node("Relu", {"x"}, {"a"}, "relu")
      .node("Add", {"a", "w1"}, {"b"}, "add")
      .node("Mul", {"b", "w2"}, {"c"}, "mul")
      .node("Neg", {"c"}, {"d"}, "neg")
      .node("Mul", {"a", "w3"}, {"e"}, "side")
      .node("Sigmoid", {"e"}, {"f"}, "side_act")
      .output("d", DType::kF32, {"batch", "4"})
      .output("f", DType::kF32, {"batch", "4"});
  return b;
}

fs::path fresh_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("kiln_extract_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

TEST(Extract, CutInTheMiddleKeepsOnlyWhatTheOutputsNeed) {
  CutReport rep;
  auto part = cut_subgraph(import(chain_model()), {"a"}, {"c"}, &rep);
  ASSERT_TRUE(part.ok()) << part.status().to_string();
  EXPECT_EQ(node_names(*part), (std::set<std::string>{"add", "mul"}));
  EXPECT_EQ(init_names(*part), (std::set<std::string>{"w1", "w2"}));
  EXPECT_EQ(part->inputs, std::vector<std::string>{"a"});
  EXPECT_EQ(part->outputs, std::vector<std::string>{"c"});
  EXPECT_TRUE(rep.unused_inputs.empty());
  // The dynamic dim keeps its name, from shape inference over the whole model.
  ASSERT_TRUE(part->value("a"));
  EXPECT_EQ(part->value("a")->dtype, DType::kF32);
  EXPECT_EQ(part->value("a")->shape.to_string(), "[batch,4]");
  EXPECT_EQ(part->value("c")->shape.to_string(), "[batch,4]");
}

TEST(Extract, SeveralOutputsAndAnInputNothingReadsIsReported) {
  CutReport rep;
  auto part = cut_subgraph(import(chain_model()), {"a", "x"}, {"d", "f"}, &rep);
  ASSERT_TRUE(part.ok()) << part.status().to_string();
  EXPECT_EQ(node_names(*part), (std::set<std::string>{"add", "mul", "neg", "side", "side_act"}));
  EXPECT_EQ(init_names(*part), (std::set<std::string>{"w1", "w2", "w3"}));
  EXPECT_EQ(rep.unused_inputs, std::vector<std::string>{"x"});
}

TEST(Extract, CutThatIsNotClosedNamesTheLeakingValuesAndTheirReaders) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "4"})
      .input("mask", DType::kF32, {"batch", "4"})
      .node("Relu", {"x"}, {"a"}, "relu")
      .node("Add", {"a", "mask"}, {"b"}, "add_mask")
      .node("Exp", {"b"}, {"c"}, "exp")
      .output("c", DType::kF32, {"batch", "4"});
  auto part = cut_subgraph(import(b), {"a"}, {"c"});
  ASSERT_FALSE(part.ok());
  const std::string msg = part.status().message();
  EXPECT_NE(msg.find("not closed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'mask' f32[batch,4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("node 'add_mask' (Add)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--inputs a,mask"), std::string::npos) << msg;
  // With the leaking value added the same cut is closed.
  EXPECT_TRUE(cut_subgraph(import(b), {"a", "mask"}, {"c"}).ok());
}

TEST(Extract, UnknownNamesListNearMatches) {
  auto part = cut_subgraph(import(chain_model()), {"aa"}, {"cc"});
  ASSERT_FALSE(part.ok());
  EXPECT_EQ(part.status().code(), StatusCode::kInvalidArgument);
  const std::string msg = part.status().message();
  EXPECT_NE(msg.find("--inputs 'aa' is not a value of the model; nearest value names: 'a'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--outputs 'cc' is not a value of the model; nearest value names: 'c'"), std::string::npos)
      << msg;
}

TEST(Extract, OutputsMustBeComputed) {
  EXPECT_FALSE(cut_subgraph(import(chain_model()), {"a"}, {"w1"}).ok());
  EXPECT_FALSE(cut_subgraph(import(chain_model()), {"a"}, {"a"}).ok());
  EXPECT_FALSE(cut_subgraph(import(chain_model()), {"a"}, {}).ok());
}

// A body that reads `outer` (and the outer initializer `w`) by name: y = outer * w, or -outer.
std::shared_ptr<ir::Graph> branch(const std::string& op, const std::string& outer, const std::string& out) {
  auto body = std::make_shared<ir::Graph>();
  body->name = out + "_body";
  body->opset = 17;
  ir::Node n;
  n.name = out + "_node";
  n.op_type = op;
  n.inputs = op == "Mul" ? std::vector<std::string>{outer, "w"} : std::vector<std::string>{outer};
  n.outputs = {out};
  body->nodes.push_back(n);
  body->outputs = {out};
  body->values[out] = {DType::kF32, Shape({Dim::symbol("batch"), Dim(4)})};
  return body;
}

// x[batch,4], flag (bool scalar) -> f = relu(x) -> If(flag) { f * w } else { -f } -> y -> exp -> z.
ir::Graph if_model(const std::string& outer) {
  ir::Graph g;
  g.name = "if_model";
  g.opset = 17;
  g.ir_version = 8;
  g.inputs = {"x", "flag"};
  g.values["x"] = {DType::kF32, Shape({Dim::symbol("batch"), Dim(4)})};
  g.values["flag"] = {DType::kBool, Shape::scalar()};
  g.initializers["w"] = random_f32({4}, 7);
  g.initializers["unused_w"] = random_f32({4}, 8);
  g.values["w"] = {DType::kF32, Shape({4})};
  g.values["unused_w"] = {DType::kF32, Shape({4})};
  ir::Node relu;
  relu.name = "relu";
  relu.op_type = "Relu";
  relu.inputs = {"x"};
  relu.outputs = {"f"};
  ir::Node iff;
  iff.name = "route";
  iff.op_type = "If";
  iff.inputs = {"flag"};
  iff.outputs = {"y"};
  iff.attrs["then_branch"].kind = ir::Attribute::Kind::kGraph;
  iff.attrs["then_branch"].g = branch("Mul", outer, "t");
  iff.attrs["else_branch"].kind = ir::Attribute::Kind::kGraph;
  iff.attrs["else_branch"].g = branch("Neg", outer, "e");
  ir::Node exp;
  exp.name = "exp";
  exp.op_type = "Exp";
  exp.inputs = {"y"};
  exp.outputs = {"z"};
  g.nodes = {relu, iff, exp};
  g.outputs = {"z"};
  return g;
}

TEST(Extract, IfBodyReadingAnOuterValueMakesItADependency) {
  // The If reads f only inside its branches: f's producer and the weight the branch reads come along.
  auto part = cut_subgraph(if_model("f"), {"x", "flag"}, {"z"});
  ASSERT_TRUE(part.ok()) << part.status().to_string();
  EXPECT_EQ(node_names(*part), (std::set<std::string>{"relu", "route", "exp"}));
  EXPECT_EQ(init_names(*part), (std::set<std::string>{"w"}));
  EXPECT_EQ(ir::outer_scope_reads(part->nodes[1]), (std::vector<std::string>{"f", "w"}));

  // Cut at f: the branches read the part's input f.
  CutReport rep;
  part = cut_subgraph(if_model("f"), {"f", "flag"}, {"z"}, &rep);
  ASSERT_TRUE(part.ok()) << part.status().to_string();
  EXPECT_EQ(node_names(*part), (std::set<std::string>{"route", "exp"}));
  EXPECT_TRUE(rep.unused_inputs.empty()) << "f is read inside the If's bodies";

  // Without f or x the cut is not closed, and the message says the If reads it in its body.
  auto leak = cut_subgraph(if_model("x"), {"flag"}, {"z"});
  ASSERT_FALSE(leak.ok());
  EXPECT_NE(leak.status().message().find("'x' f32[batch,4] (a graph input of the model, read by node 'route' (If) "
                                         "in its body; needed as 'x' -> node 'route' (If) in its body -> 'y' -> node 'exp' (Exp) -> "
                                         "'z')"),
            std::string::npos)
      << leak.status().message();
}

TEST(Extract, LoopBodyReadingAnOuterValueMakesItADependency) {
  // Loop(M, cond, v) { v + f } with f = relu(x) read from the outer scope.
  ir::Graph g;
  g.name = "loop_model";
  g.opset = 17;
  g.inputs = {"x", "v0"};
  g.values["x"] = {DType::kF32, Shape({4})};
  g.values["v0"] = {DType::kF32, Shape({4})};
  g.initializers["trips"] = Tensor::scalar_i64(3);
  g.values["trips"] = {DType::kI64, Shape::scalar()};
  auto body = std::make_shared<ir::Graph>();
  body->opset = 17;
  body->inputs = {"i", "cond_in", "v_in"};
  body->values["i"] = {DType::kI64, Shape::scalar()};
  body->values["cond_in"] = {DType::kBool, Shape::scalar()};
  body->values["v_in"] = {DType::kF32, Shape({4})};
  ir::Node keep{"keep", "Identity", "", {"cond_in"}, {"cond_out"}, {}};
  ir::Node add{"acc", "Add", "", {"v_in", "f"}, {"v_out"}, {}};
  body->nodes = {keep, add};
  body->outputs = {"cond_out", "v_out"};
  ir::Node relu{"relu", "Relu", "", {"x"}, {"f"}, {}};
  ir::Node loop{"loop", "Loop", "", {"trips", "", "v0"}, {"v_final"}, {}};
  loop.attrs["body"].kind = ir::Attribute::Kind::kGraph;
  loop.attrs["body"].g = body;
  g.nodes = {relu, loop};
  g.outputs = {"v_final"};
  g.values["v_final"] = {DType::kF32, Shape({4})};

  auto part = cut_subgraph(g, {"x", "v0"}, {"v_final"});
  ASSERT_TRUE(part.ok()) << part.status().to_string();
  EXPECT_EQ(node_names(*part), (std::set<std::string>{"relu", "loop"}));
  EXPECT_EQ(init_names(*part), (std::set<std::string>{"trips"}));
  auto leak = cut_subgraph(g, {"v0"}, {"v_final"});
  ASSERT_FALSE(leak.ok());
  EXPECT_NE(leak.status().message().find("'x'"), std::string::npos) << leak.status().message();
  // A name that only exists inside the body is no place to cut, and the message says whose body it is in.
  auto inner = cut_subgraph(g, {"x", "v0"}, {"v_out"});
  ASSERT_FALSE(inner.ok());
  EXPECT_NE(inner.status().message().find("inside the body of node 'loop' (Loop)"), std::string::npos)
      << inner.status().message();
}

TEST(Extract, NodeThatAlsoWritesAPartInputGetsAFreshOutputName) {
  // split -> (s0, s1); z = s0 + s1. Cut at x and s0: the Split still runs for s1, and its first output
  // must not define s0 a second time.
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "4"})
      .initializer("halves", testing::i64_tensor({2}, {2, 2}))
      .node("Split", {"x", "halves"}, {"s0", "s1"}, "split")
      .attr("axis", int64_t{1})
      .node("Add", {"s0", "s1"}, {"z"}, "add")
      .output("z", DType::kF32, {"2", "2"});
  auto part = cut_subgraph(import(b), {"x", "s0"}, {"z"});
  ASSERT_TRUE(part.ok()) << part.status().to_string();
  const ir::Node& split = part->nodes[0];
  ASSERT_EQ(split.op_type, "Split");
  EXPECT_NE(split.outputs[0], "s0");
  EXPECT_EQ(split.outputs[1], "s1");
  // The part imports again: every value has one producer.
  auto bytes = onnx::export_model_inline(*part);
  ASSERT_TRUE(bytes.ok());
  auto again = onnx::import_model_bytes(*bytes, ".", "part");
  EXPECT_TRUE(again.ok()) << again.status().to_string();
}

TEST(Extract, WrittenPartMatchesTheModelAndCarriesOnlyItsInitializers) {
  const fs::path dir = fresh_dir("numeric");
  chain_model().save((dir / "model.onnx").string());
  ExtractConfig cfg;
  cfg.inputs = {"a"};
  cfg.outputs = {"c", "f"};
  auto rep = extract_model((dir / "model.onnx").string(), (dir / "part.onnx").string(), cfg);
  ASSERT_TRUE(rep.ok()) << rep.status().to_string();
  EXPECT_EQ(std::set<std::string>(rep->nodes.begin(), rep->nodes.end()),
            (std::set<std::string>{"add", "mul", "side", "side_act"}));
  EXPECT_EQ(rep->model_nodes, 6u);
  EXPECT_TRUE(rep->data_path.empty());
  EXPECT_FALSE(fs::exists(dir / "part.onnx.data"));
  auto part = onnx::import_model_file((dir / "part.onnx").string());
  ASSERT_TRUE(part.ok()) << part.status().to_string();
  EXPECT_EQ(init_names(*part), (std::set<std::string>{"w1", "w2", "w3"}));
  EXPECT_EQ(part->value("a")->shape.to_string(), "[batch,4]");

  ExtractCheckConfig check;
  check.dims["x"] = {3, 4};
  check.seed = 5;
  auto c = check_extracted((dir / "model.onnx").string(), (dir / "part.onnx").string(), check);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->match);
  ASSERT_EQ(c->outputs.size(), 2u);
  EXPECT_EQ(c->outputs[0].name, "c");
  EXPECT_EQ(c->outputs[0].dims, (std::vector<int64_t>{3, 4}));
  EXPECT_GT(c->outputs[0].max_abs_reference, 0.0);
  EXPECT_EQ(c->model_input_dims.at("x"), (std::vector<int64_t>{3, 4}));
}

TEST(Extract, CheckCatchesAPartThatComputesSomethingElse) {
  const fs::path dir = fresh_dir("mismatch");
  chain_model().save((dir / "model.onnx").string());
  auto g = onnx::import_model_file((dir / "model.onnx").string());
  ASSERT_TRUE(g.ok());
  auto part = cut_subgraph(*g, {"a"}, {"c"});
  ASSERT_TRUE(part.ok());
  Tensor w2 = part->initializers.at("w2").clone();
  w2.data<float>()[2] += 0.5f;  // one weight off: one column of c differs
  part->initializers["w2"] = w2;
  ASSERT_TRUE(onnx::write_model_file(*part, (dir / "part.onnx").string()).ok());
  ExtractCheckConfig check;
  check.dims["x"] = {8, 4};
  auto c = check_extracted((dir / "model.onnx").string(), (dir / "part.onnx").string(), check);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_FALSE(c->match);
  ASSERT_EQ(c->outputs.size(), 1u);
  EXPECT_GT(c->outputs[0].max_abs_error, 0.0);
  EXPECT_GT(c->outputs[0].mismatches, 0);
  EXPECT_EQ(c->outputs[0].worst_index % 4, 2) << "the changed weight's column";
}

TEST(Extract, CheckExposesIntermediatesTheBuilderWouldFuse) {
  // q_t/k_t/v_t -> scores -> softmax -> ctx is one FusedAttention in the whole model; exposing the cut's values
  // keeps them.
  const std::string model = std::string(KILN_SOURCE_DIR) + "/models/tiny_attention.onnx";
  const fs::path dir = fresh_dir("attention");
  ExtractConfig cfg;
  cfg.inputs = {"q_t", "k_t", "v_t"};
  cfg.outputs = {"attn", "ctx"};
  auto rep = extract_model(model, (dir / "part.onnx").string(), cfg);
  ASSERT_TRUE(rep.ok()) << rep.status().to_string();
  EXPECT_EQ(rep->nodes, (std::vector<std::string>{"qk", "scale", "softmax", "av"}));
  ExtractCheckConfig check;
  check.dims["tokens"] = {2, 5, 32};
  auto c = check_extracted(model, (dir / "part.onnx").string(), check);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->match);
  ASSERT_EQ(c->outputs.size(), 2u);
  EXPECT_EQ(c->outputs[0].dims, (std::vector<int64_t>{2, 4, 5, 5}));
  EXPECT_LE(c->outputs[1].max_abs_error, 1e-5);
}

TEST(Extract, ExternalDataStaysExternal) {
  const fs::path dir = fresh_dir("external");
  // The source keeps its weights (each 4 KiB) in model.onnx.data.
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "1024"})
      .initializer("w1", random_f32({1024}, 1))
      .initializer("w2", random_f32({1024}, 2))
      .initializer("w3", random_f32({1024}, 3))
      .node("Add", {"x", "w1"}, {"a"}, "add")
      .node("Mul", {"a", "w2"}, {"b"}, "mul")
      .node("Sub", {"b", "w3"}, {"c"}, "sub")
      .output("c", DType::kF32, {"batch", "1024"});
  auto g = onnx::import_model_bytes(b.bytes(), ".", "test model");
  ASSERT_TRUE(g.ok());
  onnx::WriteOptions always;
  always.external_data = onnx::ExternalData::kAlways;
  auto src = onnx::write_model_file(*g, (dir / "model.onnx").string(), always);
  ASSERT_TRUE(src.ok()) << src.status().to_string();
  EXPECT_EQ(src->external_tensors, 3);

  ExtractConfig cfg;
  cfg.inputs = {"a"};
  cfg.outputs = {"b"};
  auto rep = extract_model((dir / "model.onnx").string(), (dir / "part.onnx").string(), cfg);
  ASSERT_TRUE(rep.ok()) << rep.status().to_string();
  EXPECT_TRUE(rep->source_external_data);
  EXPECT_EQ(rep->external_tensors, 1);  // w2 only
  EXPECT_EQ(fs::path(rep->data_path).filename().string(), "part.onnx.data");
  EXPECT_EQ(fs::file_size(rep->data_path), 4096u);
  EXPECT_LT(fs::file_size(dir / "part.onnx"), 1024u) << "the weight is not inline";
  auto part = onnx::import_model_file((dir / "part.onnx").string());
  ASSERT_TRUE(part.ok()) << part.status().to_string();
  EXPECT_EQ(part->initializers.at("w2").data<float>()[7], g->initializers.at("w2").data<float>()[7]);
  auto c = check_extracted((dir / "model.onnx").string(), (dir / "part.onnx").string(), {});
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->match);

  // kNever writes it inline and removes the stale data file.
  cfg.external_data = ExternalDataChoice::kNever;
  rep = extract_model((dir / "model.onnx").string(), (dir / "part.onnx").string(), cfg);
  ASSERT_TRUE(rep.ok());
  EXPECT_TRUE(rep->data_path.empty());
  EXPECT_FALSE(fs::exists(dir / "part.onnx.data"));
  EXPECT_GT(fs::file_size(dir / "part.onnx"), 4096u);
}

TEST(Extract, StrictInputsMakesAnUnusedInputAnError) {
  const fs::path dir = fresh_dir("strict");
  chain_model().save((dir / "model.onnx").string());
  ExtractConfig cfg;
  cfg.inputs = {"a", "e"};
  cfg.outputs = {"c"};
  auto rep = extract_model((dir / "model.onnx").string(), (dir / "part.onnx").string(), cfg);
  ASSERT_TRUE(rep.ok()) << rep.status().to_string();
  ASSERT_EQ(rep->warnings.size(), 1u);
  EXPECT_NE(rep->warnings[0].find("--inputs 'e'"), std::string::npos) << rep->warnings[0];
  cfg.strict_inputs = true;
  rep = extract_model((dir / "model.onnx").string(), (dir / "part2.onnx").string(), cfg);
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.status().message().find("drop it from --inputs"), std::string::npos) << rep.status().message();
  EXPECT_FALSE(fs::exists(dir / "part2.onnx"));
}

}  // namespace
}  // namespace kiln
