// If, Loop and Scan: run the body subgraphs with the CPU executor, passing the enclosing scope along.
#include <algorithm>
#include <limits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/executor.h"
#include "backends/cpu/kernel_list.h"
#include "util/error.h"
#include "util/tensor_stack.h"

namespace kiln::cpu {

namespace {

std::shared_ptr<const ir::Graph> body(const KernelContext& ctx, const char* key) { return ctx.node().attr(key)->g; }

Status run_if(KernelContext& ctx) {
  KILN_ASSIGN_OR_RETURN(const double cond_value, ctx.scalar_double(0));
  const bool cond = cond_value != 0.0;
  auto g = body(ctx, cond ? "then_branch" : "else_branch");
  GraphExecutor exec(g);
  KILN_ASSIGN_OR_RETURN(auto outs, exec.run({}, ctx.scope()));
  for (size_t i = 0; i < ctx.num_outputs(); ++i) ctx.set_output(i, outs.at(g->outputs[i]));
  return Status();
}

Status run_loop(KernelContext& ctx) {
  auto g = body(ctx, "body");
  // M and cond, when given, hold one value each: an empty M is not "no trip count".
  int64_t max_trips = std::numeric_limits<int64_t>::max();
  if (ctx.has_input(0)) {
    KILN_ASSIGN_OR_RETURN(max_trips, ctx.scalar_int(0));
  }
  bool cond = true;
  if (ctx.has_input(1)) {
    KILN_ASSIGN_OR_RETURN(const double c, ctx.scalar_double(1));
    cond = c != 0.0;
  }
  const size_t n_carried = ctx.num_inputs() - 2;
  std::vector<Tensor> carried;
  for (size_t j = 0; j < n_carried; ++j) carried.push_back(ctx.input(j + 2));
  const size_t n_scan = g->outputs.size() - 1 - n_carried;
  std::vector<std::vector<Tensor>> scans(n_scan);
  GraphExecutor exec(g);
  Tensor cond_t(DType::kBool, {});
  for (int64_t i = 0; i < max_trips && cond; ++i) {
    std::map<std::string, Tensor> in;
    in[g->inputs[0]] = Tensor::scalar_i64(i);
    *cond_t.data<uint8_t>() = 1;
    in[g->inputs[1]] = cond_t.clone();
    for (size_t j = 0; j < n_carried; ++j) in[g->inputs[j + 2]] = carried[j];
    KILN_ASSIGN_OR_RETURN(auto outs, exec.run(in, ctx.scope()));
    const Tensor& cond_out = outs.at(g->outputs[0]);
    if (cond_out.numel() != 1)
      return ctx.error("the body's condition output must hold one value, got {}", cond_out.describe());
    cond = cond_out.get_as_double(0) != 0.0;
    for (size_t j = 0; j < n_carried; ++j) carried[j] = outs.at(g->outputs[1 + j]);
    for (size_t k = 0; k < n_scan; ++k) scans[k].push_back(outs.at(g->outputs[1 + n_carried + k]));
  }
  for (size_t j = 0; j < n_carried && j < ctx.num_outputs(); ++j) ctx.set_output(j, carried[j]);
  for (size_t k = 0; k < n_scan && n_carried + k < ctx.num_outputs(); ++k) {
    const ir::ValueInfo* v = g->value(g->outputs[1 + n_carried + k]);
    DType dt = scans[k].empty() ? (v ? v->dtype : DType::kF32) : scans[k][0].dtype();
    KILN_ASSIGN_OR_RETURN(Tensor t, stack_along(scans[k], 0, dt, ctx.node().label()));
    ctx.set_output(n_carried + k, t);
  }
  return Status();
}

// One Scan over states + scan inputs (opset >= 9 layout).
Status scan_once(const KernelContext& ctx, const std::shared_ptr<const ir::Graph>& g, std::vector<Tensor> states,
                 const std::vector<Tensor>& scan_in, std::vector<Tensor>& results) {
  const ir::Node& n = ctx.node();
  const size_t m = scan_in.size(), n_states = states.size();
  const size_t k = g->outputs.size() - n_states;
  auto in_axes = n.attr_ints("scan_input_axes", std::vector<int64_t>(m, 0));
  auto in_dirs = n.attr_ints("scan_input_directions", std::vector<int64_t>(m, 0));
  auto out_axes = n.attr_ints("scan_output_axes", std::vector<int64_t>(k, 0));
  auto out_dirs = n.attr_ints("scan_output_directions", std::vector<int64_t>(k, 0));
  int64_t len = -1;
  for (size_t i = 0; i < m; ++i) {
    int64_t r = static_cast<int64_t>(scan_in[i].rank());
    if (in_axes[i] < 0) in_axes[i] += r;
    if (in_axes[i] < 0 || in_axes[i] >= r) return ctx.error("scan_input_axes[{}] is out of range for rank {}", i, r);
    int64_t l = scan_in[i].dim(static_cast<size_t>(in_axes[i]));
    if (len >= 0 && l != len) return ctx.error("scan inputs have different lengths {} and {}", len, l);
    len = l;
  }
  GraphExecutor exec(g);
  std::vector<std::vector<Tensor>> outs(k);
  for (int64_t t = 0; t < len; ++t) {
    std::map<std::string, Tensor> in;
    for (size_t j = 0; j < n_states; ++j) in[g->inputs[j]] = states[j];
    for (size_t i = 0; i < m; ++i)
      in[g->inputs[n_states + i]] = take_along(scan_in[i], static_cast<size_t>(in_axes[i]), in_dirs[i] ? len - 1 - t : t);
    KILN_ASSIGN_OR_RETURN(auto o, exec.run(in, ctx.scope()));
    for (size_t j = 0; j < n_states; ++j) states[j] = o.at(g->outputs[j]);
    for (size_t q = 0; q < k; ++q) outs[q].push_back(o.at(g->outputs[n_states + q]));
  }
  results = states;
  for (size_t q = 0; q < k; ++q) {
    if (out_dirs[q]) std::reverse(outs[q].begin(), outs[q].end());
    int64_t axis = out_axes[q];
    const int64_t r = outs[q].empty() ? 1 : static_cast<int64_t>(outs[q][0].rank()) + 1;
    if (axis < 0) axis += r;
    const ir::ValueInfo* v = g->value(g->outputs[n_states + q]);
    DType dt = outs[q].empty() ? (v ? v->dtype : DType::kF32) : outs[q][0].dtype();
    KILN_ASSIGN_OR_RETURN(Tensor st, stack_along(outs[q], static_cast<size_t>(axis), dt, n.label()));
    results.push_back(st);
  }
  return Status();
}

Status run_scan(KernelContext& ctx) {
  auto g = body(ctx, "body");
  const int64_t m = ctx.node().attr_int("num_scan_inputs", 0);
  if (ctx.opset() >= 9) {
    const size_t n_states = ctx.num_inputs() - static_cast<size_t>(m);
    std::vector<Tensor> states, scan_in, results;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) (i < n_states ? states : scan_in).push_back(ctx.input(i));
    KILN_RETURN_IF_ERROR(scan_once(ctx, g, states, scan_in, results));
    for (size_t i = 0; i < ctx.num_outputs(); ++i) ctx.set_output(i, results[i]);
    return Status();
  }
  // Opset 8: input 0 is sequence_lens and every tensor has a leading batch axis; scan each batch row.
  if (ctx.has_input(0)) return ctx.unsupported("Scan-8 with sequence_lens is not supported");
  const size_t n_states = ctx.num_inputs() - 1 - static_cast<size_t>(m);
  const int64_t batch = ctx.input(1).dim(0);
  std::vector<std::vector<Tensor>> per_output(ctx.num_outputs());
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> states, scan_in, results;
    for (size_t i = 1; i < ctx.num_inputs(); ++i)
      (i - 1 < n_states ? states : scan_in).push_back(take_along(ctx.input(i), 0, b));
    KILN_RETURN_IF_ERROR(scan_once(ctx, g, states, scan_in, results));
    for (size_t i = 0; i < ctx.num_outputs(); ++i) per_output[i].push_back(results[i]);
  }
  for (size_t i = 0; i < ctx.num_outputs(); ++i) {
    KILN_ASSIGN_OR_RETURN(Tensor t, stack_along(per_output[i], 0, per_output[i].empty() ? DType::kF32 : per_output[i][0].dtype(), ctx.node().label()));
    ctx.set_output(i, t);
  }
  return Status();
}

}  // namespace

void register_cpu_control_flow(KernelTable& t) {
  t.add({"If", run_if, false});
  t.add({"Loop", run_loop, false});
  t.add({"Scan", run_scan, false});
}

}  // namespace kiln::cpu
