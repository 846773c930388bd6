// detect_causal_mask (see detect_causal_mask.h): FusedAttention masks that are top-left causal at every input
// shape the engine accepts become causal=1.
//
// "Causal" is FusedAttention's own causal=1 (src/ops/fused_attention.cpp, torch's is_causal): query row i
// keeps key column j exactly when j <= i, top-left aligned. Every [Sq, Sk] slice of each evaluated mask must
// have that pattern (so all batch/head slices are equal), and Sq, Sk must be the attention's own query and
// key lengths at that shape (a 1-row or 1-column mask would broadcast to something else). A bottom-right
// aligned mask (Sq != Sk, as with a KV cache) therefore fails the check instead of being guessed at.
//   bool mask: true where j <= i, false where j > i (FusedAttention adds -inf where false);
//   float mask (added to the scores): 0 where j <= i; -inf or at most the dtype's lowest finite value where
//   j > i.
// Why a finite lowest value (torch writes finfo(dtype).min: -3.4028235e38 for f32) gives the same result as
// -inf: top-left causal never masks a whole row (column 0 is kept in every row), so each row's softmax max m
// is an unmasked score. A masked logit is s + min, about -3.4e38 in f32 (or -inf if it overflows), and
// exp(s + min - m) underflows to exactly 0 (f32 exp is 0 below about -104), as exp(-inf) does, unless the
// scores themselves are ~1e38. The masked terms add exactly 0 to the row's sum and to P @ V, which is what
// causal=1 computes by skipping them. bf16's lowest (-3.39e38) is the same. An f16 mask's -65504 is the same
// as long as no masked score exceeds its row's max by more than ~65400; only f16 scores near overflow can,
// and torch's own f16 result has the same limit. A "-1e4" style mask is NOT accepted: scores 1e4 apart
// would leak through it. (convert_precision, which would turn an f32 finfo.min into f16's, runs after this
// pass.)
//
// Which shapes are evaluated, per optimization profile, for the dims of the inputs whose shapes the mask
// reads: every combination of values in [min, max] when that grid is small (at most kMaxGridShapes shapes
// and kWorkBudget mask elements in all); otherwise min, opt, max and ~16 spread values per dim (with 1, 2,
// 7, 63, 64, 65, 127, 128 where in range), as a grid when that fits the same limits, else min/opt/max
// jointly, each dim swept over its values with the others at min and at max, and all dims swept together
// (the "diagonal"). Without profiles the engine accepts any value of a dynamic dim, so only masks that read
// static dims are evaluated (once). This is evaluation over the profiles' ranges, not a proof for other
// shapes; the engine refuses other shapes (check_input_dims in src/runtime/context.cpp returns kOutOfRange
// for a dim outside the active profile of an input the profile names), and a mask that reads an input some
// profile does not name is kept.
//
// The mask must depend on graph inputs only through Shape/Size of them, and otherwise on constants: a
// padding mask (BERT's attention_mask) reads input values and is left alone, as are masks computed by
// subgraph bodies or random ops.
#include "passes/detect_causal_mask.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "backends/cpu/executor.h"
#include "ops/fused_attention.h"
#include "ops/op.h"
#include "passes/pass.h"
#include "util/error.h"

namespace kiln::passes {

namespace {

constexpr double kWorkBudget = 3e7;            // mask elements evaluated per profile for a (sampled) grid
constexpr size_t kMaxGridShapes = 4096;        // each evaluation runs the subgraph once: bound the count
constexpr int64_t kMaxEvalElements = 1 << 28;  // one evaluated mask (or input) bigger than this: give up
constexpr size_t kMaxConeNodes = 2048;

using Dims = std::vector<int64_t>;
using Assignment = std::map<std::string, Dims>;  // input whose shape the mask reads -> its dims

std::string describe(const Assignment& a) {
  std::string s;
  for (const auto& [name, dims] : a) s += (s.empty() ? "" : ", ") + name + " " + dims_to_string(dims);
  return s.empty() ? "(no inputs)" : s;
}

// The nodes the mask is computed by, in graph order.
struct Cone {
  std::vector<size_t> nodes;
  std::set<std::string> shape_inputs;  // graph inputs read only through Shape/Size
  std::set<std::string> constants;
};

Result<Cone> collect_cone(const ir::Graph& g, const std::map<std::string, size_t>& producer,
                          const std::string& mask) {
  const std::set<std::string> inputs(g.inputs.begin(), g.inputs.end());
  Cone c;
  std::set<size_t> nodes;
  std::set<std::string> visited;
  std::vector<std::string> stack = {mask};
  while (!stack.empty()) {
    const std::string v = std::move(stack.back());
    stack.pop_back();
    if (v.empty() || !visited.insert(v).second) continue;
    if (g.is_constant(v)) {
      c.constants.insert(v);
      continue;
    }
    if (inputs.count(v)) return unsupported("it reads the values of input '{}'", v);
    auto it = producer.find(v);
    if (it == producer.end()) return unsupported("'{}' has no producer", v);
    if (!nodes.insert(it->second).second) continue;
    const ir::Node& n = g.nodes[it->second];
    for (const auto& [key, a] : n.attrs)
      if (a.g) return unsupported("it is computed by {}, which has a subgraph", n.label());
    // Not a function of its inputs: two evaluations need not agree with each other or with the engine.
    if (n.op_type.rfind("Random", 0) == 0 || n.op_type == "Bernoulli" || n.op_type == "Multinomial")
      return unsupported("it is computed by {}, which is random", n.label());
    if (nodes.size() > kMaxConeNodes)
      return unsupported("its subgraph has more than {} nodes", kMaxConeNodes);
    if (n.domain.empty() && (n.op_type == "Shape" || n.op_type == "Size") && !n.inputs.empty() &&
        inputs.count(n.inputs[0])) {
      if (!g.value(n.inputs[0])) return unsupported("input '{}' has no type information", n.inputs[0]);
      c.shape_inputs.insert(n.inputs[0]);
      continue;
    }
    // Shape of an intermediate counts as reading it: its shape may depend on input values (NonZero…).
    for (const auto& in : n.inputs) stack.push_back(in);
  }
  c.nodes.assign(nodes.begin(), nodes.end());
  return c;
}

// The mask's subgraph alone, run on the CPU reference with zero-filled inputs of the shapes to check.
class MaskProbe {
 public:
  MaskProbe(const ir::Graph& g, const Cone& c, const std::string& mask) {
    auto sub = std::make_shared<ir::Graph>();
    sub->name = "detect_causal_mask";
    sub->opset = g.opset;
    sub->ir_version = g.ir_version;
    auto copy_info = [&](const std::string& v) {
      if (const ir::ValueInfo* vi = g.value(v)) sub->values[v] = *vi;
    };
    for (const auto& x : c.shape_inputs) {
      sub->inputs.push_back(x);
      copy_info(x);
      dtypes_[x] = g.values.at(x).dtype;
    }
    for (const auto& k : c.constants) {
      sub->initializers[k] = g.initializers.at(k);
      copy_info(k);
    }
    for (size_t i : c.nodes) {
      sub->nodes.push_back(g.nodes[i]);
      for (const auto& o : g.nodes[i].outputs) copy_info(o);
    }
    sub->outputs = {mask};
    mask_ = mask;
    exec_ = std::make_unique<cpu::GraphExecutor>(std::move(sub));
  }

  Result<Tensor> eval(const Assignment& a) const {
    std::map<std::string, Tensor> in;
    for (const auto& [name, dims] : a) {
      if (num_elements(dims) > kMaxEvalElements)
        return unsupported("input '{}' {} is too large to evaluate the mask at", name, dims_to_string(dims));
      in[name] = Tensor(dtypes_.at(name), dims);  // only its shape is read
    }
    auto out = exec_->run(in);
    if (!out.ok()) return out.status();
    return out->at(mask_);
  }

 private:
  std::map<std::string, DType> dtypes_;
  std::string mask_;
  std::unique_ptr<cpu::GraphExecutor> exec_;
};

// A dim of an input whose shape the mask reads that the profile lets vary.
struct FreeDim {
  std::string input;
  size_t axis;
  int64_t min, opt, max;
};

struct ProfileShapes {
  Assignment min, opt, max;
  std::vector<FreeDim> free;
};

// What profile `index` (nullptr: the build has none) allows for the inputs the mask reads; fails when one of
// their dims is dynamic and unbounded.
Result<ProfileShapes> profile_shapes(const ir::Graph& g, const std::set<std::string>& inputs,
                                     const OptimizationProfile* p, size_t index) {
  ProfileShapes out;
  for (const auto& x : inputs) {
    const ir::ValueInfo& vi = g.values.at(x);
    if (!vi.shape.has_rank()) return unsupported("input '{}' has an unknown rank", x);
    if (dtype_size(vi.dtype) == 0) return unsupported("input '{}' is {}", x, dtype_name(vi.dtype));
    const InputRange* r = nullptr;
    if (p)
      if (auto it = p->inputs.find(x); it != p->inputs.end()) r = &it->second;
    for (size_t axis = 0; axis < vi.shape.rank(); ++axis) {
      const Dim& d = vi.shape[axis];
      int64_t lo, mid, hi;
      if (r && axis < r->min.size() && axis < r->opt.size() && axis < r->max.size()) {
        lo = r->min[axis], mid = r->opt[axis], hi = r->max[axis];
      } else if (d.is_static()) {
        lo = mid = hi = d.value();
      } else if (p) {
        return unsupported("input '{}' dim {} is dynamic and optimization profile {} does not bound it", x,
                           axis, index);
      } else {
        return unsupported(
            "input '{}' dim {} is dynamic and the build has no optimization profile to bound it (kiln build "
            "--shapes)",
            x, axis);
      }
      out.min[x].push_back(lo);
      out.opt[x].push_back(mid);
      out.max[x].push_back(hi);
      if (lo < hi) out.free.push_back({x, axis, lo, mid, hi});
    }
  }
  return out;
}

std::vector<int64_t> dim_values(const FreeDim& d, bool every) {
  std::set<int64_t> s;
  if (every) {
    for (int64_t v = d.min; v <= d.max; ++v) s.insert(v);
  } else {
    s = {d.min, d.opt, d.max};
    for (int64_t v : {1, 2, 7, 63, 64, 65, 127, 128})
      if (v >= d.min && v <= d.max) s.insert(v);
    for (int64_t k = 1; k < 8; ++k) s.insert(d.min + (d.max - d.min) * k / 8);
  }
  return {s.begin(), s.end()};
}

// Every combination of the per-dim values, starting from base.
std::vector<Assignment> grid(const Assignment& base, const std::vector<FreeDim>& free,
                             const std::vector<std::vector<int64_t>>& values) {
  std::vector<Assignment> out = {base};
  for (size_t d = 0; d < free.size(); ++d) {
    std::vector<Assignment> next;
    for (const auto& a : out)
      for (int64_t v : values[d]) {
        Assignment b = a;
        b[free[d].input][free[d].axis] = v;
        next.push_back(std::move(b));
      }
    out = std::move(next);
  }
  return out;
}

// Symbol -> value for the symbolic dims of the inputs in `a` (a symbol given two values is dropped).
std::map<std::string, int64_t> symbol_values(const ir::Graph& g, const Assignment& a) {
  std::map<std::string, int64_t> out;
  std::set<std::string> clash;
  for (const auto& [x, dims] : a) {
    const Shape& s = g.values.at(x).shape;
    for (size_t i = 0; i < s.rank() && i < dims.size(); ++i) {
      if (!s[i].is_symbolic()) continue;
      auto [it, fresh] = out.emplace(s[i].symbol_name(), dims[i]);
      if (!fresh && it->second != dims[i]) clash.insert(it->first);
    }
  }
  for (const auto& c : clash) out.erase(c);
  return out;
}

std::optional<int64_t> resolve(const Dim& d, const std::map<std::string, int64_t>& symbols) {
  if (d.is_static()) return d.value();
  if (d.is_symbolic())
    if (auto it = symbols.find(d.symbol_name()); it != symbols.end()) return it->second;
  return std::nullopt;
}

// The mask's element count at `a` when its inferred shape resolves there.
std::optional<double> predicted_elements(const ir::Graph& g, const std::string& mask, const Assignment& a) {
  const ir::ValueInfo* vi = g.value(mask);
  if (!vi || !vi->shape.has_rank()) return std::nullopt;
  const auto symbols = symbol_values(g, a);
  double n = 1;
  for (const Dim& d : vi->shape.dims()) {
    auto v = resolve(d, symbols);
    if (!v) return std::nullopt;
    n *= static_cast<double>(*v);
  }
  return n;
}

// The most negative finite value of a float dtype: a mask entry at or below it masks exactly (see the top).
std::optional<double> lowest_finite(DType dt) {
  switch (dt) {
    case DType::kF32:
      return std::numeric_limits<float>::lowest();
    case DType::kF64:
      return std::numeric_limits<double>::lowest();
    case DType::kF16:
      return -65504.0;
    case DType::kBF16:
      return -3.3895313892515355e38;  // 0xff7f
    default:
      return std::nullopt;
  }
}

// Empty when every [Sq, Sk] slice of the mask is top-left causal; otherwise what is wrong, and where.
std::optional<std::string> causal_violation(const Tensor& t) {
  const size_t r = t.rank();
  if (r < 2) return fmt::format("it has rank {}", r);
  const int64_t sq = t.dim(r - 2), sk = t.dim(r - 1);
  if (sq * sk == 0) return std::nullopt;
  const int64_t slices = t.numel() / (sq * sk);
  const bool is_bool = t.dtype() == DType::kBool;
  const auto lowest = lowest_finite(t.dtype());
  if (!is_bool && !lowest) return fmt::format("it is {}", dtype_name(t.dtype()));
  auto where = [&](int64_t s, int64_t i, int64_t j, double v) {
    return fmt::format("slice {} row {} column {} is {} (it should {} the key)", s, i, j, v,
                       j <= i ? "keep" : "mask");
  };
  const uint8_t* b = is_bool ? t.data<uint8_t>() : nullptr;
  const float* f = t.dtype() == DType::kF32 ? t.data<float>() : nullptr;
  for (int64_t s = 0; s < slices; ++s)
    for (int64_t i = 0; i < sq; ++i)
      for (int64_t j = 0; j < sk; ++j) {
        const int64_t k = (s * sq + i) * sk + j;
        const bool keep = j <= i;
        if (b) {
          if ((b[k] != 0) != keep) return where(s, i, j, b[k]);
          continue;
        }
        const double v = f ? static_cast<double>(f[k]) : t.get_as_double(k);
        if (keep ? v != 0 : !(v <= *lowest)) return where(s, i, j, v);  // -inf <= lowest; NaN fails
      }
  return std::nullopt;
}

// One FusedAttention reading the mask, with its query and key lengths (logical [B, H, S, X] order).
struct Reader {
  size_t node = 0;
  Dim sq, sk;  // unknown unless Q/K have rank 4
  bool ok = true;
  std::string why;
};

// The mask's last two dims must be the attention's Sq and Sk at `a`: resolved from the inputs' symbols, or
// else proven equal by the inferred shapes.
std::optional<std::string> length_mismatch(const ir::Graph& g, const std::string& mask, const Tensor& t,
                                           const Reader& rd, const std::map<std::string, int64_t>& symbols) {
  const size_t r = t.rank();
  const int64_t mq = t.dim(r - 2), mk = t.dim(r - 1);
  const auto sq = resolve(rd.sq, symbols), sk = resolve(rd.sk, symbols);
  if (sq && sk) {
    if (mq == *sq && mk == *sk) return std::nullopt;
    return fmt::format("its [{}, {}] slices are not the attention's [{}, {}] scores", mq, mk, *sq, *sk);
  }
  const ir::ValueInfo* vi = g.value(mask);
  if (vi && vi->shape.has_rank() && vi->shape.rank() == r && vi->shape[r - 2].same_as(rd.sq) &&
      vi->shape[r - 1].same_as(rd.sk))
    return std::nullopt;
  return fmt::format("the attention's lengths {}x{} cannot be matched with the mask's {}", rd.sq.to_string(),
                     rd.sk.to_string(), vi ? vi->shape.to_string() : "[?]");
}

// Evaluates one mask at the profiles' shapes and marks the readers it is not causal for. Returns why the mask
// as a whole was rejected (empty when some reader may still take causal=1).
std::optional<std::string> check_mask(const ir::Graph& g, const std::map<std::string, size_t>& producer,
                                      const std::string& mask,
                                      const std::vector<OptimizationProfile>& profiles,
                                      std::vector<Reader>& readers) {
  auto cone = collect_cone(g, producer, mask);
  if (!cone.ok()) return cone.status().message();
  std::vector<const OptimizationProfile*> ps;
  for (const auto& p : profiles) ps.push_back(&p);
  if (ps.empty()) ps.push_back(nullptr);
  MaskProbe probe(g, *cone, mask);
  // Mask elements at a shape: from its inferred shape, or else bounded by its size at the profile's max,
  // which is evaluated for that (masks grow with their dims).
  std::map<Assignment, double> evaluated_size;
  auto size_at = [&](const Assignment& a, const Assignment& max) -> Result<double> {
    if (auto n = predicted_elements(g, mask, a)) return *n;
    if (auto n = predicted_elements(g, mask, max)) return *n;
    if (auto it = evaluated_size.find(max); it != evaluated_size.end()) return it->second;
    auto t = probe.eval(max);
    if (!t.ok()) return t.status();
    return evaluated_size[max] = static_cast<double>(t->numel());
  };
  // The shapes to check, cheapest first in each profile (a mask that is not causal usually fails at once).
  std::vector<Assignment> shapes;
  for (size_t pi = 0; pi < ps.size(); ++pi) {
    auto range = profile_shapes(g, cone->shape_inputs, ps[pi], pi);
    if (!range.ok()) return range.status().message();
    const auto& free = range->free;
    auto max_size = size_at(range->max, range->max);
    if (!max_size.ok())
      return fmt::format("evaluating it at {} failed: {}", describe(range->max), max_size.status().message());
    auto cost = [&](const Assignment& a) {
      auto n = size_at(a, range->max);
      return n.ok() ? *n : *max_size;
    };
    auto fits = [&](const std::vector<std::vector<int64_t>>& values) {
      double count = 1;
      for (const auto& v : values) count *= static_cast<double>(v.size());
      if (count > kMaxGridShapes) return false;
      double work = 0;
      for (const auto& a : grid(range->min, free, values)) work += cost(a);
      return work <= kWorkBudget;
    };
    std::vector<std::vector<int64_t>> every, sampled;
    double full_count = 1;
    for (const auto& d : free) full_count *= static_cast<double>(d.max - d.min + 1);
    for (const auto& d : free) {
      if (full_count <= kMaxGridShapes) every.push_back(dim_values(d, true));
      sampled.push_back(dim_values(d, false));
    }
    std::vector<Assignment> mine;
    if (full_count <= kMaxGridShapes && fits(every)) {
      mine = grid(range->min, free, every);
    } else if (fits(sampled)) {
      mine = grid(range->min, free, sampled);
    } else {
      mine = {range->min, range->opt, range->max};
      for (const Assignment* base : {&range->min, &range->max})
        for (size_t d = 0; d < free.size(); ++d)
          for (int64_t v : sampled[d]) {
            Assignment a = *base;
            a[free[d].input][free[d].axis] = v;
            mine.push_back(std::move(a));
          }
      size_t longest = 0;
      for (const auto& v : sampled) longest = std::max(longest, v.size());
      for (size_t i = 0; i < longest; ++i) {
        Assignment a = range->min;
        for (size_t d = 0; d < free.size(); ++d)
          a[free[d].input][free[d].axis] = sampled[d][std::min(i, sampled[d].size() - 1)];
        mine.push_back(std::move(a));
      }
    }
    std::stable_sort(mine.begin(), mine.end(),
                     [&](const Assignment& x, const Assignment& y) { return cost(x) < cost(y); });
    shapes.insert(shapes.end(), mine.begin(), mine.end());
  }

  std::set<Assignment> done;
  for (const auto& a : shapes) {
    if (!done.insert(a).second) continue;
    if (auto n = predicted_elements(g, mask, a); n && *n > kMaxEvalElements)
      return fmt::format("it is too large to evaluate at {}", describe(a));
    auto t = probe.eval(a);
    if (!t.ok()) return fmt::format("evaluating it at {} failed: {}", describe(a), t.status().message());
    if (t->numel() > kMaxEvalElements) return fmt::format("it is too large to evaluate at {}", describe(a));
    if (auto bad = causal_violation(*t)) return fmt::format("at {}: {}", describe(a), *bad);
    const auto symbols = symbol_values(g, a);
    bool any = false;
    for (auto& rd : readers) {
      if (!rd.ok) continue;
      if (auto bad = length_mismatch(g, mask, *t, rd, symbols)) {
        rd.ok = false;
        rd.why = fmt::format("at {}: {}", describe(a), *bad);
      }
      any |= rd.ok;
    }
    if (!any) return readers.front().why;
  }
  return std::nullopt;
}

}  // namespace

Status detect_causal_mask(ir::Graph& g, const std::vector<OptimizationProfile>& profiles,
                          CausalMaskReport* report) {
  CausalMaskReport local;
  CausalMaskReport& rep = report ? *report : local;
  rep = CausalMaskReport();
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& o : g.nodes[i].outputs)
      if (!o.empty()) producer[o] = i;
  // Readers per mask value, in graph order.
  std::map<std::string, std::vector<Reader>> by_mask;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (n.op_type != "FusedAttention" || n.domain != ops::kKilnDomain || n.inputs.size() < 4 ||
        n.inputs[3].empty())
      continue;
    ++rep.masked;
    auto shape_of = [&](size_t slot) {
      const ir::ValueInfo* vi = slot < n.inputs.size() && !n.inputs[slot].empty() ? g.value(n.inputs[slot]) : nullptr;
      return vi ? vi->shape : Shape();
    };
    const ops::AttentionOperands ops = ops::attention_operands(n, shape_of(0), shape_of(1), shape_of(2));
    Reader rd;
    rd.node = i;
    if (ops.q.has_rank() && ops.q.rank() == 4) rd.sq = ops.q[ops.q_bshd ? 1 : 2];
    if (ops.k.has_rank() && ops.k.rank() == 4) rd.sk = ops.k[ops.k_bshd ? 1 : 2];
    by_mask[n.inputs[3]].push_back(rd);
  }
  bool changed = false;
  for (auto& [mask, readers] : by_mask) {
    if (auto why = check_mask(g, producer, mask, profiles, readers)) {
      rep.kept.push_back(fmt::format("mask '{}' ({} attention(s)): {}", mask, readers.size(), *why));
      continue;
    }
    for (const auto& rd : readers) {
      if (!rd.ok) {
        rep.kept.push_back(fmt::format("mask '{}' of {}: {}", mask, g.nodes[rd.node].label(), rd.why));
        continue;
      }
      ir::Node& n = g.nodes[rd.node];
      n.inputs.resize(3);
      n.attrs["causal"] = ir::Attribute::of_int(1);
      ++rep.causal;
      changed = true;
    }
  }
  if (changed) KILN_RETURN_IF_ERROR(eliminate_dead_code(g));
  return Status();
}

}  // namespace kiln::passes
