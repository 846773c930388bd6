#include "builder/resolve_aliases.h"

#include <algorithm>
#include <array>

#include "ir/in_place.h"
#include "util/error.h"
#include "util/safe_text.h"

namespace kiln {

namespace {

// How exporters name a KV cache's new state and its past (torch.onnx.export of transformers models, older
// exports, hand-written decoders): output prefix, input prefix, the rest of the name equal.
struct CacheNames {
  std::string_view output_prefix, input_prefix;
};
constexpr std::array<CacheNames, 4> kCacheNames = {{
    {"present.", "past_key_values."},
    {"present.", "past."},
    {"present_key_values.", "past_key_values."},
    {"present_", "past_"},
}};

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

Result<AliasMap> resolve_aliases(const ir::Graph& g, const BuildConfig& config,
                                 const std::function<void(std::string_view)>& progress) {
  AliasMap aliases;
  std::map<std::string, std::string> input_taken;  // input -> output
  for (const auto& [out, in] : config.aliases) {
    const std::string flag = fmt::format("--alias {}:{}", printable(out), printable(in));
    KILN_RETURN_IF_ERROR(ir::check_alias(g, out, in).with_context(flag));
    if (aliases.count(out)) return invalid_argument("{}: output '{}' is aliased twice", flag, printable(out));
    if (auto t = input_taken.find(in); t != input_taken.end())
      return invalid_argument("{}: input '{}' already takes output '{}'; one input buffer holds one output", flag,
                              printable(in), printable(t->second));
    aliases[out] = in;
    input_taken[in] = out;
  }
  if (config.auto_alias) {
    for (const auto& out : g.outputs) {
      if (aliases.count(out)) continue;
      for (const auto& rule : kCacheNames) {
        if (out.size() <= rule.output_prefix.size() || out.compare(0, rule.output_prefix.size(), rule.output_prefix))
          continue;
        const std::string in = std::string(rule.input_prefix) + out.substr(rule.output_prefix.size());
        if (!contains(g.inputs, in) || input_taken.count(in)) continue;
        if (!ir::check_alias(g, out, in).ok()) {
          const ir::ValueInfo* vo = g.value(out);
          const ir::ValueInfo* vi = g.value(in);
          const bool same_dtype = vo && vi && vo->dtype == vi->dtype;
          progress(fmt::format("alias: '{}' looks like the next state of '{}' but is {} against {}: not aliased ({}; "
                               "see docs/kv_cache.md)",
                               printable(out), printable(in), ir::describe_value(g, out), ir::describe_value(g, in),
                               same_dtype ? "a cache that grows by concatenation" : "another dtype"));
          break;
        }
        aliases[out] = in;
        input_taken[in] = out;
        break;
      }
    }
  }
  for (const auto& [out, in] : aliases) {
    const ir::InPlaceVerdict v = ir::in_place_verdict(g, out, in);
    progress(fmt::format("alias: '{}' is written into the buffer of '{}' ({})", printable(out), printable(in),
                         v.in_place ? "in place: only the scattered rows are written"
                                    : "copied there after each run: " + v.why));
  }
  return aliases;
}

}  // namespace kiln
