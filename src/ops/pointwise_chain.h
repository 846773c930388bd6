// PointwiseChain (kiln domain): a chain of elementwise ops fused into one node by fuse_pointwise. Its
// `program` attribute is a small SSA list a human can read, e.g. "t0=mul(x0,x1);t1=erf(t0);y0=add(t1,c0)":
//   x<i>  the node's input i, broadcast to the output shape (ONNX multidirectional rules)
//   c<i>  constants[i], a float attribute: one-element initializers baked in (never runtime inputs)
//   t<i>  an intermediate, y<k> the node's output k (readable by later statements too)
// The function set is the table below; the op file parses and type-checks programs, the CPU reference
// interprets them and the CUDA backend generates a kernel from them, so all three share this one definition.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::ops {

enum class PwFn : uint8_t {
  // Two data operands of one dtype.
  kAdd,
  kSub,
  kMul,
  kDiv,
  kPow,
  kMax,
  kMin,
  kPRelu,
  // One data operand.
  kRelu,
  kSigmoid,
  kTanh,
  kErf,
  kExp,
  kLog,
  kSqrt,
  kNeg,
  kAbs,
  kReciprocal,
  kSoftplus,
  kHardSwish,
  kGelu,
  kGeluTanh,
  // One data operand plus scalar parameters (constants or one-element inputs).
  kLeakyRelu,    // (x, alpha)
  kElu,          // (x, alpha)
  kHardSigmoid,  // (x, alpha, beta)
  kClip,         // (x, lo, hi)
  // where(cond: bool, a, b)
  kWhere,
  // Rounds to another float type: the one place a value's dtype changes.
  kCastF32,
  kCastF16,
  kCastBF16,
  kCastF64,
};

struct PwFnInfo {
  std::string_view name;  // as written in programs
  PwFn fn;
  int arity;
  int first_data;  // operands [first_data, first_data + num_data) share the result's dtype (before a cast)
  int num_data;
  DType cast_to = DType::kUndefined;  // casts only
};

const std::vector<PwFnInfo>& pointwise_functions();
const PwFnInfo* find_pointwise_function(std::string_view name);
const PwFnInfo& pointwise_function(PwFn fn);

struct PwOperand {
  enum class Kind : uint8_t { kInput, kConst, kStep };
  Kind kind = Kind::kInput;
  int index = 0;  // input number, constant number or step number
};

struct PwStep {
  PwFn fn = PwFn::kAdd;
  std::vector<PwOperand> args;
  std::string name;  // "t3" or "y0"
  int output = -1;   // k for y<k>
};

struct PwProgram {
  std::vector<PwStep> steps;
  std::vector<int> output_steps;  // step writing y<k>
  int num_inputs = 0;             // 1 + the highest x<i> read
  int num_constants = 0;          // 1 + the highest c<i> read
  // The canonical text ("t0=mul(x0,x1);y0=relu(t0)").
  std::string to_string() const;
};

// Parses and checks a program: names defined once and before use, y0..y<k-1> each written once, known
// functions with the right operand count. Errors quote the statement.
Result<PwProgram> parse_pointwise_program(std::string_view text);

// The dtype of every step, from the inputs' dtypes (data operands of one float dtype, where conditions bool);
// an error names the statement.
Result<std::vector<DType>> pointwise_step_dtypes(const PwProgram& p, const std::vector<DType>& input_dtypes);

// Attribute names.
inline constexpr const char* kPwProgramAttr = "program";
inline constexpr const char* kPwConstantsAttr = "constants";
// At most this many distinct tensor inputs (the CUDA kernel passes their broadcast strides by value).
inline constexpr int kPwMaxInputs = 16;

}  // namespace kiln::ops
