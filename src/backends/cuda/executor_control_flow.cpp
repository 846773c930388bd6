// If, Loop and Scan on the CUDA executor. The condition or trip count is read on the host (one read-back when the
// GPU computed it); the body then runs through execute like any graph, its nodes placed by the usual rules and
// reading enclosing values by name, so the work stays on the GPU wherever kernels exist. Scan slices and Loop/Scan
// stacking are device copies (views where the slice is contiguous), which CUDA graph capture keeps.
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/executor.h"
#include "util/error.h"
#include "util/tensor_stack.h"

namespace kiln::cuda {

namespace {

const ir::Graph* body_graph(const ir::Node& node, const char* key) {
  const ir::Attribute* a = node.attr(key);
  return a && a->kind == ir::Attribute::Kind::kGraph ? a->g.get() : nullptr;
}

// A negative axis counted from the end of `rank`; -1 when out of range.
int64_t normalized_axis(int64_t axis, int64_t rank) {
  if (axis < 0) axis += rank;
  return axis < 0 || axis >= rank ? -1 : axis;
}

}  // namespace

Status GraphExecutor::run_control_flow(const ir::Node& node, const std::vector<Slot*>& in, const SlotLookup& scope,
                                       std::vector<Slot>& outs) {
  if (node.op_type == "If") return run_if(node, in, scope, outs);
  if (node.op_type == "Loop") return run_loop(node, in, scope, outs);
  return run_scan(node, in, scope, outs);
}

Result<GraphExecutor::Slot> GraphExecutor::body_result(const ir::Graph& body, Values& done, const SlotLookup& scope,
                                                       const std::string& name) {
  if (auto it = done.find(name); it != done.end()) return it->second;
  if (auto c = body.initializers.find(name); c != body.initializers.end()) {
    Slot s;
    s.host = c->second;
    return s;
  }
  if (Slot* s = scope(name)) return *s;
  return internal_error("body output '{}' has no value after the body ran", name);
}

Result<int64_t> GraphExecutor::control_value(const ir::Node& node, const std::string& what, const std::string& name,
                                             Slot& s) {
  KILN_RETURN_IF_ERROR(ensure_host(name, s));
  if (s.host->numel() != 1)
    return invalid_argument("{}: {} '{}' must hold exactly one value, got {}", node.label(), what, name, s.host->describe());
  // A condition may be any numeric type: non-zero is true (get_as_int would truncate 0.5 to false).
  if (is_float(s.host->dtype())) return static_cast<int64_t>(s.host->get_as_double(0) != 0.0);
  return s.host->get_as_int(0);
}

Status GraphExecutor::run_if(const ir::Node& node, const std::vector<Slot*>& in, const SlotLookup& scope,
                             std::vector<Slot>& outs) {
  if (in.empty() || !in[0]) return invalid_argument("{}: needs a condition input", node.label());
  KILN_ASSIGN_OR_RETURN(const int64_t cond, control_value(node, "the condition", node.inputs[0], *in[0]));
  const char* key = cond != 0 ? "then_branch" : "else_branch";
  const ir::Graph* branch = body_graph(node, key);
  if (!branch) return invalid_argument("{}: has no graph attribute '{}'", node.label(), key);
  if (branch->outputs.size() < outs.size())
    return invalid_argument("{}: {} produces {} outputs, the node has {}", node.label(), key, branch->outputs.size(),
                            outs.size());
  KILN_ASSIGN_OR_RETURN(Values done, execute(*branch, {}, &scope, nullptr));
  for (size_t k = 0; k < outs.size(); ++k) {
    if (node.outputs[k].empty()) continue;
    KILN_ASSIGN_OR_RETURN(outs[k], body_result(*branch, done, scope, branch->outputs[k]));
  }
  return Status();
}

Status GraphExecutor::run_loop(const ir::Node& node, const std::vector<Slot*>& in, const SlotLookup& scope,
                               std::vector<Slot>& outs) {
  const ir::Graph* body = body_graph(node, "body");
  if (!body) return invalid_argument("{}: has no graph attribute 'body'", node.label());
  const size_t n_carried = in.size() >= 2 ? in.size() - 2 : 0;
  if (body->inputs.size() != n_carried + 2 || body->outputs.size() < n_carried + 1)
    return invalid_argument("{}: the body takes {} inputs and returns {} outputs; with {} carried values it must take "
                            "{} and return at least {}", node.label(), body->inputs.size(), body->outputs.size(),
                            n_carried, n_carried + 2, n_carried + 1);
  int64_t trips = std::numeric_limits<int64_t>::max();
  if (!in.empty() && in[0]) {
    KILN_ASSIGN_OR_RETURN(trips, control_value(node, "the trip count", node.inputs[0], *in[0]));
  }
  bool cond = true;
  if (in.size() > 1 && in[1]) {
    KILN_ASSIGN_OR_RETURN(const int64_t c, control_value(node, "the condition", node.inputs[1], *in[1]));
    cond = c != 0;
  }
  std::vector<Slot> carried;
  for (size_t j = 0; j < n_carried; ++j) {
    if (!in[j + 2]) return invalid_argument("{}: loop-carried input {} is missing", node.label(), j);
    carried.push_back(*in[j + 2]);
  }
  const size_t n_scan = body->outputs.size() - 1 - n_carried;
  std::vector<std::vector<Slot>> scans(n_scan);
  for (int64_t i = 0; i < trips && cond; ++i) {
    Values live;
    live[body->inputs[0]].host = Tensor::scalar_i64(i);
    Tensor c(DType::kBool, {});
    *c.data<uint8_t>() = 1;
    live[body->inputs[1]].host = std::move(c);
    for (size_t j = 0; j < n_carried; ++j) live[body->inputs[j + 2]] = carried[j];
    KILN_ASSIGN_OR_RETURN(Values done, execute(*body, std::move(live), &scope, nullptr));
    KILN_ASSIGN_OR_RETURN(Slot cond_out, body_result(*body, done, scope, body->outputs[0]));
    KILN_ASSIGN_OR_RETURN(const int64_t next, control_value(node, "the body's condition output", body->outputs[0], cond_out));
    cond = next != 0;
    for (size_t j = 0; j < n_carried; ++j) {
      KILN_ASSIGN_OR_RETURN(carried[j], body_result(*body, done, scope, body->outputs[1 + j]));
    }
    for (size_t k = 0; k < n_scan; ++k) {
      KILN_ASSIGN_OR_RETURN(Slot part, body_result(*body, done, scope, body->outputs[1 + n_carried + k]));
      scans[k].push_back(std::move(part));
    }
  }
  for (size_t j = 0; j < n_carried && j < outs.size(); ++j) outs[j] = std::move(carried[j]);
  for (size_t k = 0; k < n_scan && n_carried + k < outs.size(); ++k) {
    const ir::ValueInfo* v = body->value(body->outputs[1 + n_carried + k]);
    const DType dt = scans[k].empty() ? (v ? v->dtype : DType::kF32) : scans[k][0].dtype();
    KILN_ASSIGN_OR_RETURN(outs[n_carried + k], stack_slots(scans[k], 0, dt, node));
  }
  return Status();
}

Status GraphExecutor::run_scan(const ir::Node& node, const std::vector<Slot*>& in, const SlotLookup& scope,
                               std::vector<Slot>& outs) {
  const ir::Graph* body = body_graph(node, "body");
  if (!body) return invalid_argument("{}: has no graph attribute 'body'", node.label());
  const int64_t m = node.attr_int("num_scan_inputs", 0);
  if (m < 0 || static_cast<size_t>(m) > in.size())
    return invalid_argument("{}: num_scan_inputs {} is out of range for {} inputs", node.label(), m, in.size());
  const size_t n_states = in.size() - static_cast<size_t>(m);
  if (body->inputs.size() != in.size() || body->outputs.size() < n_states)
    return invalid_argument("{}: the body takes {} inputs and returns {} outputs for {} states and {} scan inputs",
                            node.label(), body->inputs.size(), body->outputs.size(), n_states, m);
  const size_t k = body->outputs.size() - n_states;
  auto in_axes = node.attr_ints("scan_input_axes", std::vector<int64_t>(static_cast<size_t>(m), 0));
  auto in_dirs = node.attr_ints("scan_input_directions", std::vector<int64_t>(static_cast<size_t>(m), 0));
  auto out_axes = node.attr_ints("scan_output_axes", std::vector<int64_t>(k, 0));
  auto out_dirs = node.attr_ints("scan_output_directions", std::vector<int64_t>(k, 0));
  if (in_axes.size() != static_cast<size_t>(m) || in_dirs.size() != static_cast<size_t>(m) || out_axes.size() != k ||
      out_dirs.size() != k)
    return invalid_argument("{}: scan axis/direction attributes must have one entry per scan input ({}) and output ({})",
                            node.label(), m, k);
  std::vector<Slot> states;
  for (size_t j = 0; j < in.size(); ++j) {
    if (!in[j]) return invalid_argument("{}: input {} is missing", node.label(), j);
    if (j < n_states) states.push_back(*in[j]);
  }
  int64_t len = -1;
  for (size_t i = 0; i < static_cast<size_t>(m); ++i) {
    const Slot& s = *in[n_states + i];
    const int64_t axis = normalized_axis(in_axes[i], static_cast<int64_t>(s.dims().size()));
    if (axis < 0)
      return invalid_argument("{}: scan_input_axes[{}] = {} is out of range for rank {}", node.label(), i, in_axes[i],
                              s.dims().size());
    in_axes[i] = axis;
    const int64_t l = s.dims()[static_cast<size_t>(axis)];
    if (len >= 0 && l != len) return invalid_argument("{}: scan inputs have different lengths {} and {}", node.label(), len, l);
    len = l;
  }
  std::vector<std::vector<Slot>> parts(k);
  for (int64_t t = 0; t < std::max<int64_t>(len, 0); ++t) {
    Values live;
    for (size_t j = 0; j < n_states; ++j) live[body->inputs[j]] = states[j];
    for (size_t i = 0; i < static_cast<size_t>(m); ++i) {
      KILN_ASSIGN_OR_RETURN(live[body->inputs[n_states + i]],
                            slice_slot(*in[n_states + i], static_cast<size_t>(in_axes[i]), in_dirs[i] ? len - 1 - t : t));
    }
    KILN_ASSIGN_OR_RETURN(Values done, execute(*body, std::move(live), &scope, nullptr));
    for (size_t j = 0; j < n_states; ++j) {
      KILN_ASSIGN_OR_RETURN(states[j], body_result(*body, done, scope, body->outputs[j]));
    }
    for (size_t q = 0; q < k; ++q) {
      KILN_ASSIGN_OR_RETURN(Slot part, body_result(*body, done, scope, body->outputs[n_states + q]));
      parts[q].push_back(std::move(part));
    }
  }
  for (size_t j = 0; j < n_states && j < outs.size(); ++j) outs[j] = std::move(states[j]);
  for (size_t q = 0; q < k && n_states + q < outs.size(); ++q) {
    if (out_dirs[q]) std::reverse(parts[q].begin(), parts[q].end());
    const int64_t rank = parts[q].empty() ? 1 : static_cast<int64_t>(parts[q][0].dims().size()) + 1;
    const int64_t axis = normalized_axis(out_axes[q], rank);
    if (axis < 0)
      return invalid_argument("{}: scan_output_axes[{}] = {} is out of range for rank {}", node.label(), q, out_axes[q], rank);
    const ir::ValueInfo* v = body->value(body->outputs[n_states + q]);
    const DType dt = parts[q].empty() ? (v ? v->dtype : DType::kF32) : parts[q][0].dtype();
    KILN_ASSIGN_OR_RETURN(outs[n_states + q], stack_slots(parts[q], static_cast<size_t>(axis), dt, node));
  }
  return Status();
}

Result<GraphExecutor::Slot> GraphExecutor::stack_slots(std::vector<Slot>& parts, size_t axis, DType dtype,
                                                       const ir::Node& node) {
  Slot out;
  const bool all_host = std::all_of(parts.begin(), parts.end(), [](const Slot& s) { return s.host.has_value(); });
  if (all_host) {
    std::vector<Tensor> host;
    for (const Slot& s : parts) host.push_back(*s.host);
    KILN_ASSIGN_OR_RETURN(out.host, stack_along(host, axis, dtype, node.label()));
    return out;
  }
  const std::vector<int64_t> dims = parts[0].dims();
  for (Slot& s : parts) {
    if (s.dims() != dims)
      return invalid_argument("{}: iterations produced different shapes {} and {}; they must agree to be stacked",
                              node.label(), dims_to_string(dims), dims_to_string(s.dims()));
    KILN_RETURN_IF_ERROR(ensure_device(node.name + "/stacked part", s));
  }
  // Part k is `outer` rows of `row` bytes; in the result its rows sit k rows apart within each outer index.
  const AxisSplit split = split_at_axis(dims, axis, dtype);
  const size_t row = static_cast<size_t>(split.length) * split.inner_bytes;
  const size_t n = parts.size();
  DeviceTensor t;
  t.dtype = dtype;
  t.dims = dims;
  t.dims.insert(t.dims.begin() + static_cast<std::ptrdiff_t>(axis), static_cast<int64_t>(n));
  KILN_ASSIGN_OR_RETURN(t.storage, allocate(std::max<size_t>(t.nbytes(), 1)));
  t.data = t.storage.get();
  if (row && split.outer)
    for (size_t k = 0; k < n; ++k) {
      char* dst = static_cast<char*>(t.data) + k * row;
      if (split.outer == 1) {
        KILN_CUDA_CHECK(cudaMemcpyAsync(dst, parts[k].dev->data, row, cudaMemcpyDeviceToDevice, res_.stream));
      } else {
        KILN_CUDA_CHECK(cudaMemcpy2DAsync(dst, n * row, parts[k].dev->data, row, row, static_cast<size_t>(split.outer),
                                          cudaMemcpyDeviceToDevice, res_.stream));
      }
    }
  out.dev = std::move(t);
  return out;
}

Result<GraphExecutor::Slot> GraphExecutor::slice_slot(const Slot& s, size_t axis, int64_t index) {
  Slot out;
  if (s.host) {
    out.host = take_along(*s.host, axis, index);
    return out;
  }
  const DeviceTensor& src = *s.dev;
  const AxisSplit split = split_at_axis(src.dims, axis, src.dtype);
  std::vector<int64_t> dims = src.dims;
  dims.erase(dims.begin() + static_cast<std::ptrdiff_t>(axis));
  const char* from = static_cast<const char*>(src.data) + static_cast<size_t>(index) * split.inner_bytes;
  if (split.outer == 1) {  // one contiguous run of bytes: a view, no copy
    DeviceTensor v = src.view(dims);
    v.data = const_cast<char*>(from);
    out.dev = std::move(v);
    return out;
  }
  DeviceTensor t;
  t.dtype = src.dtype;
  t.dims = dims;
  KILN_ASSIGN_OR_RETURN(t.storage, allocate(std::max<size_t>(t.nbytes(), 1)));
  t.data = t.storage.get();
  if (t.nbytes())
    KILN_CUDA_CHECK(cudaMemcpy2DAsync(t.data, split.inner_bytes, from, static_cast<size_t>(split.length) * split.inner_bytes,
                                      split.inner_bytes, static_cast<size_t>(split.outer), cudaMemcpyDeviceToDevice,
                                      res_.stream));
  out.dev = std::move(t);
  return out;
}

}  // namespace kiln::cuda
