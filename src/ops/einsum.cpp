// Einsum: explicit ("ij,jk->ik") and implicit ("ij,jk") outputs, diagonals ("ii->i"), ellipsis broadcasting.
// Implicit outputs follow numpy: the ellipsis dims, then the letters used exactly once, alphabetically.
#include "ops/einsum.h"

#include <algorithm>
#include <map>

#include "ops/op_table.h"
#include "ops/shape_utils.h"
#include "util/error.h"

namespace kiln::ops {

namespace {

// One term's letters, with '.' marking where the ellipsis stands.
Result<std::string> parse_term(const ir::Node& node, const std::string& term, const std::string& eq) {
  std::string out;
  for (size_t i = 0; i < term.size(); ++i) {
    const char ch = term[i];
    if (ch == '.') {
      if (term.compare(i, 3, "...") != 0 || out.find('.') != std::string::npos)
        return invalid_model("{}: equation '{}' has a malformed ellipsis in '{}'", node.label(), eq, term);
      out.push_back('.');
      i += 2;
    } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
      out.push_back(ch);
    } else {
      return invalid_model("{}: equation '{}' has an invalid character '{}'", node.label(), eq, ch);
    }
  }
  return out;
}

}  // namespace

Result<EinsumPlan> plan_einsum(const ir::Node& node, const std::vector<int64_t>& ranks) {
  std::string eq;
  for (char ch : node.attr_string("equation", ""))
    if (ch != ' ') eq.push_back(ch);
  const std::string raw = node.attr_string("equation", "");
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    KILN_ASSIGN_OR_RETURN(std::string t, parse_term(node, lhs.substr(start, comma - start), raw));
    terms.push_back(std::move(t));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != ranks.size())
    return invalid_model("{}: equation '{}' has {} operand terms but the node has {} inputs", node.label(),
                         raw, terms.size(), ranks.size());
  // The broadcast ellipsis rank is the largest any operand gives it.
  int64_t ell = 0;
  std::vector<int64_t> ell_rank(terms.size(), 0);
  for (size_t i = 0; i < terms.size(); ++i) {
    const bool has_ell = terms[i].find('.') != std::string::npos;
    const int64_t letters = static_cast<int64_t>(terms[i].size()) - (has_ell ? 1 : 0);
    if (ranks[i] < 0) {
      if (has_ell) return unsupported("{}: input {} has an unknown rank and an ellipsis", node.label(), i);
      continue;
    }
    if ((has_ell && ranks[i] < letters) || (!has_ell && ranks[i] != letters))
      return invalid_model("{}: term '{}' of equation '{}' names {} dims but input {} has rank {}",
                           node.label(), terms[i], raw, letters, i, ranks[i]);
    ell_rank[i] = has_ell ? ranks[i] - letters : 0;
    ell = std::max(ell, ell_rank[i]);
  }
  EinsumPlan plan;
  std::map<char, int> ids;
  std::map<char, int> uses;
  auto id_of = [&](char ch) {
    auto it = ids.find(ch);
    if (it != ids.end()) return it->second;
    return ids[ch] = static_cast<int>(ell) + static_cast<int>(ids.size());
  };
  for (size_t i = 0; i < terms.size(); ++i) {
    std::vector<int> labels;
    for (char ch : terms[i]) {
      if (ch == '.') {
        for (int64_t k = ell - ell_rank[i]; k < ell; ++k) labels.push_back(static_cast<int>(k));
      } else {
        labels.push_back(id_of(ch));
        ++uses[ch];
      }
    }
    plan.inputs.push_back(std::move(labels));
  }
  if (arrow == std::string::npos) {
    for (int64_t k = 0; k < ell; ++k) plan.output.push_back(static_cast<int>(k));
    for (const auto& [ch, n] : uses)  // std::map: alphabetical (ASCII) order
      if (n == 1) plan.output.push_back(ids[ch]);
  } else {
    KILN_ASSIGN_OR_RETURN(std::string out, parse_term(node, eq.substr(arrow + 2), raw));
    if (ell > 0 && out.find('.') == std::string::npos)
      return invalid_model("{}: equation '{}' broadcasts {} ellipsis dims but its output has no '...'",
                           node.label(), raw, ell);
    for (char ch : out) {
      if (ch == '.') {
        for (int64_t k = 0; k < ell; ++k) plan.output.push_back(static_cast<int>(k));
        continue;
      }
      if (!ids.count(ch))
        return invalid_model("{}: output label '{}' of equation '{}' is not in any input", node.label(), ch,
                             raw);
      if (std::count(out.begin(), out.end(), ch) > 1)
        return invalid_model("{}: output label '{}' of equation '{}' appears twice", node.label(), ch, raw);
      plan.output.push_back(ids[ch]);
    }
  }
  plan.num_labels = static_cast<int>(ell) + static_cast<int>(ids.size());
  return plan;
}

namespace {

Status infer_einsum(InferContext& ctx) {
  const DType dt = ctx.input_dtype(0);
  if (dt == DType::kBool || dt == DType::kString)
    return ctx.error("needs numeric inputs, got {}", dtype_name(dt));
  if (!ctx.node().has_attr("equation")) return ctx.error("needs the attribute 'equation'");
  std::vector<int64_t> ranks;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (ctx.input_dtype(i) != dt)
      return ctx.error("input {} is {} but input 0 is {}; all inputs need one dtype", i,
                       dtype_name(ctx.input_dtype(i)), dtype_name(dt));
    const Shape& s = ctx.input_shape(i);
    ranks.push_back(s.has_rank() ? static_cast<int64_t>(s.rank()) : -1);
  }
  auto plan = plan_einsum(ctx.node(), ranks);
  if (!plan.ok()) {
    if (plan.status().code() != StatusCode::kUnsupported) return plan.status();
    ctx.set_output(0, dt, Shape::unknown_rank());
    return Status();
  }
  // Each label's size: equal across its uses, or 1 (broadcast).
  std::vector<Dim> size(plan->num_labels, Dim(1));
  for (size_t i = 0; i < plan->inputs.size(); ++i) {
    const Shape& s = ctx.input_shape(i);
    if (!s.has_rank()) {
      for (int l : plan->inputs[i])
        if (size[l].is_static() && size[l].value() == 1) size[l] = Dim::unknown();
      continue;
    }
    for (size_t k = 0; k < s.rank(); ++k) {
      Dim& cur = size[plan->inputs[i][k]];
      const Dim& d = s[k];
      if (d.is_static() && d.value() == 1) continue;
      if (cur.is_static() && cur.value() == 1)
        cur = d;
      else if (cur.is_static() && d.is_static() && cur.value() != d.value())
        return ctx.error(
            "equation '{}': dim {} of input {} {} is {} but the same label has size {} elsewhere",
            ctx.node().attr_string("equation", ""), k, i, s.to_string(), d.value(), cur.value());
      else if (!cur.is_static() && d.is_static())
        cur = d;
    }
  }
  std::vector<Dim> out;
  for (int l : plan->output) out.push_back(size[l]);
  ctx.set_output(0, dt, Shape(out));
  return Status();
}

}  // namespace

void register_einsum(OpRegistry& r) {
  r.add({"Einsum", 1, -1, 1, 1, infer_einsum});
}

}  // namespace kiln::ops
