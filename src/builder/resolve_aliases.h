// The engine's output -> input aliases (a KV cache updated in place): the ones the user declared (kiln build
// --alias OUT:IN), checked, plus, with auto_alias, the pairs found by the names exporters give a cache.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "ir/graph.h"
#include "kiln/builder.h"

namespace kiln {

using AliasMap = std::map<std::string, std::string>;  // output -> input

// progress gets one line per alias (in place, or copied after the run and why) and per cache-like pair left
// unaliased (its shapes differ: a cache that grows by concatenation).
Result<AliasMap> resolve_aliases(const ir::Graph& g, const BuildConfig& config,
                                 const std::function<void(std::string_view)>& progress);

}  // namespace kiln
