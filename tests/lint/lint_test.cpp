// kiln lint: one crafted model per pitfall, the shipped models and real model graphs as clean ones.
#include "kiln/lint.h"

#include <gtest/gtest.h>
#include <kiln_onnx/onnx.pb.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <limits>

#include "support/model_builder.h"

namespace kiln {
namespace {

using testing::f32_tensor;
using testing::i64_tensor;
using testing::ModelBuilder;

LintReport lint(const ModelBuilder& b, LintOptions o = {}) {
  auto r = lint_model_bytes(b.bytes(), ".", "model 'test'", o);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : LintReport{};
}

std::vector<const LintFinding*> all_of(const LintReport& r, const std::string& check) {
  std::vector<const LintFinding*> out;
  for (const auto& f : r.findings)
    if (f.check == check) out.push_back(&f);
  return out;
}

const LintFinding* find(const LintReport& r, const std::string& check) {
  auto v = all_of(r, check);
  return v.empty() ? nullptr : v.front();
}

std::string dump(const LintReport& r) {
  std::string s;
  for (const auto& f : r.findings)
    s += std::string(lint_severity_name(f.severity)) + " [" + f.check + "] " + f.node + " " + f.value + ": " +
         f.message + "\n";
  return s;
}

// A graph attribute `key` on the last node of `b`, holding `body`'s graph.
void set_graph_attr(ModelBuilder& b, const std::string& key, const ModelBuilder& body) {
  auto* g = b.proto().mutable_graph();
  auto* a = g->mutable_node(g->node_size() - 1)->add_attribute();
  a->set_name(key);
  a->set_type(kiln_onnx::AttributeProto::GRAPH);
  *a->mutable_g() = const_cast<ModelBuilder&>(body).proto().graph();
}

ModelBuilder relu_model() {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "4"})
      .node("Relu", {"x"}, {"y"}, "relu")
      .output("y", DType::kF32, {"batch", "4"});
  return b;
}

TEST(Lint, ShippedModelsHaveNoFindings) {
  for (const char* m : {"tiny_cnn", "tiny_attention"}) {
    auto r = lint_model(std::string(KILN_SOURCE_DIR) + "/models/" + m + ".onnx");
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE(r->findings.empty()) << m << "\n" << dump(*r);
    // With --fp16 planned, the usual suspects (norms, softmax) are named as information, nothing more.
    LintOptions o;
    o.fp16 = true;
    r = lint_model(std::string(KILN_SOURCE_DIR) + "/models/" + m + ".onnx", o);
    ASSERT_TRUE(r.ok());
    for (const auto& f : r->findings) {
      EXPECT_EQ(f.severity, LintSeverity::kInfo) << m << "\n" << dump(*r);
      EXPECT_EQ(f.check.rfind("f16-", 0), 0u) << m << "\n" << dump(*r);
    }
  }
}

// A skeleton (tests/data/skeletons) written out with its large weights as external data in one sparse file
// of zeros: lint checks that the data is there without reading it, so real model graphs lint in milliseconds.
void write_skeleton_with_external_weights(const std::string& name, const std::filesystem::path& dir) {
  kiln_onnx::ModelProto m;
  std::ifstream in(std::string(KILN_SOURCE_DIR) + "/tests/data/skeletons/" + name + ".skel.onnx",
                   std::ios::binary);
  EXPECT_TRUE(m.ParseFromIstream(&in));
  int64_t offset = 0;
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    if (t.doc_string() != "kiln-skeleton") continue;  // the weights the skeleton left empty
    t.clear_doc_string();
    int64_t n = 1;
    for (auto d : t.dims()) n *= d;
    auto dt = dtype_from_onnx(t.data_type());
    ASSERT_TRUE(dt.has_value());
    const int64_t bytes = n * static_cast<int64_t>(dtype_size(*dt));
    if (n <= (1 << 16)) {
      t.set_raw_data(std::string(static_cast<size_t>(bytes), '\0'));
      continue;
    }
    t.set_data_location(kiln_onnx::TensorProto::EXTERNAL);
    for (auto [k, v] : {std::pair<std::string, std::string>{"location", name + ".weights"},
                        {"offset", std::to_string(offset)},
                        {"length", std::to_string(bytes)}}) {
      auto* e = t.add_external_data();
      e->set_key(k);
      e->set_value(v);
    }
    offset += bytes;
  }
  { std::ofstream(dir / (name + ".weights"), std::ios::binary) << ""; }
  std::filesystem::resize_file(dir / (name + ".weights"), static_cast<uintmax_t>(offset));
  std::ofstream(dir / (name + ".onnx"), std::ios::binary) << m.SerializeAsString();
}

TEST(Lint, RealModelGraphsHaveNoErrorsOrWarnings) {
  const auto dir = std::filesystem::temp_directory_path() / ("kiln_lint_skel_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const char* m : {"resnet50", "bert_base", "gpt2", "vit_b_16"}) {
    write_skeleton_with_external_weights(m, dir);
    LintOptions o;
    o.fp16 = true;
    auto r = lint_model((dir / (std::string(m) + ".onnx")).string(), o);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    for (const auto& f : r->findings) EXPECT_EQ(f.severity, LintSeverity::kInfo) << m << "\n" << dump(*r);
  }
  std::filesystem::remove_all(dir);
}

TEST(Lint, UnsupportedOpIsAnErrorNamingTheNode) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"4"})
      .node("FrobnicateTensor", {"x"}, {"y"}, "frob")
      .output("y", DType::kF32, {"4"});
  auto r = lint(b);
  const LintFinding* f = find(r, "unsupported-op");
  ASSERT_TRUE(f) << dump(r);
  EXPECT_EQ(f->severity, LintSeverity::kError);
  EXPECT_EQ(f->node, "frob");
  EXPECT_EQ(f->op, "FrobnicateTensor");
  EXPECT_NE(f->advice.find("docs/ops.md"), std::string::npos);
  EXPECT_TRUE(r.has_errors());
}

TEST(Lint, CustomAttentionOpAdvisesScaledDotProductAttention) {
  ModelBuilder b;
  b.input("q", DType::kF32, {"1", "2", "8", "16"})
      .node("FlashAttention", {"q", "q", "q"}, {"o"}, "attn0")
      .domain("com.example.flash")
      .node("FlashAttention", {"o", "o", "o"}, {"o2"}, "attn1")
      .domain("com.example.flash")
      .output("o2", DType::kF32, {"1", "2", "8", "16"});
  auto r = lint(b);
  auto fs = all_of(r, "custom-domain");
  ASSERT_EQ(fs.size(), 1u) << dump(r);  // one finding per op, the other node listed with it
  EXPECT_EQ(fs[0]->op, "com.example.flash::FlashAttention");
  EXPECT_EQ(fs[0]->node, "attn0");
  EXPECT_EQ(fs[0]->others, std::vector<std::string>{"attn1"});
  EXPECT_NE(fs[0]->advice.find("scaled_dot_product_attention"), std::string::npos);
  EXPECT_NE(fs[0]->advice.find("(batch, heads, seq, head_dim)"), std::string::npos);
}

TEST(Lint, ModelTheImporterRefusesStillGetsTheOtherChecks) {
  // The unknown op makes kiln's importer refuse the model; lint still sees the frozen Reshape after it and
  // the unused input.
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "768"})
      .input("flag", DType::kI64, {})
      .initializer("target", i64_tensor({2}, {8, 768}))
      .node("Relu", {"x"}, {"r"}, "relu")
      .node("Reshape", {"r", "target"}, {"y"}, "reshape")
      .node("MyOp", {"y"}, {"z"}, "custom")
      .domain("org.example")
      .output("z");
  auto r = lint(b);
  EXPECT_TRUE(find(r, "custom-domain")) << dump(r);
  EXPECT_TRUE(find(r, "unused-input")) << dump(r);
  EXPECT_TRUE(find(r, "frozen-dim")) << dump(r);
}

TEST(Lint, IfWithConstantConditionIsStatic) {
  ModelBuilder then_b, else_b;
  then_b.node("Relu", {"x"}, {"t"}).output("t", DType::kF32, {"4"});
  else_b.node("Neg", {"x"}, {"e"}).output("e", DType::kF32, {"4"});
  ModelBuilder b;
  b.input("x", DType::kF32, {"4"})
      .initializer("c", Tensor::from_vector(DType::kBool, {}, std::vector<uint8_t>{1}))
      .node("If", {"c"}, {"y"}, "branch");
  set_graph_attr(b, "then_branch", then_b);
  set_graph_attr(b, "else_branch", else_b);
  b.output("y", DType::kF32, {"4"});
  auto r = lint(b);
  const LintFinding* f = find(r, "if-static");
  ASSERT_TRUE(f) << dump(r);
  EXPECT_EQ(f->severity, LintSeverity::kInfo);
  EXPECT_EQ(f->node, "branch");
  EXPECT_NE(f->message.find("constant"), std::string::npos);
  EXPECT_NE(f->message.find("folds the If at build"), std::string::npos) << f->message;
  EXPECT_FALSE(find(r, "if-data-dependent"));
}

TEST(Lint, IfOnInputShapeIsStaticAndOnInputValuesIsDataDependent) {
  ModelBuilder then_b, else_b;
  then_b.node("Relu", {"x"}, {"t"}).output("t", DType::kF32, {"n"});
  else_b.node("Neg", {"x"}, {"e"}).output("e", DType::kF32, {"n"});
  for (bool on_values : {false, true}) {
    ModelBuilder b;
    b.input("x", DType::kF32, {"n"}).initializer("zero", i64_tensor({}, {0}));
    if (on_values) {
      b.initializer("zf", f32_tensor({}, {0.f}))
          .node("ReduceSum", {"x"}, {"s"})
          .attr("keepdims", int64_t{0})
          .node("Greater", {"s", "zf"}, {"c"});
    } else {
      b.node("Shape", {"x"}, {"shp"})
          .node("Gather", {"shp", "zero"}, {"len"})
          .node("Greater", {"len", "zero"}, {"c"});
    }
    b.node("If", {"c"}, {"y"}, "branch");
    set_graph_attr(b, "then_branch", then_b);
    set_graph_attr(b, "else_branch", else_b);
    b.output("y", DType::kF32, {"n"});
    auto r = lint(b);
    if (on_values) {
      const LintFinding* f = find(r, "if-data-dependent");
      ASSERT_TRUE(f) << dump(r);
      EXPECT_EQ(f->severity, LintSeverity::kWarning);
      EXPECT_NE(f->message.find("'x'"), std::string::npos) << f->message;
      EXPECT_NE(f->message.find("reads it back"), std::string::npos);
    } else {
      const LintFinding* f = find(r, "if-static");
      ASSERT_TRUE(f) << dump(r);
      EXPECT_NE(f->message.find("input shapes"), std::string::npos);
    }
  }
}

TEST(Lint, LoopTripCountStaticOrFromData) {
  ModelBuilder body;
  body.input("i", DType::kI64, {})
      .input("cond_in", DType::kBool, {})
      .input("v", DType::kF32, {"4"})
      .node("Identity", {"cond_in"}, {"cond_out"})
      .node("Add", {"v", "v"}, {"v_out"})
      .output("cond_out", DType::kBool, {})
      .output("v_out", DType::kF32, {"4"});
  for (bool from_data : {false, true}) {
    ModelBuilder b;
    b.input("x", DType::kF32, {"4"})
        .initializer("yes", Tensor::from_vector(DType::kBool, {}, std::vector<uint8_t>{1}));
    if (from_data)
      b.input("steps", DType::kI64, {});
    else
      b.initializer("steps", i64_tensor({}, {3}));
    b.node("Loop", {"steps", "yes", "x"}, {"y"}, "loop");
    set_graph_attr(b, "body", body);
    b.output("y", DType::kF32, {"4"});
    auto r = lint(b);
    const LintFinding* f = find(r, from_data ? "loop-data-dependent" : "loop-static");
    ASSERT_TRUE(f) << dump(r);
    EXPECT_EQ(f->node, "loop");
    EXPECT_EQ(f->severity, from_data ? LintSeverity::kWarning : LintSeverity::kInfo);
    EXPECT_EQ(f->value, "steps");
    EXPECT_FALSE(find(r, from_data ? "loop-static" : "loop-data-dependent")) << dump(r);
  }
}

TEST(Lint, GraphInputNoNodeReadsIsReported) {
  ModelBuilder b = relu_model();
  b.input("seq_len", DType::kI64, {});
  auto r = lint(b);
  auto fs = all_of(r, "unused-input");
  ASSERT_EQ(fs.size(), 1u) << dump(r);
  EXPECT_EQ(fs[0]->value, "seq_len");
  EXPECT_EQ(fs[0]->severity, LintSeverity::kWarning);
  EXPECT_NE(fs[0]->message.find("baked"), std::string::npos);
  EXPECT_FALSE(r.has_errors());
}

TEST(Lint, ReshapeToConstantsFreezesTheDynamicBatch) {
  struct Case {
    std::vector<int64_t> target;
    bool frozen;
  };
  for (const Case& c :
       {Case{{8, 768}, true}, Case{{1, -1}, true}, Case{{-1, 768}, false}, Case{{0, -1}, false}}) {
    ModelBuilder b;
    b.input("x", DType::kF32, {"batch", "12", "64"})
        .initializer("shape", i64_tensor({2}, c.target))
        .node("Reshape", {"x", "shape"}, {"y"}, "flatten_heads")
        .output("y");
    auto r = lint(b);
    const LintFinding* f = find(r, "frozen-dim");
    ASSERT_EQ(f != nullptr, c.frozen) << c.target[0] << "," << c.target[1] << "\n" << dump(r);
    if (!f) continue;
    EXPECT_EQ(f->node, "flatten_heads");
    EXPECT_EQ(f->value, "shape");
    EXPECT_NE(f->message.find("'batch'"), std::string::npos) << f->message;
  }
}

TEST(Lint, FixedSizeTableBroadcastAgainstADynamicDimIsFrozen) {
  // A position table sliced with a constant length (the trace's 16) added to embeddings of length 'seq'.
  ModelBuilder b;
  b.input("emb", DType::kF32, {"batch", "seq", "4"})
      .initializer("table", testing::random_f32({1, 32, 4}, 1))
      .initializer("starts", i64_tensor({1}, {0}))
      .initializer("ends", i64_tensor({1}, {16}))
      .initializer("axes", i64_tensor({1}, {1}))
      .node("Slice", {"table", "starts", "ends", "axes"}, {"pos"}, "take_positions")
      .node("Add", {"emb", "pos"}, {"y"}, "add_positions")
      .output("y");
  auto r = lint(b);
  const LintFinding* f = find(r, "frozen-dim");
  ASSERT_TRUE(f) << dump(r);
  EXPECT_EQ(f->node, "add_positions");
  EXPECT_NE(f->message.find("'seq'"), std::string::npos) << f->message;
  EXPECT_NE(f->message.find("16"), std::string::npos);
  EXPECT_NE(f->message.find("take_positions"), std::string::npos) << f->message;
}

TEST(Lint, ExpandToAConstantBatchIsFrozen) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"batch", "4"})
      .initializer("token", testing::random_f32({1, 4}, 2))
      .initializer("shape", i64_tensor({2}, {8, 4}))
      .node("Expand", {"token", "shape"}, {"tokens"}, "expand_token")
      .node("Concat", {"tokens", "x"}, {"y"}, "cat")
      .attr("axis", int64_t{0})
      .output("y");
  auto r = lint(b);
  const LintFinding* f = find(r, "frozen-dim");
  ASSERT_TRUE(f) << dump(r);
  EXPECT_EQ(f->node, "expand_token");
  EXPECT_NE(f->message.find("'batch'"), std::string::npos);
}

TEST(Lint, DynamicDimWithoutNameIsReported) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"?", "4"}).node("Relu", {"x"}, {"y"}).output("y");
  auto r = lint(b);
  const LintFinding* f = find(r, "unnamed-dim");
  ASSERT_TRUE(f) << dump(r);
  EXPECT_EQ(f->value, "x");
  EXPECT_NE(f->message.find("[?,4]"), std::string::npos) << f->message;
  EXPECT_NE(f->advice.find("dynamic_axes"), std::string::npos);
  EXPECT_FALSE(find(lint(relu_model()), "unnamed-dim"));
}

TEST(Lint, Int64InitializerOutsideInt32IsInfoButSentinelsAreNot) {
  const int64_t big = int64_t{1} << 40;
  ModelBuilder b = relu_model();
  b.initializer("ids", i64_tensor({3}, {1, big, std::numeric_limits<int64_t>::max()}))
      .node("Identity", {"ids"}, {"ids_out"})
      .output("ids_out");
  auto r = lint(b);
  const LintFinding* f = find(r, "int64-range");
  ASSERT_TRUE(f) << dump(r);
  EXPECT_EQ(f->severity, LintSeverity::kInfo);
  EXPECT_EQ(f->value, "ids");
  EXPECT_NE(f->message.find("1 value(s)"), std::string::npos) << f->message;
  EXPECT_NE(f->message.find(std::to_string(big)), std::string::npos);

  // Slice's "to the end" (INT64_MAX) is the ONNX idiom, not a pitfall.
  ModelBuilder s = relu_model();
  s.initializer("ends", i64_tensor({1}, {std::numeric_limits<int64_t>::max()}))
      .node("Identity", {"ends"}, {"ends_out"})
      .output("ends_out");
  EXPECT_FALSE(find(lint(s), "int64-range"));
}

TEST(Lint, Fp16RisksOnlyWhenFp16IsPlanned) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "8192"})
      .initializer("scale", f32_tensor({8192}, std::vector<float>(8192, 1.f)))
      .initializer("big", f32_tensor({1}, {1e6f}))
      .initializer("two", f32_tensor({}, {2.f}))
      .node("LayerNormalization", {"x", "scale"}, {"ln"}, "ln")
      .attr("axis", int64_t{-1})
      .node("Softmax", {"ln"}, {"sm"}, "softmax")
      .node("Mul", {"sm", "big"}, {"scaled"}, "scale_up")
      .initializer("axis1", i64_tensor({1}, {1}))
      .node("ReduceSum", {"scaled", "axis1"}, {"total"}, "total")
      .node("Pow", {"x", "two"}, {"sq"}, "square")
      .node("ReduceMean", {"sq"}, {"ms"}, "mean_square")
      .attr("axes", std::vector<int64_t>{1})
      .output("total")
      .output("ms");
  EXPECT_TRUE(lint(b).findings.empty()) << dump(lint(b));
  LintOptions o;
  o.fp16 = true;
  auto r = lint(b, o);
  const LintFinding* range = find(r, "f16-range");
  ASSERT_TRUE(range) << dump(r);
  EXPECT_EQ(range->severity, LintSeverity::kWarning);
  EXPECT_EQ(range->value, "big");
  EXPECT_EQ(range->node, "scale_up");  // the node that reads it, for --fp32-layers
  EXPECT_NE(range->advice.find("--fp32-layers scale_up"), std::string::npos) << range->advice;
  ASSERT_TRUE(find(r, "f16-norm")) << dump(r);
  EXPECT_EQ(find(r, "f16-norm")->node, "ln");
  ASSERT_TRUE(find(r, "f16-softmax")) << dump(r);
  const LintFinding* sum = find(r, "f16-reduce-sum");
  ASSERT_TRUE(sum) << dump(r);
  EXPECT_EQ(sum->node, "total");
  EXPECT_NE(sum->message.find("8192"), std::string::npos);
  const LintFinding* sq = find(r, "f16-square");
  ASSERT_TRUE(sq) << dump(r);
  EXPECT_EQ(sq->node, "mean_square");
  EXPECT_NE(sq->advice.find("--fp32-layers mean_square,square"), std::string::npos) << sq->advice;
}

TEST(Lint, Fp16MaskFillValueIsOnlyInfo) {
  ModelBuilder b = relu_model();
  b.initializer("fill", f32_tensor({}, {-3.4028235e38f}))
      .node("Add", {"y", "fill"}, {"masked"})
      .output("masked");
  LintOptions o;
  o.fp16 = true;
  auto r = lint(b, o);
  const LintFinding* f = find(r, "f16-range");
  ASSERT_TRUE(f) << dump(r);
  EXPECT_EQ(f->severity, LintSeverity::kInfo);
}

TEST(Lint, CpuFallbackCheckNeedsTheCudaBackend) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"3", "3"}).node("Det", {"x"}, {"d"}, "det").output("d");
  LintOptions o;
  o.backend = BackendKind::kCpu;
  auto r = lint(b, o);
  EXPECT_TRUE(r.skipped.empty());
  EXPECT_FALSE(find(r, "cpu-fallback"));
#ifndef KILN_WITH_CUDA
  o.backend = BackendKind::kAuto;  // builds for the CPU in this kiln: nothing to predict, nothing to say
  EXPECT_TRUE(lint(b, o).skipped.empty());
#endif
  o.backend = BackendKind::kCuda;
  r = lint(b, o);
#ifdef KILN_WITH_CUDA
  const LintFinding* f = find(r, "cpu-fallback");
  ASSERT_TRUE(f) << dump(r);
  EXPECT_EQ(f->node, "det");
  EXPECT_EQ(f->severity, LintSeverity::kWarning);
#else
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].find("CUDA backend"), std::string::npos);
  EXPECT_FALSE(r.has_errors());
#endif
}

TEST(Lint, OpsetAndIrVersionOutsideWhatKilnReads) {
  ModelBuilder b = relu_model();
  b.proto().mutable_opset_import(0)->set_version(99);
  b.proto().set_ir_version(99);
  auto r = lint(b);
  ASSERT_TRUE(find(r, "opset")) << dump(r);
  EXPECT_EQ(find(r, "opset")->severity, LintSeverity::kError);
  EXPECT_NE(find(r, "opset")->message.find("99"), std::string::npos);
  ASSERT_TRUE(find(r, "ir-version")) << dump(r);
  EXPECT_EQ(find(r, "ir-version")->severity, LintSeverity::kError);

  ModelBuilder old = relu_model();
  old.proto().mutable_opset_import(0)->set_version(9);
  auto r_old = lint(old);
  ASSERT_TRUE(find(r_old, "opset")) << dump(r_old);
  EXPECT_EQ(find(r_old, "opset")->severity, LintSeverity::kWarning);
  EXPECT_FALSE(find(lint(relu_model()), "opset"));
}

TEST(Lint, ModelOverTwoGigabytesWithoutExternalDataIsAnError) {
  // A sparse file: its size is what lint reads first; no byte of it is written or parsed.
  const auto path =
      std::filesystem::temp_directory_path() / ("kiln_lint_huge_" + std::to_string(::getpid()) + ".onnx");
  { std::ofstream(path, std::ios::binary) << "x"; }
  std::filesystem::resize_file(path, (uint64_t{2} << 30) + 1);
  auto r = lint_model(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const LintFinding* f = find(*r, "model-size");
  ASSERT_TRUE(f) << dump(*r);
  EXPECT_EQ(f->severity, LintSeverity::kError);
  EXPECT_NE(f->advice.find("external"), std::string::npos);
}

TEST(Lint, UnusedInitializersAreListedTogether) {
  ModelBuilder b = relu_model();
  b.initializer("old_a", f32_tensor({2}, {1, 2})).initializer("old_b", f32_tensor({1}, {3}));
  auto r = lint(b);
  auto fs = all_of(r, "unused-initializer");
  ASSERT_EQ(fs.size(), 1u) << dump(r);
  EXPECT_EQ(fs[0]->severity, LintSeverity::kInfo);
  EXPECT_EQ(fs[0]->value, "old_a");
  EXPECT_EQ(fs[0]->others, std::vector<std::string>{"old_b"});
}

TEST(Lint, DuplicateValueAndNodeNames) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"4"})
      .node("Relu", {"x"}, {"y"}, "act")
      .node("Neg", {"x"}, {"y"}, "act")
      .output("y");
  auto r = lint(b);
  const LintFinding* v = find(r, "duplicate-name");
  ASSERT_TRUE(v) << dump(r);
  EXPECT_EQ(v->severity, LintSeverity::kError);
  EXPECT_EQ(v->value, "y");
  EXPECT_NE(v->message.find("already defined by node 'act' (Relu)"), std::string::npos) << v->message;
  const LintFinding* n = find(r, "duplicate-node-name");
  ASSERT_TRUE(n) << dump(r);
  EXPECT_EQ(n->node, "act");
  EXPECT_EQ(n->severity, LintSeverity::kWarning);
}

TEST(Lint, ShapeContradictionIsTheErrorTheBuildWouldStopAt) {
  ModelBuilder b;
  b.input("x", DType::kF32, {"2", "3"})
      .initializer("shape", i64_tensor({1}, {5}))
      .node("Reshape", {"x", "shape"}, {"y"}, "bad_reshape")
      .output("y");
  auto r = lint(b);
  const LintFinding* f = find(r, "shape-error");
  ASSERT_TRUE(f) << dump(r);
  EXPECT_EQ(f->node, "bad_reshape");
  EXPECT_EQ(f->severity, LintSeverity::kError);
}

TEST(Lint, SequenceInputIsAnUnsupportedType) {
  ModelBuilder b = relu_model();
  auto* in = b.proto().mutable_graph()->add_input();
  in->set_name("seq");
  in->mutable_type()->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type()->set_elem_type(1);
  auto r = lint(b);
  const LintFinding* f = find(r, "unsupported-type");
  ASSERT_TRUE(f) << dump(r);
  EXPECT_EQ(f->value, "seq");
}

TEST(Lint, FileThatIsNotOnnxIsAnErrorNamingIt) {
  const std::string path = std::string(KILN_SOURCE_DIR) + "/tests/cli/fixtures/random_bytes.onnx";
  auto r = lint_model(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("random_bytes.onnx"), std::string::npos) << r.status().to_string();
  auto missing = lint_model("/nonexistent/model.onnx");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/model.onnx"), std::string::npos);
}

TEST(Lint, FindingsAreOrderedBySeverity) {
  ModelBuilder b = relu_model();
  b.input("unused", DType::kF32, {"1"}).initializer("dead", f32_tensor({1}, {0}));
  b.node("Nope", {"y"}, {"z"}).output("z");
  auto r = lint(b);
  ASSERT_GE(r.findings.size(), 3u) << dump(r);
  for (size_t i = 1; i < r.findings.size(); ++i)
    EXPECT_GE(static_cast<int>(r.findings[i - 1].severity), static_cast<int>(r.findings[i].severity))
        << dump(r);
}

}  // namespace
}  // namespace kiln
