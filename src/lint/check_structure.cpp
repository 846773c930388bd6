// Checks of the model's structure, on the ModelProto itself: versions, ops kiln lacks, duplicate names,
// inputs and initializers nothing reads, dynamic dims without names.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "lint/lint_context.h"
#include "onnx/importer.h"
#include "util/safe_text.h"

namespace kiln::lint {

namespace {

using S = LintSeverity;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Names of a list, the first few of them, for messages ("a, b, c and 7 more").
std::string name_list(const std::vector<std::string>& names, size_t shown = 5) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < shown; ++i)
    s += (i ? ", " : "") + ("'" + printable(names[i]) + "'");
  if (names.size() > shown) s += fmt::format(" and {} more", names.size() - shown);
  return s;
}

bool is_attention_like(const std::string& op, const std::string& domain) {
  const std::string s = lower(op + " " + domain);
  for (const char* k :
       {"attention", "flash", "xformers", "sdpa", "memoryefficient", "memory_efficient", "mha"})
    if (s.find(k) != std::string::npos) return true;
  return false;
}

const char* kSdpaAdvice =
    "export attention with torch.nn.functional.scaled_dot_product_attention on (batch, heads, seq, head_dim) "
    "tensors instead of a FlashAttention/xFormers call or custom symbolic: it exports as standard ONNX ops "
    "(MatMul, Softmax, ... or Attention at opset 23), which kiln fuses into its own attention kernel";

int64_t declared_bytes(const kiln_onnx::TensorProto& t) {
  int64_t n = 1;
  for (int64_t d : t.dims()) n = d > 0 && n <= INT64_MAX / d ? n * d : (d == 0 ? 0 : n);
  auto dt = dtype_from_onnx(t.data_type());
  return n * static_cast<int64_t>(dt ? std::max<size_t>(dtype_size(*dt), 1) : 1);
}

std::string type_kind(const kiln_onnx::TypeProto& t) {
  if (t.has_sequence_type()) return "a sequence";
  if (t.has_map_type()) return "a map";
  if (t.has_optional_type()) return "an optional";
  if (t.has_sparse_tensor_type()) return "a sparse tensor";
  return "";
}

}  // namespace

void check_versions(LintContext& ctx) {
  const auto& m = ctx.model;
  if (m.ir_version() > onnx::kMaxIrVersion)
    ctx.add(
        S::kError, "ir-version", "", "", "",
        fmt::format("{} has IR version {}; kiln reads IR versions up to {}", ctx.what, m.ir_version(),
                    onnx::kMaxIrVersion),
        fmt::format("re-export with an exporter that writes IR version {} or older (torch.onnx.export of "
                    "torch 2.x does), or set model.ir_version = {} with the onnx package when the model uses "
                    "nothing newer",
                    onnx::kMaxIrVersion, onnx::kMaxIrVersion));
  bool has_default = false;
  for (const auto& imp : m.opset_import()) has_default |= imp.domain().empty() || imp.domain() == "ai.onnx";
  const int64_t opset = default_opset(m);
  if (!has_default) {
    ctx.add(S::kWarning, "opset", "", "", "",
            fmt::format(
                "{} imports no opset of the default ONNX domain; kiln reads it as opset 1, whose ops differ "
                "from today's in many details",
                ctx.what),
            "re-export with an explicit opset: torch.onnx.export(..., opset_version=17)");
  } else if (opset > onnx::kMaxOpset) {
    ctx.add(
        S::kError, "opset", "", "", "",
        fmt::format("{} uses opset {}; kiln supports opsets up to {}", ctx.what, opset, onnx::kMaxOpset),
        fmt::format("export with opset_version={} or lower (torch.onnx.export(..., opset_version=17)), or "
                    "convert it: onnx.version_converter.convert_version(model, {})",
                    onnx::kMaxOpset, onnx::kMaxOpset));
  } else if (opset < 11) {
    ctx.add(S::kWarning, "opset", "", "", "",
            fmt::format(
                "{} uses opset {}, older than the opsets kiln is made for (11 to {}): it imports, but ops "
                "whose definition changed since (Upsample, Slice and Pad with attributes, ...) may be "
                "refused node by node",
                ctx.what, opset, onnx::kMaxOpset),
            "re-export with opset_version=17 (any of 13 to 23)");
  }
}

void check_ops(LintContext& ctx) {
  struct Group {
    std::string domain, op;
    std::vector<std::string> nodes;
  };
  std::vector<Group> groups;  // in the order first met
  for_each_graph(ctx.model.graph(), [&](const kiln_onnx::GraphProto& g, int) {
    for (int i = 0; i < g.node_size(); ++i) {
      const auto& n = g.node(i);
      if (op_supported(n)) continue;
      const std::string domain = n.domain() == "ai.onnx" ? "" : n.domain();
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const Group& gr) { return gr.domain == domain && gr.op == n.op_type(); });
      if (it == groups.end()) it = groups.insert(groups.end(), Group{domain, n.op_type(), {}});
      it->nodes.push_back(node_name(n, i));
    }
  });
  for (const auto& gr : groups) {
    const std::string label = gr.domain.empty() ? gr.op : gr.domain + "::" + gr.op;
    const std::string where = gr.nodes.size() == 1
                                  ? fmt::format("node {}", name_list(gr.nodes))
                                  : fmt::format("{} nodes ({})", gr.nodes.size(), name_list(gr.nodes));
    std::string message, advice, check = gr.domain.empty() ? "unsupported-op" : "custom-domain";
    if (is_attention_like(gr.op, gr.domain)) {
      message = fmt::format(
          "{} uses {}, a custom attention op (FlashAttention/xFormers style) kiln has no "
          "implementation for",
          where, label);
      advice = kSdpaAdvice;
    } else if (gr.domain == "com.microsoft") {
      message = fmt::format(
          "{} uses {}, an ONNX Runtime contrib op (usually put in by onnxruntime's graph or "
          "transformer optimizer); kiln has no implementation for it",
          where, label);
      advice =
          "lint and build the model as exported, before ONNX Runtime's optimizations: kiln makes its own "
          "fusions (attention, LayerNorm, GELU, matmul epilogues)";
    } else if (gr.domain == "ai.onnx.ml") {
      message = fmt::format(
          "{} uses {}, an ONNX-ML op (classical machine learning); kiln runs the default ONNX "
          "domain only",
          where, label);
      advice = "run this part with an ONNX-ML runtime and give kiln the neural-network part alone";
    } else if (!gr.domain.empty()) {
      message = fmt::format("{} uses {}, an op of the custom domain '{}' that kiln has no implementation for",
                            where, label, printable(gr.domain));
      advice =
          "export the module this op stands for with standard ONNX ops (without its custom symbolic or "
          "plugin), or keep that part in your own code and give kiln the rest";
    } else {
      message = fmt::format("{} uses {}, which kiln does not implement (opset {})", where, label,
                            default_opset(ctx.model));
      advice =
          "docs/ops.md lists the ops kiln runs: rewrite the module with ops from that list (or export with "
          "another opset, which may decompose it), or keep that part in your own code";
    }
    auto& f = ctx.add(S::kError, check, gr.nodes.front(), label, "", message, advice);
    f.others.assign(gr.nodes.begin() + 1, gr.nodes.end());
  }
  const auto& g = ctx.model.graph();
  for (const auto* list : {&g.input(), &g.output()})
    for (const auto& v : *list) {
      const std::string kind = v.has_type() ? type_kind(v.type()) : "";
      if (kind.empty()) continue;
      const bool is_input = list == &g.input();
      ctx.add(S::kError, "unsupported-type", "", "", v.name(),
              fmt::format("graph {} '{}' is {}; kiln engines take and return tensors only",
                          is_input ? "input" : "output", printable(v.name()), kind),
              "return or take tensors (stack a list of tensors into one, pass a None-able value as a tensor "
              "and a "
              "flag), or keep that part in your own code");
    }
  if (g.sparse_initializer_size() > 0)
    ctx.add(S::kError, "unsupported-type", "", "", g.sparse_initializer(0).values().name(),
            fmt::format("the graph has {} sparse initializer(s); kiln reads dense initializers only",
                        g.sparse_initializer_size()),
            "store the weights densely (onnx.numpy_helper.from_array of the dense array)");
}

namespace {

// One graph's names, with the values its enclosing graphs define (a subgraph may read them but not redefine).
void check_graph_names(LintContext& ctx, const kiln_onnx::GraphProto& g, std::set<std::string> defined) {
  std::map<std::string, std::string> producer;  // value -> who defines it, for messages
  for (const auto& v : defined) producer[v] = "an enclosing graph";
  std::set<std::string> inits;
  for (const auto& init : g.initializer()) {
    if (!inits.insert(init.name()).second)
      ctx.add(S::kError, "duplicate-name", "", "", init.name(),
              fmt::format("initializer '{}' is defined twice in graph '{}'", printable(init.name()),
                          printable(g.name())),
              "keep one of them: every value must have exactly one definition");
  }
  for (const auto& in : g.input()) {
    if (inits.count(in.name())) continue;  // IR < 4 lists initializers as inputs too
    if (defined.count(in.name()))
      ctx.add(S::kError, "duplicate-name", "", "", in.name(),
              fmt::format("graph input '{}' of graph '{}' is already defined by {}", printable(in.name()),
                          printable(g.name()), producer[in.name()]),
              "rename one of them: every value must have exactly one definition");
    defined.insert(in.name());
    producer[in.name()] = "a graph input";
  }
  for (const auto& i : inits) {
    if (defined.count(i) && producer[i] != "a graph input")
      ctx.add(S::kError, "duplicate-name", "", "", i,
              fmt::format("initializer '{}' of graph '{}' is already defined by {}", printable(i),
                          printable(g.name()), producer[i]),
              "rename one of them: every value must have exactly one definition");
    defined.insert(i);
    producer[i] = "an initializer";
  }
  std::map<std::string, std::vector<int>> by_name;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    if (!n.name().empty()) by_name[n.name()].push_back(i);
    for (const auto& a : n.attribute()) {
      if (a.has_g()) check_graph_names(ctx, a.g(), defined);
      for (const auto& sub : a.graphs()) check_graph_names(ctx, sub, defined);
    }
    const std::string label =
        fmt::format("node '{}' ({})", printable(node_name(n, i)), printable(op_label(n)));
    for (const auto& o : n.output()) {
      if (o.empty()) continue;
      if (defined.count(o)) {
        ctx.add(
            S::kError, "duplicate-name", node_name(n, i), op_label(n), o,
            fmt::format("value '{}' is produced by {} but is already defined by {}; kiln (like ONNX) needs "
                        "exactly one producer per value",
                        printable(o), label, producer[o]),
            "rename one of the two outputs and the inputs that read it; this usually comes from editing or "
            "merging graphs by hand");
        continue;
      }
      defined.insert(o);
      producer[o] = label;
    }
  }
  for (const auto& [name, idx] : by_name) {
    if (idx.size() < 2) continue;
    const auto& first = g.node(idx[0]);
    ctx.add(S::kWarning, "duplicate-node-name", name, op_label(first), "",
            fmt::format("{} nodes of graph '{}' are named '{}'", idx.size(), printable(g.name()),
                        printable(name)),
            "give every node its own name: kiln adds a trailing '_' to later duplicates, so error messages, "
            "--fp32-layers and per-layer reports would name nodes your tools do not know");
  }
}

// Every value read anywhere: node inputs and graph outputs of the graph and all its subgraphs.
void collect_reads(const kiln_onnx::GraphProto& root, std::set<std::string>& reads) {
  for_each_graph(root, [&](const kiln_onnx::GraphProto& g, int) {
    for (const auto& n : g.node())
      for (const auto& in : n.input()) reads.insert(in);
    for (const auto& o : g.output()) reads.insert(o.name());
  });
}

}  // namespace

void check_names(LintContext& ctx) {
  check_graph_names(ctx, ctx.model.graph(), {});
}

void check_usage(LintContext& ctx) {
  std::set<std::string> reads;
  collect_reads(ctx.model.graph(), reads);
  const auto& g = ctx.model.graph();
  std::set<std::string> inits;
  for (const auto& i : g.initializer()) inits.insert(i.name());
  for (const auto& in : g.input()) {
    if (inits.count(in.name()) || reads.count(in.name())) continue;
    ctx.add(
        S::kWarning, "unused-input", "", "", in.name(),
        fmt::format(
            "graph input '{}' is read by no node: what you pass for it changes nothing. Typically the "
            "exporter traced a Python scalar or flag (a length, a step, a mode) and baked the value it "
            "saw into the graph as a constant",
            printable(in.name())),
        "if the value should matter, pass it to the model as a tensor and compute with it as a tensor "
        "(torch.tensor(n), not int(n) or .item()), and check that the export keeps it; otherwise leave the "
        "input out of the export");
  }
  for_each_graph(g, [&](const kiln_onnx::GraphProto& sub, int depth) {
    std::vector<std::string> unused;
    int64_t bytes = 0;
    for (const auto& init : sub.initializer())
      if (!reads.count(init.name())) {
        unused.push_back(init.name());
        bytes += declared_bytes(init);
      }
    if (unused.empty()) return;
    auto& f = ctx.add(
        S::kInfo, "unused-initializer", "", "", unused.front(),
        fmt::format("{} initializer(s) of {} are read by no node ({:.3f} MB): {}", unused.size(),
                    depth == 0 ? std::string("the main graph") : "subgraph '" + printable(sub.name()) + "'",
                    static_cast<double>(bytes) / 1e6, name_list(unused)),
        "kiln drops them at build; remove them from the file to make it smaller (onnxsim, or "
        "onnx.helper to rebuild the graph without them)");
    f.others.assign(unused.begin() + 1, unused.end());
  });
}

void check_input_dims(LintContext& ctx) {
  const auto& g = ctx.model.graph();
  std::set<std::string> inits;
  for (const auto& i : g.initializer()) inits.insert(i.name());
  for (const auto& in : g.input()) {
    if (inits.count(in.name())) continue;
    if (!in.has_type() || !type_kind(in.type()).empty()) {
      if (!in.has_type())
        ctx.add(S::kWarning, "untyped-input", "", "", in.name(),
                fmt::format(
                    "graph input '{}' declares no type: kiln cannot tell its dtype or rank before it runs",
                    printable(in.name())),
                "declare it (the exporter does from an example input; with the onnx package, "
                "onnx.helper.make_tensor_value_info)");
      continue;
    }
    const auto& tt = in.type().tensor_type();
    if (!tt.has_shape()) {
      ctx.add(S::kWarning, "unknown-rank", "", "", in.name(),
              fmt::format("graph input '{}' declares no shape (not even its rank): no shape check or "
                          "optimization can rely on it",
                          printable(in.name())),
              "export with an example input of the real rank, naming the dims that vary (dynamic_axes / "
              "dynamic_shapes)");
      continue;
    }
    std::vector<std::string> dims;
    std::vector<int> unnamed;
    for (int d = 0; d < tt.shape().dim_size(); ++d) {
      const auto& dim = tt.shape().dim(d);
      if (dim.has_dim_value() && dim.dim_value() >= 0) {
        dims.push_back(std::to_string(dim.dim_value()));
      } else if (dim.has_dim_param() && !dim.dim_param().empty()) {
        dims.push_back(printable(dim.dim_param()));
      } else {
        dims.push_back("?");
        unnamed.push_back(d);
      }
    }
    if (unnamed.empty()) continue;
    ctx.add(
        S::kWarning, "unnamed-dim", "", "", in.name(),
        fmt::format("graph input '{}' has shape [{}]: dim {} is dynamic but has no name, so kiln cannot tell "
                    "that it is the same dim as another input's (e.g. both batch): shape checks, broadcasts "
                    "and fusions that need equal dims stay conservative",
                    printable(in.name()), fmt::join(dims, ","), fmt::join(unnamed, ", ")),
        fmt::format("name it at export: torch.onnx.export(..., dynamic_axes={{'{}': {{{}: 'batch'}}}}) or "
                    "dynamic_shapes with torch.export.Dim; kiln build --shapes then gives its range",
                    printable(in.name()), unnamed.front()));
  }
}

}  // namespace kiln::lint
