// Puts 2-D convolutions in channels-last layout. cuDNN's f16/bf16 tensor-core kernels want NHWC; given NCHW
// they pick FMA kernels or transpose internally on every call. So, for each FusedConv (layout NCHW, 2 spatial
// dims, constant 4-D weight):
//   W [M, C/g, kh, kw]  -> a new initializer W' [M, kh, kw, C/g], permuted here once (shared weights once),
//   X, Z                -> Transpose(perm [0,2,3,1]) in front,
//   Y                   -> the conv writes Y' [N, H', W', M]; Transpose(perm [0,3,1,2]) gives Y back to its
//                          readers (and to the graph outputs) under its old name,
// and the node gets layout="NHWC". Then Transposes simplify: Transpose(p2)(Transpose(p1)(x)) reads x with
// the composed permutation (x[p1[p2[i]]]), which when it is the identity means "read x" directly, and equal
// Transposes of one value collapse into one. So consecutive convolutions (ResNet's blocks, the residual Z
// included) pass NHWC tensors with nothing in between; Transposes stay only where another op (pooling,
// reductions, graph I/O) reads NCHW. A Transpose whose output a graph output or a subgraph body names keeps
// its name (it may become a copy). Before that, elementwise nodes (binary ops, fuse_pointwise's
// PointwiseChain) whose operands are Transposes with one permutation, constants (transposed once) or one-element
// values run on the untransposed operands, the Transpose moving after them, and so do unary elementwise ops and
// global pooling (as a ReduceMean/ReduceMax over the permuted spatial axes): a residual stream added outside
// the convolutions (ConvNeXt's blocks: dwconv, channels-last LayerNorm and MLP, permute back, layer scale, Add)
// then stays channels-last from block to block instead of being transposed out and back around every Add,
// and a squeeze-excitation block (pool, two 1x1 convs, gate, scale) reads and scales the
// channels-last activations in place. Nodes are rewired only to values defined earlier, so the order stays topological; the pass ends with
// dead-code removal (the NCHW weights, Transposes nobody reads) and shape inference.
//
// The pass itself is layout policy only: any float dtype is converted. The builder runs it for CUDA f16/bf16
// engines, where measured cuDNN NHWC wins; f32 and the CPU backend keep NCHW.
#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "ops/fused_conv.h"
#include "ops/op.h"
#include "passes/pass.h"
#include "passes/pattern_util.h"
#include "util/error.h"

namespace kiln::passes {

namespace {

constexpr size_t kRank = 4;  // N, C, H, W: 2 spatial dims

std::vector<int64_t> as_ints(const std::vector<size_t>& p) {
  return {p.begin(), p.end()};
}

bool is_identity(const std::vector<int64_t>& p) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != static_cast<int64_t>(i)) return false;
  return true;
}

bool is_transpose(const ir::Node& n) {
  return n.op_type == "Transpose" && n.domain.empty() && n.inputs.size() == 1 && !n.inputs[0].empty() &&
         n.outputs.size() == 1 && !n.outputs[0].empty();
}

// The node's perm, or the default (reversed dims) when the input's rank is known; empty when neither.
std::vector<int64_t> perm_of(const ir::Graph& g, const ir::Node& t) {
  if (t.has_attr("perm")) return t.attr_ints("perm");
  const ir::ValueInfo* v = g.value(t.inputs[0]);
  if (!v || !v->shape.has_rank()) return {};
  std::vector<int64_t> p;
  for (size_t i = v->shape.rank(); i-- > 0;) p.push_back(static_cast<int64_t>(i));
  return p;
}

ir::Node transpose_node(const std::string& name, const std::string& in, const std::string& out,
                        const std::vector<int64_t>& perm) {
  ir::Node t;
  t.name = name;
  t.op_type = "Transpose";
  t.inputs = {in};
  t.outputs = {out};
  t.attrs["perm"] = ir::Attribute::of_ints(perm);
  return t;
}

std::vector<size_t> inverse_of(const std::vector<int64_t>& perm) {
  std::vector<size_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[static_cast<size_t>(perm[i])] = i;
  return inverse;
}

Shape permuted(const Shape& s, const std::vector<size_t>& perm) {
  if (!s.has_rank() || s.rank() != perm.size()) return Shape::unknown_rank();
  std::vector<Dim> out;
  for (size_t p : perm) out.push_back(s[p]);
  return Shape(out);
}

// The constant broadcast to `rank` dims (leading 1s, as numpy broadcasting reads it) and transposed by perm (out
// dim k = in dim perm[k]), bytes moved: a layer-scale or bias operand that follows its activation's layout.
Tensor transposed_constant(const Tensor& c, size_t rank, const std::vector<size_t>& perm) {
  std::vector<int64_t> in_dims(rank - c.dims().size(), 1);
  in_dims.insert(in_dims.end(), c.dims().begin(), c.dims().end());
  std::vector<int64_t> in_strides(rank, 1), out_dims(rank);
  for (size_t k = rank - 1; k-- > 0;) in_strides[k] = in_strides[k + 1] * in_dims[k + 1];
  for (size_t k = 0; k < rank; ++k) out_dims[k] = in_dims[perm[k]];
  Tensor out(c.dtype(), out_dims);
  const size_t es = dtype_size(c.dtype());
  const auto* src = static_cast<const char*>(c.raw());
  auto* dst = static_cast<char*>(out.raw());
  for (int64_t o = 0; o < out.numel(); ++o) {
    int64_t rest = o, from = 0;
    for (size_t k = rank; k-- > 0;) {
      from += (rest % out_dims[k]) * in_strides[perm[k]];
      rest /= out_dims[k];
    }
    std::memcpy(dst + static_cast<size_t>(o) * es, src + static_cast<size_t>(from) * es, es);
  }
  return out;
}

struct Relayout {
  ir::Graph& g;
  std::map<std::string, std::string> nhwc_weight;  // NCHW weight name -> its channels-last copy

  bool eligible(const ir::Node& n) const {
    if (n.op_type != "FusedConv" || n.domain != ops::kKilnDomain || n.inputs.size() < 2 ||
        n.outputs.size() != 1 || n.outputs[0].empty() || n.inputs[ops::kFusedConvX].empty())
      return false;
    auto layout = ops::read_conv_layout(n);
    if (!layout.ok() || *layout != ops::ConvLayout::kNCHW) return false;
    auto w = g.initializers.find(n.inputs[ops::kFusedConvW]);
    if (w == g.initializers.end() || w->second.rank() != kRank || !is_float(w->second.dtype())) return false;
    const ir::ValueInfo* x = g.value(n.inputs[ops::kFusedConvX]);
    if (x && x->shape.has_rank() && x->shape.rank() != kRank) return false;
    const ir::ValueInfo* y = g.value(n.outputs[0]);
    return !(y && y->shape.has_rank() && y->shape.rank() != kRank);
  }

  static bool is_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

  ir::Node transpose(const std::string& name, const std::string& in, const std::string& out,
                     const std::vector<size_t>& perm) {
    ir::Node t = transpose_node(name, in, out, as_ints(perm));
    const ir::ValueInfo* v = g.value(in);
    g.values[out] = {v ? v->dtype : DType::kUndefined, v ? permuted(v->shape, perm) : Shape::unknown_rank()};
    return t;
  }

  // Channels-last view of `v` for node `n`, by a new Transpose appended to `out`.
  std::string to_nhwc(const ir::Node& n, const std::string& v, const char* role, std::vector<ir::Node>& out) {
    const std::string name = g.unique_name(v + "_nhwc");
    out.push_back(transpose(n.name + "/" + role + "_to_nhwc", v, name, ops::to_channels_last(kRank)));
    return name;
  }

  // Rewrites n (at its place in `out`) as channels-last with its Transposes around it.
  void convert(ir::Node n, std::vector<ir::Node>& out) {
    const std::string& w = n.inputs[ops::kFusedConvW];
    auto cached = nhwc_weight.find(w);
    if (cached == nhwc_weight.end()) {
      const std::string name = g.unique_name(w + "_nhwc");
      // [M, C/g, kh, kw] -> [M, kh, kw, C/g]
      g.initializers[name] = transposed_constant(g.initializers.at(w), kRank, ops::to_channels_last(kRank));
      g.values[name] = {g.initializers[name].dtype(), Shape::from_dims(g.initializers[name].dims())};
      cached = nhwc_weight.emplace(w, name).first;
    }
    n.inputs[ops::kFusedConvW] = cached->second;
    n.inputs[ops::kFusedConvX] = to_nhwc(n, n.inputs[ops::kFusedConvX], "x", out);
    if (n.inputs.size() > ops::kFusedConvZ && !n.inputs[ops::kFusedConvZ].empty())
      n.inputs[ops::kFusedConvZ] = to_nhwc(n, n.inputs[ops::kFusedConvZ], "z", out);
    const std::string y = n.outputs[0];
    const std::string y_nhwc = g.unique_name(y + "_nhwc");
    const ir::ValueInfo* yv = g.value(y);
    g.values[y_nhwc] = {yv ? yv->dtype : DType::kUndefined,
                        yv ? permuted(yv->shape, ops::to_channels_last(kRank)) : Shape::unknown_rank()};
    n.outputs[0] = y_nhwc;
    n.attrs["layout"] = ir::Attribute::of_string("NHWC");
    const std::string back = n.name + "/y_to_nchw";
    out.push_back(std::move(n));
    out.push_back(transpose(back, y_nhwc, y, ops::to_channels_first(kRank)));
  }
};

bool is_elementwise_binary(const ir::Node& n) {
  static const std::set<std::string> kOps = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"};
  return n.domain.empty() && kOps.count(n.op_type) && n.inputs.size() == 2 && !n.inputs[0].empty() &&
         !n.inputs[1].empty() && n.outputs.size() == 1 && !n.outputs[0].empty();
}

bool is_elementwise_unary(const ir::Node& n) {
  // Clip's optional bounds are scalars, which no permutation changes.
  static const std::set<std::string> kOps = {"Relu", "Sigmoid",  "HardSigmoid", "HardSwish", "Tanh",
                                             "Erf",  "Neg",      "Exp",         "Abs",       "Sqrt",
                                             "Elu",  "Softplus", "LeakyRelu",   "Cast",      "Clip",
                                             "Identity", "Reciprocal"};
  return n.domain.empty() && kOps.count(n.op_type) && !n.inputs.empty() && !n.inputs[0].empty() &&
         n.outputs.size() == 1 && !n.outputs[0].empty();
}

bool is_global_pool(const ir::Node& n) {
  return n.domain.empty() && (n.op_type == "GlobalAveragePool" || n.op_type == "GlobalMaxPool") &&
         n.inputs.size() == 1 && !n.inputs[0].empty() && n.outputs.size() == 1 && !n.outputs[0].empty();
}

// Elementwise over broadcast inputs, one output: the binary ops and fuse_pointwise's PointwiseChain.
bool is_elementwise_nary(const ir::Node& n) {
  return is_elementwise_binary(n) || (n.domain == ops::kKilnDomain && n.op_type == "PointwiseChain" &&
                                      !n.inputs.empty() && n.outputs.size() == 1 && !n.outputs[0].empty());
}

using Perms = std::map<std::string, std::vector<int64_t>>;
using TransposeIndex = std::map<std::pair<std::string, std::vector<int64_t>>, std::string>;  // (input, perm) -> output

// Appends N, now computing in the untransposed layout, and Transpose_p of its result under N's old output name
// (fallback: the dtype when N's output has no recorded one); later nodes see that Transpose.
void emit_with_transpose_after(ir::Graph& g, ir::Node n, const std::vector<int64_t>& p, DType fallback,
                               Perms& transposed, std::map<std::string, std::string>& source,
                               std::vector<ir::Node>& out) {
  const std::string y = n.outputs[0];
  const ir::ValueInfo* vy = g.value(y);
  const std::string inner = g.unique_name(y + "_untransposed");
  g.values[inner] = {vy ? vy->dtype : fallback,
                     vy && vy->shape.has_rank() ? permuted(vy->shape, inverse_of(p)) : Shape::unknown_rank()};
  n.outputs = {inner};
  transposed[y] = p;
  source[y] = inner;
  ir::Node after = transpose_node(n.name + "/transpose_after", inner, y, p);
  out.push_back(std::move(n));
  out.push_back(std::move(after));
}

// Op(Transpose_p(a), Transpose_p(b), c, s) -> Transpose_p(Op(a, b, c', s)) for an elementwise node whose
// inputs are Transposes with one perm p (of inputs of p's rank), constants (c' = c broadcast to p's rank and
// transposed by p's inverse, once, here) and one-element values (the same in any layout). Appends the rewritten
// node and its Transpose to `out` and returns true, or leaves the node alone and returns false.
bool sink_through_elementwise(ir::Graph& g, ir::Node& n, Perms& transposed, std::map<std::string, std::string>& source,
                              const TransposeIndex& earlier, const std::function<bool(const std::string&)>& moves_on,
                              std::vector<ir::Node>& out) {
  const std::vector<int64_t>* perm = nullptr;
  std::vector<std::string> through;
  for (const auto& in : n.inputs) {
    auto t = transposed.find(in);
    if (in.empty() || t == transposed.end()) continue;
    if (perm && *perm != t->second) return false;
    perm = &t->second;
    through.push_back(in);
  }
  if (!perm) return false;
  const std::vector<int64_t> p = *perm;
  const std::vector<size_t> inverse = inverse_of(p);
  // An activation in the other layout already transposed by p's inverse for another reader (the residual
  // stream entering a block, which the block's conv reads channels-last): that Transpose's output serves.
  auto already_relaid = [&](const std::string& x) -> const std::string* {
    auto t = earlier.find({x, as_ints(inverse)});
    return t == earlier.end() ? nullptr : &t->second;
  };
  for (const auto& in : n.inputs) {
    if (in.empty()) continue;
    if (transposed.count(in)) {
      const ir::ValueInfo* v = g.value(source.at(in));
      if (!v || !v->shape.has_rank() || v->shape.rank() != p.size()) return false;
    } else if (auto c = g.initializers.find(in); c != g.initializers.end()) {
      if (c->second.dims().size() > p.size()) return false;
    } else if (!already_relaid(in)) {
      const ir::ValueInfo* v = g.value(in);
      if (!v || !v->shape.is_static() || v->shape.rank() > p.size()) return false;
      for (int64_t d : v->shape.static_dims())
        if (d != 1) return false;
    }
  }
  // Two or more operand Transposes that vanish save one or more; with one, the move pays only when the
  // result's Transpose can go further (to cancel, or past more ops).
  bool pays = moves_on(n.outputs[0]);
  if (!pays && through.size() >= 2)
    pays = std::all_of(through.begin(), through.end(), [&](const std::string& v) { return moves_on(v); });
  if (!pays) return false;
  std::map<std::string, std::string> relaid;
  for (auto& in : n.inputs) {
    if (in.empty()) continue;
    if (transposed.count(in)) {
      in = source.at(in);
    } else if (auto c = g.initializers.find(in); c != g.initializers.end()) {
      auto [r, fresh] = relaid.emplace(in, std::string());
      if (fresh) {
        r->second = g.unique_name(in + "_relaid");
        Tensor t = transposed_constant(c->second, p.size(), inverse);
        g.values[r->second] = {t.dtype(), Shape::from_dims(t.dims())};
        g.initializers[r->second] = std::move(t);
      }
      in = r->second;
    } else if (const std::string* t = already_relaid(in)) {
      in = *t;
    }
  }
  emit_with_transpose_after(g, std::move(n), p, DType::kUndefined, transposed, source, out);
  return true;
}

// One walk in node order: an elementwise node (binary op or PointwiseChain) whose inputs are Transpose_p of
// values of p's rank, constants and one-element values becomes Transpose_p of the node over the untransposed
// values, the constants transposed once by p's inverse (ConvNeXt's layer scale [C,1,1]: see
// sink_through_elementwise); the new Transpose keeps the node's output name. Unary elementwise ops move the
// same way; a global pool over Transpose_p(a) (axes 2.. of the permuted tensor) becomes a ReduceMean/ReduceMax
// over axes p[2..] of a with the dims kept. Later ops see the moved Transposes, so a chain of them moves along.
// Only where it pays: a node whose operand Transposes (two or more) are read by nothing that stays (graph
// outputs, ops that cannot move) saves at least one Transpose; otherwise a node moves only when what reads its
// result can take the Transpose further (another Transpose to cancel against, or an op that moves too).
void sink_transposes(ir::Graph& g) {
  std::set<std::string> pinned(g.outputs.begin(), g.outputs.end());
  pinned.merge(subgraph_read_names(g));
  const std::map<std::string, std::vector<size_t>> readers = g.consumers();
  std::vector<bool> movable(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    movable[i] = is_transpose(n) || is_elementwise_unary(n) || is_elementwise_nary(n) || is_global_pool(n);
  }
  // v is read only by Transposes and ops that move, and is no graph output.
  auto moves_on = [&](const std::string& v) {
    if (pinned.count(v)) return false;
    auto r = readers.find(v);
    if (r == readers.end() || r->second.empty()) return false;
    for (size_t i : r->second)
      if (!movable[i]) return false;
    return true;
  };
  std::map<std::string, std::vector<int64_t>> transposed;  // Transpose output -> perm (of its input)
  std::map<std::string, std::string> source;               // Transpose output -> its input
  TransposeIndex earlier;                                   // the Transposes seen so far
  std::vector<ir::Node> out;
  out.reserve(g.nodes.size());
  for (auto& n : g.nodes) {
    if (is_transpose(n)) {
      std::vector<int64_t> perm = perm_of(g, n);
      if (!perm.empty()) {
        transposed[n.outputs[0]] = perm;
        source[n.outputs[0]] = n.inputs[0];
        earlier.emplace(std::make_pair(n.inputs[0], perm), n.outputs[0]);
      }
      out.push_back(std::move(n));
      continue;
    }
    const bool pool = is_global_pool(n);
    const bool unary = pool || is_elementwise_unary(n);
    if (!unary && !is_elementwise_nary(n)) {
      out.push_back(std::move(n));
      continue;
    }
    if (!unary) {
      if (!sink_through_elementwise(g, n, transposed, source, earlier, moves_on, out)) out.push_back(std::move(n));
      continue;
    }
    auto a = transposed.find(n.inputs[0]);
    if (a == transposed.end() || !moves_on(n.outputs[0])) {  // pays when the result's Transpose goes further
      out.push_back(std::move(n));
      continue;
    }
    const std::vector<int64_t> perm = a->second;
    const std::string xa = source.at(n.inputs[0]);
    const ir::ValueInfo* va = g.value(xa);
    if (!va || !va->shape.has_rank() || va->shape.rank() != perm.size() || (pool && perm.size() < 3)) {
      out.push_back(std::move(n));
      continue;
    }
    if (pool) {
      std::vector<int64_t> axes(perm.begin() + 2, perm.end());
      std::sort(axes.begin(), axes.end());
      n.op_type = n.op_type == "GlobalAveragePool" ? "ReduceMean" : "ReduceMax";
      n.attrs.clear();
      n.attrs["axes"] = ir::Attribute::of_ints(axes);
      n.attrs["keepdims"] = ir::Attribute::of_int(1);
      n.inputs = {xa};
    } else {
      n.inputs[0] = xa;
    }
    emit_with_transpose_after(g, std::move(n), perm, va->dtype, transposed, source, out);
  }
  g.nodes = std::move(out);
}

// One walk in node order: each Transpose of a Transpose reads the inner one's input with the composed perm;
// identity Transposes and repeats of an earlier Transpose (same input, same perm) are dropped and their
// readers renamed, unless a graph output or subgraph names their output. Later readers see the renames as
// they come (the order is topological, so every reader follows the rename's source).
void simplify_transposes(ir::Graph& g) {
  std::set<std::string> pinned(g.outputs.begin(), g.outputs.end());
  pinned.merge(subgraph_read_names(g));
  std::map<std::string, std::string> renamed;
  std::map<std::pair<std::string, std::vector<int64_t>>, std::string> first;  // (input, perm) -> output
  std::vector<ir::Node> kept;
  kept.reserve(g.nodes.size());
  std::map<std::string, size_t> made_by;  // output -> index in kept of the Transpose that (now) makes it
  for (auto& n : g.nodes) {
    for (auto& in : n.inputs) {
      auto r = renamed.find(in);
      if (r != renamed.end()) in = r->second;
    }
    if (!is_transpose(n)) {
      kept.push_back(std::move(n));
      continue;
    }
    std::vector<int64_t> perm = perm_of(g, n);
    auto inner = made_by.find(n.inputs[0]);
    if (!perm.empty() && inner != made_by.end()) {
      const ir::Node& t1 = kept[inner->second];
      const std::vector<int64_t> p1 = perm_of(g, t1);
      if (p1.size() == perm.size()) {
        std::vector<int64_t> composed;
        for (int64_t p : perm) composed.push_back(p1[static_cast<size_t>(p)]);
        n.inputs[0] = t1.inputs[0];
        perm = composed;
        n.attrs["perm"] = ir::Attribute::of_ints(perm);
      }
    }
    const std::string& out = n.outputs[0];
    const bool keep_name = pinned.count(out) != 0;
    if (!perm.empty() && !keep_name) {
      if (is_identity(perm)) {
        renamed[out] = n.inputs[0];
        continue;
      }
      auto dup = first.find({n.inputs[0], perm});
      if (dup != first.end()) {
        renamed[out] = dup->second;
        continue;
      }
    }
    if (!perm.empty()) first.emplace(std::make_pair(n.inputs[0], perm), out);
    made_by[out] = kept.size();
    kept.push_back(std::move(n));
  }
  g.nodes = std::move(kept);
}

}  // namespace

Status conv_layout(ir::Graph& g) {
  Relayout r{g, {}};
  std::vector<ir::Node> out;
  out.reserve(g.nodes.size());
  std::vector<ir::Node> nodes = std::move(g.nodes);
  g.nodes.clear();
  for (auto& n : nodes) {
    if (r.eligible(n))
      r.convert(std::move(n), out);
    else
      out.push_back(std::move(n));
  }
  g.nodes = std::move(out);
  // Composed first, so only Transposes that stay are moved; then what the moves line up cancels.
  simplify_transposes(g);
  sink_transposes(g);
  simplify_transposes(g);
  KILN_RETURN_IF_ERROR(eliminate_dead_code(g));
  return infer_shapes(g);
}

}  // namespace kiln::passes
