#include "kiln/shape.h"

#include <fmt/format.h>

#include "util/checked_math.h"

namespace kiln {

Dim Dim::symbol(std::string name) {
  Dim d;
  d.symbol_ = std::move(name);
  return d;
}

std::string Dim::to_string() const {
  if (is_static()) return std::to_string(value_);
  if (is_symbolic()) return symbol_;
  return "?";
}

bool Dim::same_as(const Dim& o) const {
  if (is_static() && o.is_static()) return value_ == o.value_;
  if (is_symbolic() && o.is_symbolic()) return symbol_ == o.symbol_;
  return false;
}

static std::string wrap_expr(const std::string& s) {
  return s.find_first_of("+*") == std::string::npos ? s : "(" + s + ")";
}

Result<Dim> dim_add(const Dim& a, const Dim& b) {
  if (a.is_static() && b.is_static()) {
    auto sum = checked_add(a.value(), b.value());
    if (!sum)
      return Status(StatusCode::kInvalidModel,
                    fmt::format("dimension {} + {} overflows a 64-bit size", a.value(), b.value()));
    return Dim(*sum);
  }
  if (a.is_unknown() || b.is_unknown()) return Dim::unknown();
  if (a.is_static() && a.value() == 0) return b;
  if (b.is_static() && b.value() == 0) return a;
  return Dim::symbol(a.to_string() + "+" + b.to_string());
}

Result<Dim> dim_mul(const Dim& a, const Dim& b) {
  if (a.is_static() && b.is_static()) {
    auto product = checked_mul(a.value(), b.value());
    if (!product)
      return Status(StatusCode::kInvalidModel,
                    fmt::format("dimension {} * {} overflows a 64-bit size", a.value(), b.value()));
    return Dim(*product);
  }
  if ((a.is_static() && a.value() == 0) || (b.is_static() && b.value() == 0)) return Dim(0);
  if (a.is_unknown() || b.is_unknown()) return Dim::unknown();
  if (a.is_static() && a.value() == 1) return b;
  if (b.is_static() && b.value() == 1) return a;
  return Dim::symbol(wrap_expr(a.to_string()) + "*" + wrap_expr(b.to_string()));
}

Shape::Shape(std::initializer_list<int64_t> dims) : has_rank_(true) {
  for (int64_t d : dims) dims_.emplace_back(d);
}

Shape Shape::from_dims(const std::vector<int64_t>& dims) {
  std::vector<Dim> out;
  out.reserve(dims.size());
  for (int64_t d : dims) out.emplace_back(d);
  return Shape(std::move(out));
}

bool Shape::is_static() const {
  if (!has_rank_) return false;
  for (const auto& d : dims_)
    if (!d.is_static()) return false;
  return true;
}

std::vector<int64_t> Shape::static_dims() const {
  std::vector<int64_t> out;
  out.reserve(dims_.size());
  for (const auto& d : dims_) out.push_back(d.value());
  return out;
}

std::string Shape::to_string() const {
  if (!has_rank_) return "[unknown rank]";
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ",";
    s += dims_[i].to_string();
  }
  return s + "]";
}

std::string dims_to_string(const std::vector<int64_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ","));
}

int64_t num_elements(const std::vector<int64_t>& dims) {
  // Saturates, so a count past int64 compares unequal to every real count and no allocation can satisfy it.
  return checked_num_elements(dims).value_or(INT64_MAX);
}

}  // namespace kiln
