// Tactic choices (which cuBLASLt algorithm, which cuDNN path and algorithm…) keyed by everything they depend
// on. One cache per engine, shared by its contexts and stored in the engine file: the builder times the
// candidates once, at each profile's min/opt/max shapes, so contexts start with the choices made and a
// rebuild with `kiln build --timing-cache FILE` reuses them instead of timing again. Kernels fall back to
// timing (and add the result) for a shape the cache does not know, or when a stored choice no longer runs.
#pragma once
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace kiln {

class TacticCache {
 public:
  std::optional<std::string> find(const std::string& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }
  void put(const std::string& key, std::string value) {
    std::lock_guard<std::mutex> lock(mu_);
    entries_[key] = std::move(value);
  }
  // Adds entries without replacing the ones already here.
  void merge(const std::map<std::string, std::string>& more) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, v] : more) entries_.emplace(k, v);
  }
  std::map<std::string, std::string> entries() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> entries_;
};

}  // namespace kiln
