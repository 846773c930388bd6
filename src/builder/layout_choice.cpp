#include "builder/layout_choice.h"

namespace kiln {

namespace {

bool static_batch_one(const ir::Graph& g, const std::string& input) {
  const ir::ValueInfo* v = g.value(input);
  if (!v || !v->shape.has_rank()) return false;
  if (v->shape.rank() == 0) return true;
  return v->shape[0].is_static() && v->shape[0].value() == 1;
}

}  // namespace

bool batch_one_engine(const ir::Graph& g, const std::vector<OptimizationProfile>& profiles) {
  if (g.inputs.empty()) return false;
  if (profiles.empty()) {
    for (const auto& in : g.inputs)
      if (!static_batch_one(g, in)) return false;
    return true;
  }
  for (const auto& p : profiles)
    for (const auto& in : g.inputs) {
      auto r = p.inputs.find(in);
      if (r == p.inputs.end()) {
        if (!static_batch_one(g, in)) return false;
      } else if (!r->second.opt.empty() && r->second.opt[0] != 1) {
        return false;
      }
    }
  return true;
}

bool use_channels_last(ConvLayoutChoice choice, const ir::Graph& g, const std::vector<OptimizationProfile>& profiles) {
  switch (choice) {
    case ConvLayoutChoice::kNHWC:
      return true;
    case ConvLayoutChoice::kNCHW:
      return false;
    default:
      return !batch_one_engine(g, profiles);
  }
}

}  // namespace kiln
