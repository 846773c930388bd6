#include "runtime/profile_fit.h"

#include "util/error.h"
#include "util/safe_text.h"

namespace kiln {

Status check_input_dims(const EngineState& s, int profile, const TensorDesc& d, const std::vector<int64_t>& dims) {
  if (d.shape.has_rank() && d.shape.rank() != dims.size())
    return invalid_argument("input '{}' has rank {} in the engine ({}), got dims {} of rank {}", printable(d.name),
                            d.shape.rank(), d.shape.to_string(), dims_to_string(dims), dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 0) return invalid_argument("input '{}' dim {} is negative ({})", printable(d.name), i, dims[i]);
    if (d.shape.has_rank() && d.shape[i].is_static() && d.shape[i].value() != dims[i])
      return invalid_argument("input '{}' dim {} must be {} (engine shape {}), got {}", printable(d.name), i,
                              d.shape[i].value(), d.shape.to_string(), dims[i]);
  }
  if (s.profiles.empty() || profile < 0) return Status();
  const auto& prof = s.profiles[static_cast<size_t>(profile)];
  auto it = prof.inputs.find(d.name);
  if (it == prof.inputs.end()) return Status();
  const InputRange& r = it->second;
  if (r.min.size() != dims.size() || r.max.size() != dims.size())
    return invalid_argument("input '{}' has dims {} of rank {} but optimization profile {} gives it rank {}",
                            printable(d.name), dims_to_string(dims), dims.size(), profile, r.min.size());
  for (size_t i = 0; i < dims.size(); ++i)
    if (dims[i] < r.min[i] || dims[i] > r.max[i])
      return make_error(StatusCode::kOutOfRange,
                        "input '{}' dim {} is {}, outside optimization profile {} which allows {}..{} (profile min {} "
                        "max {}); pick another profile or rebuild with --shapes {}:MIN,OPT,MAX covering it",
                        printable(d.name), i, dims[i], profile, r.min[i], r.max[i], dims_to_string(r.min),
                        dims_to_string(r.max), printable(d.name));
  return Status();
}

Result<int> route_bundle(const EngineState& b, const std::map<std::string, std::vector<int64_t>>& dims) {
  int best = -1;
  double best_size = 0;
  for (size_t p = 0; p < b.profiles.size(); ++p) {
    const auto& prof = b.profiles[p];
    bool fits = true;
    double size = 0;
    for (const auto& d : b.inputs) {
      auto given = dims.find(d.name);
      auto range = prof.inputs.find(d.name);
      if (given != dims.end()) fits = fits && check_input_dims(b, static_cast<int>(p), d, given->second).ok();
      double elems = 1;
      if (range != prof.inputs.end())
        for (int64_t m : range->second.max) elems *= static_cast<double>(m);
      size += elems;
    }
    if (fits && (best < 0 || size < best_size)) {
      best = static_cast<int>(p);
      best_size = size;
    }
  }
  if (best >= 0) return best;
  std::vector<std::string> given, ranges;
  for (const auto& [name, d] : dims) given.push_back(fmt::format("'{}' {}", printable(name), dims_to_string(d)));
  for (size_t p = 0; p < b.profiles.size(); ++p) {
    std::vector<std::string> r;
    for (const auto& [name, range] : b.profiles[p].inputs)
      r.push_back(fmt::format("'{}' {}..{}", printable(name), dims_to_string(range.min), dims_to_string(range.max)));
    ranges.push_back(fmt::format("member {} profile {}: {}", b.slots[p].first, b.slots[p].second, fmt::join(r, ", ")));
  }
  return make_error(StatusCode::kOutOfRange,
                    "no engine of the bundle takes input shapes {}; its members take {}; rebuild the bundle with a "
                    "member whose --shapes cover them",
                    fmt::join(given, ", "), fmt::join(ranges, "; "));
}

}  // namespace kiln
