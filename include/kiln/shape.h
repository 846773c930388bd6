// Shapes whose dims may be symbolic ("batch", "seq_len+1") or unknown.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "kiln/status.h"

namespace kiln {

class Dim {
 public:
  Dim() = default;                                      // unknown
  Dim(int64_t value) : value_(value) {}                 // NOLINT: static dims read naturally
  static Dim symbol(std::string name);
  static Dim unknown() { return Dim(); }

  bool is_static() const { return value_ >= 0; }
  bool is_symbolic() const { return value_ < 0 && !symbol_.empty(); }
  bool is_unknown() const { return value_ < 0 && symbol_.empty(); }
  int64_t value() const { return value_; }
  const std::string& symbol_name() const { return symbol_; }
  std::string to_string() const;  // "3", "batch", "?"
  // Two dims are provably equal when both are static and equal, or share a symbol.
  bool same_as(const Dim& other) const;
  bool operator==(const Dim& other) const { return value_ == other.value_ && symbol_ == other.symbol_; }

 private:
  int64_t value_ = -1;
  std::string symbol_;
};

// Arithmetic that keeps symbols readable: 3+4 -> 7, batch*2 -> "batch*2", anything with ? -> ?. Static dims
// whose sum or product does not fit in int64 are an error (kInvalidModel) that gives both values.
Result<Dim> dim_add(const Dim& a, const Dim& b);
Result<Dim> dim_mul(const Dim& a, const Dim& b);

class Shape {
 public:
  Shape() = default;  // unknown rank
  Shape(std::vector<Dim> dims) : dims_(std::move(dims)), has_rank_(true) {}  // NOLINT
  Shape(std::initializer_list<int64_t> dims);
  static Shape from_dims(const std::vector<int64_t>& dims);
  static Shape unknown_rank() { return Shape(); }
  static Shape scalar() { return Shape(std::vector<Dim>{}); }

  bool has_rank() const { return has_rank_; }
  size_t rank() const { return dims_.size(); }
  const std::vector<Dim>& dims() const { return dims_; }
  std::vector<Dim>& dims() { return dims_; }
  const Dim& operator[](size_t i) const { return dims_[i]; }
  Dim& operator[](size_t i) { return dims_[i]; }
  bool is_static() const;
  // Only valid when is_static().
  std::vector<int64_t> static_dims() const;
  std::string to_string() const;  // "[batch,3,224,224]", "[?]" for unknown rank
  bool operator==(const Shape& o) const { return has_rank_ == o.has_rank_ && dims_ == o.dims_; }

 private:
  std::vector<Dim> dims_;
  bool has_rank_ = false;
};

std::string dims_to_string(const std::vector<int64_t>& dims);  // "[1,3,224,224]"
// The product of the dims, INT64_MAX when it overflows (or a dim is negative); code that sizes memory from
// it checks with checked_num_elements (src/util/checked_math.h) and reports the overflow.
int64_t num_elements(const std::vector<int64_t>& dims);

}  // namespace kiln
