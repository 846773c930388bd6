// f16/bf16 on the CPU backend, emulated for kiln compare: the CPU kernels compute in f32 only, so a CPU
// engine built with --fp16 would never show an f16 overflow. The engine's graph is converted the way a CUDA
// build converts it (passes/convert_precision, the engine's fp32_layers kept), then widened back to f32 with
// every value the conversion left in f16/bf16 rounded to that dtype right where it is written: the values are
// those of a reduced-precision engine's storage, the arithmetic stays f32.
#include <fmt/format.h>

#include <set>

#include "kiln/compare.h"
#include "passes/convert_precision.h"
#include "passes/pass.h"
#include "engine/engine_state.h"
#include "util/no_throw.h"

namespace kiln::compare {

namespace {

ir::Node cast_node(std::string name, const std::string& from, const std::string& to, DType dt) {
  ir::Node c;
  c.name = std::move(name);
  c.op_type = "Cast";
  c.inputs = {from};
  c.outputs = {to};
  c.attrs["to"] = ir::Attribute::of_int(static_cast<int64_t>(dt));
  return c;
}

// Every `target` value of the converted graph g becomes f32, rounded through `target` where it is written;
// weights converted to `target` (already rounded, saturated) widen exactly.
Status widen_with_rounding(ir::Graph& g, DType target) {
  for (auto& [name, t] : g.initializers)
    if (t.dtype() == target) {
      t = convert(t, DType::kF32);
      g.values[name].dtype = DType::kF32;
    }
  std::set<std::string> node_names;
  for (const auto& n : g.nodes) node_names.insert(n.name);
  auto unique_node = [&](const std::string& base) {
    std::string n = base;
    for (int i = 1; node_names.count(n); ++i) n = fmt::format("{}_{}", base, i);
    node_names.insert(n);
    return n;
  };
  std::vector<ir::Node> out;
  out.reserve(g.nodes.size() * 3);
  for (auto& n : g.nodes) {
    if (n.op_type == "Cast" && n.attr_int("to", 0) == static_cast<int64_t>(target))
      n.attrs["to"] = ir::Attribute::of_int(static_cast<int64_t>(DType::kF32));
    std::vector<ir::Node> after;
    for (auto& o : n.outputs) {
      const ir::ValueInfo* vi = g.value(o);
      if (o.empty() || !vi || vi->dtype != target) continue;
      // The node writes `o` unrounded under a new name; two Casts round it into `o`, which its readers read.
      const std::string raw = g.unique_name(o + "_unrounded");
      const std::string narrow = g.unique_name(o + "_" + std::string(dtype_name(target)));
      g.values[raw] = {DType::kF32, vi->shape};
      g.values[narrow] = {target, vi->shape};
      after.push_back(cast_node(unique_node("kiln_round_" + o + "_to_" + std::string(dtype_name(target))),
                                raw, narrow, target));
      after.push_back(cast_node(unique_node("kiln_round_" + o + "_to_f32"), narrow, o, DType::kF32));
      g.values[o].dtype = DType::kF32;
      o = raw;
    }
    out.push_back(std::move(n));
    for (auto& c : after) out.push_back(std::move(c));
  }
  g.nodes = std::move(out);
  return passes::infer_shapes(g);
}

}  // namespace

Result<Engine> emulate_reduced_precision(const Engine& engine) {
  return no_throw("compare::emulate_reduced_precision", [&]() -> Result<Engine> {
    if (!engine.state() || !engine.state()->graph)
      return Status(StatusCode::kInvalidArgument, "emulate_reduced_precision: the engine is empty");
    const EngineInfo& info = engine.info();
    if (info.backend != BackendKind::kCpu)
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("f16/bf16 emulation is for CPU engines; this {} engine computes in {} itself",
                                backend_name(info.backend), info.precision));
    if (info.precision != "f16" && info.precision != "bf16")
      return Status(
          StatusCode::kInvalidArgument,
          fmt::format("f16/bf16 emulation needs an engine built with --fp16 or --bf16 (this one: {})",
                      info.precision));
    EngineState s = *engine.state();
    auto g = std::make_shared<ir::Graph>(*s.graph);
    passes::PrecisionOptions opt;
    opt.target = info.precision == "f16" ? DType::kF16 : DType::kBF16;
    // Names the optimizations fused or folded away have nothing left to keep (the CUDA build drops them too).
    std::set<std::string> present;
    for (const auto& n : g->nodes) present.insert(n.name);
    for (const auto& name : info.fp32_layers)
      if (present.count(name)) opt.fp32_layers.push_back(name);
    KILN_RETURN_IF_ERROR(passes::convert_precision(*g, opt).with_context("emulating " + info.precision));
    KILN_RETURN_IF_ERROR(widen_with_rounding(*g, opt.target).with_context("emulating " + info.precision));
    s.graph = std::move(g);
    s.cpu.reset();  // finalize_engine_state makes the executor for the new graph
    KILN_RETURN_IF_ERROR(finalize_engine_state(s));
    return Engine(std::make_shared<const EngineState>(std::move(s)));
  });
}

}  // namespace kiln::compare
