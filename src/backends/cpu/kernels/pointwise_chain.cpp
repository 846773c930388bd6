// PointwiseChain reference: interprets the program element by element with the same formulas as the unfused
// reference kernels (unary_elementwise.cpp, binary_elementwise.cpp, where.cpp). Each step is computed in
// double and rounded to its dtype's arithmetic precision, which reproduces the unfused f32/f64 kernels bit
// for bit (a float +,-,*,/ computed in double and rounded once is the float result). Intermediates of
// f16/bf16 chains stay in f32 (the GPU kernel computes that way too); only explicit casts and the outputs
// round to half precision.
#include <cmath>
#include <limits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "ops/pointwise_chain.h"
#include "kiln/half.h"

namespace kiln::cpu {

namespace {

using ops::PwFn;
using ops::PwOperand;

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// The value of one step from its operands (a[0..arity)), before rounding.
double apply(PwFn fn, const double* a) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  const double x = a[0];
  switch (fn) {
    case PwFn::kAdd:
      return x + a[1];
    case PwFn::kSub:
      return x - a[1];
    case PwFn::kMul:
      return x * a[1];
    case PwFn::kDiv:
      return x / a[1];
    case PwFn::kPow:
      return std::pow(x, a[1]);
    case PwFn::kMax:
      return std::isnan(x) || std::isnan(a[1]) ? kNaN : (x > a[1] ? x : a[1]);
    case PwFn::kMin:
      return std::isnan(x) || std::isnan(a[1]) ? kNaN : (x < a[1] ? x : a[1]);
    case PwFn::kPRelu:
      return x < 0 ? x * a[1] : x;
    case PwFn::kRelu:
      return x > 0 ? x : 0.0;
    case PwFn::kSigmoid:
      return sigmoid(x);
    case PwFn::kTanh:
      return std::tanh(x);
    case PwFn::kErf:
      return std::erf(x);
    case PwFn::kExp:
      return std::exp(x);
    case PwFn::kLog:
      return std::log(x);
    case PwFn::kSqrt:
      return std::sqrt(x);
    case PwFn::kNeg:
      return -x;
    case PwFn::kAbs:
      return x < 0 ? -x : x;
    case PwFn::kReciprocal:
      return 1.0 / x;
    case PwFn::kSoftplus:
      return x > 30 ? x : std::log1p(std::exp(x));
    case PwFn::kHardSwish:
      return x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5));
    case PwFn::kGelu:
      return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case PwFn::kGeluTanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case PwFn::kLeakyRelu:
      return x >= 0 ? x : x * a[1];
    case PwFn::kElu:
      return x >= 0 ? x : a[1] * (std::exp(x) - 1.0);
    case PwFn::kHardSigmoid:
      return std::max(0.0, std::min(1.0, a[1] * x + a[2]));
    case PwFn::kClip:
      return x < a[1] ? a[1] : (x > a[2] ? a[2] : x);
    case PwFn::kWhere:
      return x != 0 ? a[1] : a[2];
    case PwFn::kCastF32:
    case PwFn::kCastF16:
    case PwFn::kCastBF16:
    case PwFn::kCastF64:
      return x;
  }
  return x;
}

// Rounds a step's result to the precision its dtype computes in (see the file comment).
double round_to(double v, DType dt, PwFn fn) {
  if (dt == DType::kF64) return v;
  const float f = static_cast<float>(v);
  if (fn == PwFn::kCastF16) return half_to_float(float_to_half(f));
  if (fn == PwFn::kCastBF16) return bf16_to_float(float_to_bf16(f));
  return f;
}

double read(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kF32:
      return t.data<float>()[i];
    case DType::kF64:
      return t.data<double>()[i];
    default:
      return t.data<uint8_t>()[i] ? 1.0 : 0.0;  // bool (inference admits only float and bool)
  }
}

void write(Tensor& t, int64_t i, double v) {
  if (t.dtype() == DType::kF64)
    t.data<double>()[i] = v;
  else
    t.data<float>()[i] = static_cast<float>(v);  // f32, or the f32 buffer of an f16/bf16 output
}

Status run_pointwise_chain(KernelContext& ctx) {
  const ir::Node& node = ctx.node();
  auto prog = ops::parse_pointwise_program(node.attr_string(ops::kPwProgramAttr, ""));
  if (!prog.ok()) return ctx.error("{}", prog.status().message());
  // f16/bf16 inputs arrive widened to f32: the same arithmetic precision, so the step dtypes still say how to
  // round.
  std::vector<DType> in_dt;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) in_dt.push_back(ctx.input(i).dtype());
  auto dts = ops::pointwise_step_dtypes(*prog, in_dt);
  if (!dts.ok()) return ctx.error("{}", dts.status().message());
  const std::vector<float> consts = node.attr_floats(ops::kPwConstantsAttr);
  if (static_cast<int>(consts.size()) < prog->num_constants) return ctx.error("too few constants");

  const std::vector<int64_t>& od = ctx.output(0).dims();
  const size_t rank = od.size();
  const size_t n_in = ctx.num_inputs();
  std::vector<std::vector<int64_t>> strides(n_in);
  for (size_t k = 0; k < n_in; ++k) strides[k] = broadcast_strides(ctx.input(k).dims(), od);
  const int64_t n = num_elements(od);
  std::vector<int64_t> idx(rank, 0), off(n_in, 0);
  std::vector<double> vals(prog->steps.size());
  double args[4];
  for (int64_t i = 0; i < n; ++i) {
    for (size_t s = 0; s < prog->steps.size(); ++s) {
      const ops::PwStep& step = prog->steps[s];
      for (size_t a = 0; a < step.args.size(); ++a) {
        const PwOperand& o = step.args[a];
        if (o.kind == PwOperand::Kind::kInput)
          args[a] = read(ctx.input(o.index), off[o.index]);
        else if (o.kind == PwOperand::Kind::kConst)
          args[a] = consts[o.index];
        else
          args[a] = vals[o.index];
      }
      vals[s] = round_to(apply(step.fn, args), (*dts)[s], step.fn);
    }
    for (size_t k = 0; k < prog->output_steps.size(); ++k)
      write(ctx.output(k), i, vals[prog->output_steps[k]]);
    for (size_t d = rank; d-- > 0;) {
      if (++idx[d] < od[d]) {
        for (size_t k = 0; k < n_in; ++k) off[k] += strides[k][d];
        break;
      }
      for (size_t k = 0; k < n_in; ++k) off[k] -= strides[k][d] * (od[d] - 1);
      idx[d] = 0;
    }
  }
  return Status();
}

}  // namespace

void register_cpu_pointwise_chain(KernelTable& t) {
  t.add({"PointwiseChain", run_pointwise_chain});
}

}  // namespace kiln::cpu
