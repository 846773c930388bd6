// import_for_lint: the model as kiln's importer sees it, with what the importer refuses cut out, so that the
// checks needing shapes and constants still run on a model with an unknown op or a duplicate name. Shape
// inference goes node by node and keeps going past a node it cannot infer; such a node is a finding (the
// build would stop there) unless something cut out upstream explains it.
#include <fmt/format.h>

#include <climits>
#include <filesystem>

#include "backends/cpu/executor.h"
#include "lint/lint_context.h"
#include "onnx/importer.h"
#include "ops/op.h"
#include "util/safe_text.h"

namespace kiln::lint {

namespace {

using S = LintSeverity;

// Folding a constant costs a CPU kernel run: small shape-like tensors only (targets, indices, scalars).
constexpr int64_t kMaxFoldedInput = 1 << 20;
constexpr int64_t kMaxFoldedOutput = 1 << 16;

bool has_unsupported_in_subgraphs(const kiln_onnx::GraphProto& g) {
  bool found = false;
  for_each_graph(g, [&](const kiln_onnx::GraphProto& sub, int depth) {
    if (depth == 0) return;
    for (const auto& n : sub.node()) found |= !op_supported(n);
  });
  return found;
}

// Elements above which an initializer is a weight to lint: it enters the lint model as a typed graph input
// rather than as data, so linting a 500 MB model copies no weights. Shape targets and other constants whose
// values matter are far smaller.
constexpr int64_t kWeightElements = 1 << 16;

int64_t element_count(const kiln_onnx::TensorProto& t) {
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || (d > 0 && n > INT64_MAX / d)) return -1;
    n *= d;
  }
  return n;
}

// Whether a weight's data is all there, checked without reading it (what the importer would refuse).
std::string weight_data_problem(const kiln_onnx::TensorProto& t, int64_t count, const std::string& base_dir) {
  auto dt = dtype_from_onnx(t.data_type());
  if (!dt || dtype_size(*dt) == 0) return "";  // the importer names unusual dtypes itself
  const int64_t want = count * static_cast<int64_t>(dtype_size(*dt));
  if (t.data_location() == kiln_onnx::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0;
    for (const auto& kv : t.external_data()) {
      if (kv.key() == "location") location = kv.value();
      if (kv.key() == "offset") offset = std::atoll(kv.value().c_str());
    }
    if (location.empty() || location == "@weights") return "";
    std::error_code ec;
    const auto size = std::filesystem::file_size(std::filesystem::path(base_dir) / location, ec);
    if (ec)
      return fmt::format("its external data file '{}' cannot be read ({})", printable(location),
                         ec.message());
    if (static_cast<int64_t>(size) < offset + want)
      return fmt::format("its external data file '{}' has {} bytes, but offset {} + {} bytes are needed",
                         printable(location), size, offset, want);
    return "";
  }
  int64_t have = -1;
  if (t.has_raw_data())
    have = static_cast<int64_t>(t.raw_data().size()) / static_cast<int64_t>(dtype_size(*dt));
  else if (t.float_data_size())
    have = t.float_data_size();
  else if (t.int32_data_size())
    have = t.int32_data_size();
  else if (t.int64_data_size())
    have = t.int64_data_size();
  else if (t.double_data_size())
    have = t.double_data_size();
  else if (t.uint64_data_size())
    have = t.uint64_data_size();
  else
    have = 0;
  if (have != count)
    return fmt::format("it has {} values but {} {} needs {}", have, dtype_name(*dt),
                       dims_to_string({t.dims().begin(), t.dims().end()}), count);
  return "";
}

struct LintModel {
  kiln_onnx::ModelProto model;
  std::set<std::string> cut;      // values standing for something cut out
  std::set<std::string> weights;  // initializers that became typed inputs
};

// The model the lint import reads: the main graph without what the importer refuses (unsupported nodes cut
// out, their outputs turned into untyped inputs; later duplicates dropped or renamed), versions clamped, and
// weights as typed inputs. The source's weights are never copied.
LintModel lint_model_of(LintContext& ctx) {
  LintModel out;
  const auto& src = ctx.model;
  kiln_onnx::ModelProto& m = out.model;
  m.set_ir_version(std::min<int64_t>(src.ir_version(), onnx::kMaxIrVersion));
  *m.mutable_opset_import() = src.opset_import();
  for (auto& imp : *m.mutable_opset_import())
    if ((imp.domain().empty() || imp.domain() == "ai.onnx") && imp.version() > onnx::kMaxOpset)
      imp.set_version(onnx::kMaxOpset);
  const auto& sg = src.graph();
  auto* g = m.mutable_graph();
  g->set_name(sg.name());
  *g->mutable_output() = sg.output();
  *g->mutable_value_info() = sg.value_info();
  std::set<std::string> defined, all_names;
  for (const auto& n : sg.node())
    for (const auto& o : n.output()) all_names.insert(o);
  std::set<std::string> init_names;
  for (const auto& t : sg.initializer()) init_names.insert(t.name());
  for (const auto& in : sg.input())
    if (!init_names.count(in.name()) && defined.insert(in.name()).second) *g->add_input() = in;
  std::set<std::string> seen_inits;
  for (const auto& t : sg.initializer()) {
    if (!seen_inits.insert(t.name()).second || defined.count(t.name())) continue;
    defined.insert(t.name());
    const int64_t count = element_count(t);
    if (count <= kWeightElements || t.data_type() == static_cast<int32_t>(DType::kString)) {
      *g->add_initializer() = t;
      continue;
    }
    if (std::string problem = weight_data_problem(t, count, ctx.base_dir); !problem.empty())
      ctx.add(LintSeverity::kError, "import", "", "", t.name(),
              fmt::format("initializer '{}': {}", printable(t.name()), problem),
              "kiln build stops here: the file is truncated or was edited; re-export the model");
    auto* v = g->add_input();
    v->set_name(t.name());
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(t.data_type());
    for (int64_t d : t.dims()) tt->mutable_shape()->add_dim()->set_dim_value(d);
    out.weights.insert(t.name());
  }
  std::map<std::string, const kiln_onnx::ValueInfoProto*> declared;
  for (const auto& v : sg.value_info()) declared[v.name()] = &v;
  for (const auto& v : sg.output()) declared[v.name()] = &v;
  int renamed = 0;
  for (int i = 0; i < sg.node_size(); ++i) {
    const auto& sn = sg.node(i);
    if (!op_supported(sn)) {
      for (const auto& o : sn.output()) {
        if (o.empty() || defined.count(o)) continue;
        auto* v = g->add_input();
        if (auto it = declared.find(o); it != declared.end()) *v = *it->second;
        v->set_name(o);
        defined.insert(o);
        out.cut.insert(o);
      }
      continue;
    }
    auto* n = g->add_node();
    *n = sn;
    // The importer names unnamed nodes by their index; keep those names although nodes before were cut.
    if (n->name().empty()) n->set_name(node_name(sn, i));
    for (auto& o : *n->mutable_output()) {
      if (o.empty()) continue;
      if (defined.count(o)) {
        std::string fresh;
        do fresh = fmt::format("{}__lint_duplicate_{}", o, renamed++);
        while (all_names.count(fresh) || defined.count(fresh));
        o = fresh;
        out.cut.insert(fresh);
      }
      defined.insert(o);
    }
  }
  return out;
}

bool foldable(const ir::Node& n) {
  return n.op_type != "If" && n.op_type != "Loop" && n.op_type != "Scan" &&
         n.op_type.rfind("Random", 0) != 0 && n.op_type != "Bernoulli" && n.op_type != "Multinomial";
}

void infer_tolerantly(LintContext& ctx, LintGraph& lg) {
  ir::Graph& g = lg.graph;
  for (const auto& n : g.nodes) {
    bool tainted = false;
    std::vector<const ir::ValueInfo*> infos(n.inputs.size(), nullptr);
    std::vector<const Tensor*> values(n.inputs.size(), nullptr);
    bool all_const = true;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (n.inputs[i].empty()) continue;
      tainted |= lg.tainted.count(n.inputs[i]) != 0;
      auto it = g.values.find(n.inputs[i]);
      infos[i] = it != g.values.end() ? &it->second : nullptr;
      if (auto c = lg.constants.find(n.inputs[i]); c != lg.constants.end())
        values[i] = &c->second;
      else
        all_const = false;
      tainted |= infos[i] == nullptr;  // a value of an enclosing scope the importer did not type
    }
    auto taint_outputs = [&] {
      for (const auto& o : n.outputs)
        if (!o.empty()) lg.tainted.insert(o);
    };
    if (tainted) {
      taint_outputs();
      continue;
    }
    ops::InferContext ictx(n, g.opset, infos, values);
    Status s = ops::infer_node(n, g.opset, ictx);
    for (size_t i = 0; s.ok() && i < n.outputs.size(); ++i) {
      if (n.outputs[i].empty()) continue;
      const auto& inferred = ictx.outputs()[i];
      auto& slot = g.values[n.outputs[i]];
      ir::ValueInfo merged = inferred;
      if (slot.dtype != DType::kUndefined && inferred.dtype != DType::kUndefined &&
          slot.dtype != inferred.dtype) {
        s = Status(
            StatusCode::kInvalidModel,
            fmt::format("{}: output '{}' is declared {} in the model but the op produces {}", n.label(),
                        printable(n.outputs[i]), dtype_name(slot.dtype), dtype_name(inferred.dtype)));
        break;
      }
      if (merged.dtype == DType::kUndefined) merged.dtype = slot.dtype;
      if (!merged.shape.has_rank()) {
        merged.shape = slot.shape;
      } else if (slot.shape.has_rank() && slot.shape.rank() == merged.shape.rank()) {
        for (size_t d = 0; d < merged.shape.rank(); ++d) {
          const Dim& decl = slot.shape[d];
          Dim& inf = merged.shape[d];
          if (inf.is_static() && decl.is_static() && inf.value() != decl.value()) {
            s = Status(
                StatusCode::kInvalidModel,
                fmt::format("{}: output '{}' is declared {} in the model but the op produces {}", n.label(),
                            printable(n.outputs[i]), slot.shape.to_string(), merged.shape.to_string()));
            break;
          }
          if (!inf.is_static() && !decl.is_unknown()) inf = decl;
        }
      }
      slot = merged;
    }
    if (!s.ok()) {
      const bool unsupported = s.code() == StatusCode::kUnsupported;
      ctx.add(S::kError, unsupported ? "unsupported-node" : "shape-error", n.name, n.op_type, "", s.message(),
              unsupported
                  ? "kiln build stops at this node: change what the message names (an attribute value or "
                    "dtype kiln does not take) or export this module differently"
                  : "kiln build stops at this node: the shapes or dtypes the model declares, or the "
                    "constant shape inputs it was exported with, contradict each other; re-export, or fix "
                    "what the message names");
      taint_outputs();
      continue;
    }
    if (!all_const || !foldable(n)) continue;
    bool small = true;
    for (const Tensor* v : values) small &= v == nullptr || v->numel() <= kMaxFoldedInput;
    for (const auto& o : ictx.outputs())
      small &= o.shape.has_rank() && o.shape.is_static() &&
               num_elements(o.shape.static_dims()) <= kMaxFoldedOutput;
    if (!small) continue;
    auto outs = cpu::run_node(n, g.opset, values);
    if (!outs.ok()) continue;  // folding is only a help here; the run-time error is not lint's to predict
    for (size_t i = 0; i < n.outputs.size() && i < outs->size(); ++i)
      if (!n.outputs[i].empty() && (*outs)[i].defined()) lg.constants[n.outputs[i]] = std::move((*outs)[i]);
  }
}

}  // namespace

std::optional<LintGraph> import_for_lint(LintContext& ctx) {
  if (has_unsupported_in_subgraphs(ctx.model.graph())) {
    ctx.skip(
        "shape checks (frozen dims, f16 risks, CPU fallback): unsupported ops inside If/Loop/Scan bodies");
    return std::nullopt;
  }
  LintModel lm = lint_model_of(ctx);
  std::string bytes;
  if (!lm.model.SerializeToString(&bytes)) {
    ctx.skip("shape checks: the cut-down model could not be serialized");
    return std::nullopt;
  }
  auto g = onnx::import_model_bytes(bytes, ctx.base_dir, ctx.what);
  if (!g.ok()) {
    // What is cut out above is reported already; anything else the importer refuses is a finding of its own.
    if (ctx.report.has_errors()) {
      ctx.skip("shape checks: kiln's importer also refuses the model once the findings above are cut out: " +
               g.status().message());
    } else {
      ctx.add(S::kError, "import", "", "", "", g.status().message(),
              "kiln build stops here: fix what the message names (re-export, or repair the file)");
    }
    return std::nullopt;
  }
  LintGraph lg;
  lg.graph = std::move(*g);
  lg.tainted = std::move(lm.cut);
  lg.weights = std::move(lm.weights);
  lg.constants = lg.graph.initializers;
  infer_tolerantly(ctx, lg);
  return lg;
}

}  // namespace kiln::lint
