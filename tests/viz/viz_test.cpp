// The pictures' model, layout and writers, the host activation estimate and the tactic-key mapping.
#include <gtest/gtest.h>

#include <set>

#include "builder/activation_estimate.h"
#include "runtime/tactic_map.h"
#include "viz/colors.h"
#include "viz/dot_writer.h"
#include "viz/graph_layout.h"
#include "viz/layer_graph.h"
#include "viz/svg_writer.h"

namespace kiln {
namespace {

ir::Node node(const std::string& name, const std::string& op, std::vector<std::string> in,
              std::vector<std::string> out) {
  ir::Node n;
  n.name = name;
  n.op_type = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

// x -> a (Relu) -> c (Add) <- b (Sigmoid) <- x; c also adds a constant through b's path.
ir::Graph diamond() {
  ir::Graph g;
  g.inputs = {"x"};
  g.outputs = {"y"};
  g.initializers["k"] = Tensor(DType::kF32, {1});
  for (const char* v : {"x", "xa", "xb", "y"}) g.values[v] = {DType::kF32, Shape({Dim::symbol("batch"), Dim(8)})};
  g.values["k"] = {DType::kF32, Shape({1})};
  g.nodes = {node("relu<1>", "Relu", {"x"}, {"xa"}), node("sig", "Sigmoid", {"x"}, {"xb"}),
             node("add", "Add", {"xa", "xb"}, {"y"})};
  g.nodes[1].inputs.push_back("k");  // a constant read: no edge, no entry
  return g;
}

TEST(LayerGraph, EntriesAndEdgesSkipConstants) {
  const viz::LayerGraph lg = viz::layer_graph(diamond());
  ASSERT_EQ(lg.entries.size(), 5u);  // x, three layers, y
  EXPECT_EQ(lg.entries[0].kind, viz::EntryKind::kInput);
  EXPECT_EQ(lg.entries[4].kind, viz::EntryKind::kOutput);
  EXPECT_EQ(lg.entries[3].op, "Add");
  EXPECT_EQ(lg.entries[3].shape, "[batch,8]");
  EXPECT_EQ(lg.entries[3].dtype, "f32");
  ASSERT_EQ(lg.edges.size(), 5u);
  for (const auto& e : lg.edges) {
    EXPECT_NE(e.value, "k");
    EXPECT_EQ(e.label, "[batch,8]");
    EXPECT_LT(e.from, e.to);
  }
}

TEST(GraphLayout, RowsByDepthWithoutOverlap) {
  const viz::LayerGraph lg = viz::layer_graph(diamond());
  const viz::Layout l = viz::layout_graph(lg);
  ASSERT_EQ(l.boxes.size(), lg.entries.size());
  EXPECT_EQ(l.rows, 4);
  EXPECT_EQ(l.boxes[0].row, 0);
  EXPECT_EQ(l.boxes[1].row, 1);
  EXPECT_EQ(l.boxes[2].row, 1);
  EXPECT_EQ(l.boxes[3].row, 2);
  EXPECT_EQ(l.boxes[4].row, 3);
  // Same row: side by side; every box inside the canvas; rows go down.
  EXPECT_TRUE(l.boxes[1].x + l.boxes[1].w <= l.boxes[2].x || l.boxes[2].x + l.boxes[2].w <= l.boxes[1].x);
  for (const auto& b : l.boxes) {
    EXPECT_GE(b.x, 0);
    EXPECT_LE(b.x + b.w, l.width);
    EXPECT_LE(b.y + b.h, l.height);
  }
  EXPECT_LT(l.boxes[0].y + l.boxes[0].h, l.boxes[1].y);
  const viz::Layout again = viz::layout_graph(lg);
  for (size_t i = 0; i < l.boxes.size(); ++i) EXPECT_EQ(l.boxes[i].x, again.boxes[i].x);
}

TEST(SvgWriter, LayersByOpOrTimeAndEscapes) {
  viz::LayerGraph lg = viz::layer_graph(diamond());
  const std::string svg = viz::write_svg(lg, viz::layout_graph(lg), "a & b");
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find("a &amp; b"), std::string::npos);
  EXPECT_NE(svg.find("relu&lt;1&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("relu<1>"), std::string::npos);
  EXPECT_NE(svg.find("fill=\"" + viz::graph_op_colors(lg).at("Sigmoid") + "\""), std::string::npos);
  EXPECT_NE(svg.find("<ellipse"), std::string::npos);
  EXPECT_NE(svg.find("[batch,8]"), std::string::npos);

  EXPECT_EQ(viz::apply_times(lg, {{"add", {2.0, "t"}}, {"sig", {0.5, ""}}, {"nope", {1.0, ""}}}), 2u);
  const std::string timed = viz::write_svg(lg, viz::layout_graph(lg), "t");
  EXPECT_NE(timed.find("data-name=\"add\" data-op=\"Add\" data-fill=\"" + viz::time_color(1.0)), std::string::npos);
  EXPECT_NE(timed.find("data-fill=\"" + viz::time_color(0.25)), std::string::npos);
  EXPECT_NE(timed.find(std::string("data-fill=\"") + viz::kNoTimeColor), std::string::npos);  // relu: untimed
  EXPECT_NE(timed.find("2.0000 ms"), std::string::npos);
  EXPECT_EQ(timed, viz::write_svg(lg, viz::layout_graph(lg), "t"));  // deterministic
}

TEST(Colors, HeatScaleEndsAndClamps) {
  EXPECT_EQ(viz::time_color(0), "#fff7bc");
  EXPECT_EQ(viz::time_color(1), "#993404");
  EXPECT_EQ(viz::time_color(7), viz::time_color(1));
  EXPECT_EQ(viz::time_color(-1), viz::time_color(0));
  EXPECT_EQ(viz::op_color("FusedConv"), viz::op_colors({"FusedConv", "Gather"}).at("FusedConv"));
  // Within one picture, ops outside the common set never share a colour while the palette lasts.
  const auto c = viz::op_colors({"Gather", "Unsqueeze", "Shape", "Cast", "Where", "Relu", "FusedConv"});
  std::set<std::string> distinct;
  for (const auto& [op, color] : c) distinct.insert(color);
  EXPECT_EQ(distinct.size(), c.size());
}

TEST(DotWriter, BoxesEllipsesAndLabelledEdges) {
  ir::Graph g = diamond();
  g.nodes[0].name = "say \"hi\"";
  const std::string dot = viz::write_dot(viz::layer_graph(g), "m");
  EXPECT_EQ(dot.rfind("digraph \"m\" {", 0), 0u);
  EXPECT_NE(dot.find("say \\\"hi\\\""), std::string::npos);
  EXPECT_NE(dot.find("n1 -> n3 [label=\"[batch,8]\"]"), std::string::npos);
  EXPECT_NE(dot.find("shape=ellipse"), std::string::npos);
  EXPECT_NE(dot.find("shape=box"), std::string::npos);
}

ir::Graph relu_chain(const Shape& x_shape) {
  ir::Graph g;
  g.inputs = {"x"};
  g.outputs = {"y"};
  g.values["x"] = {DType::kF32, x_shape};
  g.values["y"] = {DType::kF32, Shape()};
  g.nodes = {node("r1", "Relu", {"x"}, {"a"}), node("r2", "Relu", {"a"}, {"b"}), node("r3", "Relu", {"b"}, {"c"}),
             node("r4", "Relu", {"c"}, {"y"})};
  return g;
}

TEST(ActivationEstimate, PacksByLifetimeAtGivenDims) {
  const ir::Graph g = relu_chain(Shape({Dim::symbol("batch"), Dim(1024)}));
  auto one = estimate_activations(g, {{"x", {1, 1024}}});
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one->values, 3u);  // a, b, c: x and y are the caller's
  EXPECT_EQ(one->total_bytes, 3u * 4096);
  EXPECT_EQ(one->arena_bytes, 2u * 4096);  // a and c never live at once
  auto four = estimate_activations(g, {{"x", {4, 1024}}});
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(four->arena_bytes, 4 * one->arena_bytes);
  auto missing = estimate_activations(g, {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'x'"), std::string::npos);
}

ir::Graph conv_and_gemm() {
  ir::Graph g;
  g.inputs = {"x"};
  g.outputs = {"y"};
  g.initializers["w"] = Tensor(DType::kF32, {8, 4, 3, 3});
  g.initializers["wb"] = Tensor(DType::kF32, {8});
  g.initializers["m"] = Tensor(DType::kF32, {16, 32});
  g.values["x"] = {DType::kF32, Shape({Dim::symbol("batch"), Dim(4), Dim(16), Dim(16)})};
  g.values["c"] = {DType::kF32, Shape({Dim::symbol("batch"), Dim(8), Dim(16), Dim(16)})};
  g.values["y"] = {DType::kF32, Shape({Dim::symbol("batch"), Dim(8), Dim(16), Dim(32)})};
  g.nodes = {node("conv", "FusedConv", {"x", "w", "wb"}, {"c"}), node("fc", "FusedMatMul", {"c", "m"}, {"y"})};
  g.nodes[0].attrs["pads"] = ir::Attribute::of_ints({1, 1, 1, 1});
  return g;
}

TEST(TacticMap, ConvAndGemmKeysMapToTheirLayers) {
  const ir::Graph g = conv_and_gemm();
  // FusedConv: dtype, layout, act, bias, z, tf32, aligned, in place, n, c, m, group, in, k, stride, dil, pads.
  const std::string conv = "FusedConv:1,0,0,1,0,0,1,0,2,4,8,1,16,16,3,3,1,1,1,1,1,1,1,1";
  const std::string other_m = "FusedConv:1,0,0,1,0,0,1,0,2,4,9,1,16,16,3,3,1,1,1,1,1,1,1,1";
  // cublasLt: dtype, m, n, k, batch, strides, lds, trans a/b, bias, tf32, act, aligns.
  const std::string gemm = "cublasLt:1,512,32,16,1,0,0,0,16,32,32,0,0,0,0,0,16,16,16,16";
  const TacticMap m = map_tactics(g, {{conv, "1 1 1 0"}, {other_m, "4 0 0 0"}, {gemm, "0 1024 00ff"},
                                      {"attn:f16,64,1,2,8,128,128,0,1", "1"}, {"mystery", "?"}});
  ASSERT_EQ(m.tactics.size(), 5u);
  ASSERT_EQ(m.by_layer.count("conv"), 1u);
  ASSERT_EQ(m.by_layer.at("conv").size(), 1u);
  const DecodedTactic& c = m.tactics[m.by_layer.at("conv")[0]];
  EXPECT_EQ(c.key, conv);
  EXPECT_EQ(c.choice, "cudnn conv+epilogue implicit_precomp_gemm tensor_op ws=0");
  EXPECT_NE(c.problem.find("in=16x16 k=3x3"), std::string::npos);
  ASSERT_EQ(m.by_layer.count("fc"), 1u);
  EXPECT_EQ(m.tactics[m.by_layer.at("fc")[0]].kind, "gemm");
  size_t unmapped = 0;
  for (const auto& t : m.tactics) unmapped += t.layers.empty();
  EXPECT_EQ(unmapped, 3u);  // the other conv, attention (no such layer) and the unreadable key
  for (const auto& t : m.tactics)
    if (t.key == "mystery") EXPECT_EQ(t.kind, "");
}

}  // namespace
}  // namespace kiln
