// Recognises GELU written out with Erf or Tanh and replaces the chain by one ONNX Gelu node:
//   erf form:  0.5 * x * (1 + Erf(x / sqrt(2)))                       (x * 0.7071… instead of / 1.414… too)
//   tanh form: 0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))   (x^3 as Pow(x, 3) or x*x*x)
// with the 0.5 and x multiplied in any order. The chain is replaced only when none of its intermediate values
// is used elsewhere (or is a graph output), and every constant is a one-element float whose broadcast cannot
// change the shape, so the Gelu's output is exactly the value the chain produced.
#include <cmath>
#include <set>

#include "passes/pass.h"
#include "passes/pattern_util.h"

namespace kiln::passes {

namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kSqrt2 = 1.41421356237309504880;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluCubic = 0.044715;

struct GeluMatch {
  std::string x;
  size_t last = 0;         // node whose output becomes the Gelu's
  std::set<size_t> nodes;  // every node of the chain, last included
  bool tanh = false;
};

class GeluMatcher {
 public:
  explicit GeluMatcher(const PatternGraph& p) : p_(p) {}

  // The chain around the Erf or Tanh node at index t, if it is a GELU.
  bool match(size_t t, GeluMatch& m) {
    const ir::Node& n = p_.node(t);
    m = GeluMatch();
    m.nodes.insert(t);
    if (n.op_type == "Erf") {
      if (!match_erf_arg(n.inputs[0], m)) return false;
    } else if (n.op_type == "Tanh") {
      m.tanh = true;
      if (!match_tanh_arg(n.inputs[0], m)) return false;
    } else {
      return false;
    }
    // 1 + Erf(…) / 1 + Tanh(…)
    size_t plus;
    std::string p;
    if (!p_.sole_consumer(n.outputs[0], &plus) || !p_.binary_with_const(plus, "Add", n.outputs[0], 1.0, &p))
      return false;
    m.nodes.insert(plus);
    return match_half_x_times(p, m);
  }

 private:
  // x / sqrt(2) or x * (1/sqrt(2)).
  bool match_erf_arg(const std::string& u, GeluMatch& m) {
    size_t i;
    if (!p_.producer(u, &i)) return false;
    std::string x;
    if (!p_.const_operand(i, "Mul", kInvSqrt2, &x) && !p_.const_divisor(i, kSqrt2, &x)) return false;
    m.x = x;
    m.nodes.insert(i);
    return true;
  }

  // sqrt(2/pi) * (x + 0.044715 * x^3)
  bool match_tanh_arg(const std::string& v, GeluMatch& m) {
    size_t scale, sum;
    std::string w;
    if (!p_.producer(v, &scale) || !p_.const_operand(scale, "Mul", kSqrt2OverPi, &w)) return false;
    if (!p_.producer(w, &sum) || p_.node(sum).op_type != "Add" || p_.node(sum).inputs.size() != 2)
      return false;
    const ir::Node& add = p_.node(sum);
    for (int xi = 0; xi < 2; ++xi) {
      const std::string& x = add.inputs[xi];
      const std::string& q = add.inputs[1 - xi];
      size_t cubic_mul;
      std::string cube;
      if (!p_.producer(q, &cubic_mul) || !p_.const_operand(cubic_mul, "Mul", kGeluCubic, &cube)) continue;
      std::set<size_t> cube_nodes;
      if (!match_cube(cube, x, cube_nodes)) continue;
      m.x = x;
      m.nodes.insert({scale, sum, cubic_mul});
      m.nodes.insert(cube_nodes.begin(), cube_nodes.end());
      return true;
    }
    return false;
  }

  // Pow(x, 3), x*(x*x) or (x*x)*x.
  bool match_cube(const std::string& c, const std::string& x, std::set<size_t>& nodes) {
    size_t i;
    if (!p_.producer(c, &i)) return false;
    const ir::Node& n = p_.node(i);
    if (n.op_type == "Pow" && n.inputs.size() == 2 && n.inputs[0] == x && p_.scalar_is(n.inputs[1], 3.0)) {
      nodes.insert(i);
      return true;
    }
    if (n.op_type != "Mul" || n.inputs.size() != 2) return false;
    for (int xi = 0; xi < 2; ++xi) {
      if (n.inputs[xi] != x) continue;
      size_t sq;
      if (p_.producer(n.inputs[1 - xi], &sq) && p_.node(sq).op_type == "Mul" &&
          p_.node(sq).inputs.size() == 2 && p_.node(sq).inputs[0] == x && p_.node(sq).inputs[1] == x) {
        nodes.insert({i, sq});
        return true;
      }
    }
    return false;
  }

  // The product 0.5 * x * p, where p = 1 + Erf/Tanh(…), in any of the orders exporters write.
  bool match_half_x_times(const std::string& p, GeluMatch& m) {
    size_t m1;
    if (!p_.sole_consumer(p, &m1)) return false;
    const ir::Node& mul = p_.node(m1);
    if (mul.op_type != "Mul" || mul.inputs.size() != 2) return false;
    const std::string& o = mul.inputs[0] == p ? mul.inputs[1] : mul.inputs[0];
    m.nodes.insert(m1);
    if (o == m.x) {  // (x * p) * 0.5 or (x * p) / 2
      size_t m2;
      std::string rest;
      if (!p_.sole_consumer(mul.outputs[0], &m2)) return false;
      if (!p_.const_operand(m2, "Mul", 0.5, &rest) && !p_.const_divisor(m2, 2.0, &rest)) return false;
      m.nodes.insert(m2);
      m.last = m2;
      return true;
    }
    size_t h;
    std::string hx;
    if (p_.producer(o, &h) && (p_.const_operand(h, "Mul", 0.5, &hx) || p_.const_divisor(h, 2.0, &hx)) &&
        hx == m.x) {
      m.nodes.insert(h);  // (0.5 * x) * p
      m.last = m1;
      return true;
    }
    if (p_.scalar_is(o, 0.5)) {  // (0.5 * p) * x
      size_t m2;
      if (!p_.sole_consumer(mul.outputs[0], &m2)) return false;
      const ir::Node& mul2 = p_.node(m2);
      if (mul2.op_type != "Mul" || mul2.inputs.size() != 2) return false;
      if ((mul2.inputs[0] == mul.outputs[0] ? mul2.inputs[1] : mul2.inputs[0]) != m.x) return false;
      m.nodes.insert(m2);
      m.last = m2;
      return true;
    }
    return false;
  }

  const PatternGraph& p_;
};

}  // namespace

Status fuse_gelu(ir::Graph& g) {
  // Indices stay valid while matching: nodes are replaced in place and erased only at the end.
  PatternGraph pg(g);
  GeluMatcher matcher(pg);
  std::vector<bool> removed(g.nodes.size(), false);
  for (size_t t = 0; t < g.nodes.size(); ++t) {
    if (removed[t] || (g.nodes[t].op_type != "Erf" && g.nodes[t].op_type != "Tanh")) continue;
    GeluMatch m;
    if (!matcher.match(t, m)) continue;
    bool ok = is_float(g.value(m.x) ? g.value(m.x)->dtype : DType::kUndefined);
    for (size_t i : m.nodes) ok &= !removed[i] && g.nodes[i].domain.empty();
    // Intermediates are used only inside the chain; constants broadcast without growing x's shape.
    if (ok) ok = pg.only_used_within(m.nodes, m.last) && pg.constants_keep_shape(m.nodes, m.x);
    if (!ok) continue;
    ir::Node gelu;
    gelu.name = g.nodes[m.last].name;
    gelu.op_type = "Gelu";
    gelu.inputs = {m.x};
    gelu.outputs = {g.nodes[m.last].outputs[0]};
    gelu.attrs["approximate"] = ir::Attribute::of_string(m.tanh ? "tanh" : "none");
    replace_chain(g, m.nodes, m.last, std::move(gelu), removed);
  }
  erase_removed(g, removed);
  return Status();
}

}  // namespace kiln::passes
