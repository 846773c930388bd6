// PointwiseChain (kiln domain): parsing, type checking and shape inference of the fused elementwise programs
// fuse_pointwise writes (see pointwise_chain.h for the language). Every output has the broadcast shape of all
// inputs; dtypes follow the program (a chain of f16 stays f16, casts change it).
#include "ops/pointwise_chain.h"

#include <cctype>
#include <map>

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

namespace {

Status program_error(std::string msg) {
  return Status(StatusCode::kInvalidModel, std::move(msg));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// "x12" -> ('x', 12); false unless one letter and decimal digits.
bool split_name(std::string_view s, char* letter, int* index) {
  if (s.size() < 2 || s.size() > 8 || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  int v = 0;
  for (size_t i = 1; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  if (s.size() > 2 && s[1] == '0') return false;  // one spelling per name
  *letter = s[0];
  *index = v;
  return true;
}

}  // namespace

const std::vector<PwFnInfo>& pointwise_functions() {
  static const std::vector<PwFnInfo> kFns = {
      {"add", PwFn::kAdd, 2, 0, 2},
      {"sub", PwFn::kSub, 2, 0, 2},
      {"mul", PwFn::kMul, 2, 0, 2},
      {"div", PwFn::kDiv, 2, 0, 2},
      {"pow", PwFn::kPow, 2, 0, 2},
      {"max", PwFn::kMax, 2, 0, 2},
      {"min", PwFn::kMin, 2, 0, 2},
      {"prelu", PwFn::kPRelu, 2, 0, 2},
      {"relu", PwFn::kRelu, 1, 0, 1},
      {"sigmoid", PwFn::kSigmoid, 1, 0, 1},
      {"tanh", PwFn::kTanh, 1, 0, 1},
      {"erf", PwFn::kErf, 1, 0, 1},
      {"exp", PwFn::kExp, 1, 0, 1},
      {"log", PwFn::kLog, 1, 0, 1},
      {"sqrt", PwFn::kSqrt, 1, 0, 1},
      {"neg", PwFn::kNeg, 1, 0, 1},
      {"abs", PwFn::kAbs, 1, 0, 1},
      {"reciprocal", PwFn::kReciprocal, 1, 0, 1},
      {"softplus", PwFn::kSoftplus, 1, 0, 1},
      {"hard_swish", PwFn::kHardSwish, 1, 0, 1},
      {"gelu", PwFn::kGelu, 1, 0, 1},
      {"gelu_tanh", PwFn::kGeluTanh, 1, 0, 1},
      {"leaky_relu", PwFn::kLeakyRelu, 2, 0, 1},
      {"elu", PwFn::kElu, 2, 0, 1},
      {"hard_sigmoid", PwFn::kHardSigmoid, 3, 0, 1},
      {"clip", PwFn::kClip, 3, 0, 1},
      {"where", PwFn::kWhere, 3, 1, 2},
      {"cast_f32", PwFn::kCastF32, 1, 0, 0, DType::kF32},
      {"cast_f16", PwFn::kCastF16, 1, 0, 0, DType::kF16},
      {"cast_bf16", PwFn::kCastBF16, 1, 0, 0, DType::kBF16},
      {"cast_f64", PwFn::kCastF64, 1, 0, 0, DType::kF64},
  };
  return kFns;
}

const PwFnInfo* find_pointwise_function(std::string_view name) {
  for (const auto& f : pointwise_functions())
    if (f.name == name) return &f;
  return nullptr;
}

const PwFnInfo& pointwise_function(PwFn fn) {
  for (const auto& f : pointwise_functions())
    if (f.fn == fn) return f;
  return pointwise_functions().front();  // unreachable: every enumerator has a row
}

std::string PwProgram::to_string() const {
  std::string out;
  for (const auto& s : steps) {
    if (!out.empty()) out += ';';
    out += s.name + "=" + std::string(pointwise_function(s.fn).name) + "(";
    for (size_t i = 0; i < s.args.size(); ++i) {
      const PwOperand& a = s.args[i];
      if (i) out += ',';
      if (a.kind == PwOperand::Kind::kInput)
        out += "x" + std::to_string(a.index);
      else if (a.kind == PwOperand::Kind::kConst)
        out += "c" + std::to_string(a.index);
      else
        out += steps[a.index].name;
    }
    out += ')';
  }
  return out;
}

Result<PwProgram> parse_pointwise_program(std::string_view text) {
  PwProgram p;
  std::map<std::string, int, std::less<>> defined;  // name -> step
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(';', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view stmt = trim(text.substr(pos, end - pos));
    pos = end + 1;
    if (stmt.empty()) {
      if (end == text.size()) break;
      continue;
    }
    const size_t eq = stmt.find('=');
    const size_t open = stmt.find('(');
    if (eq == std::string_view::npos || open == std::string_view::npos || open < eq || stmt.back() != ')')
      return program_error(fmt::format("statement '{}' is not NAME=FUNCTION(OPERANDS)", stmt));
    const std::string_view dst = trim(stmt.substr(0, eq));
    const std::string_view fn_name = trim(stmt.substr(eq + 1, open - eq - 1));
    const std::string_view args = stmt.substr(open + 1, stmt.size() - open - 2);
    PwStep step;
    char letter;
    int index;
    if (!split_name(dst, &letter, &index) || (letter != 't' && letter != 'y'))
      return program_error(fmt::format("statement '{}': the result must be named t<N> or y<N>", stmt));
    if (defined.count(dst))
      return program_error(fmt::format("statement '{}': '{}' is assigned twice", stmt, dst));
    step.name = std::string(dst);
    if (letter == 'y') step.output = index;
    const PwFnInfo* fn = find_pointwise_function(fn_name);
    if (!fn) return program_error(fmt::format("statement '{}': unknown function '{}'", stmt, fn_name));
    step.fn = fn->fn;
    size_t a = 0;
    while (a <= args.size()) {
      size_t comma = args.find(',', a);
      if (comma == std::string_view::npos) comma = args.size();
      const std::string_view operand = trim(args.substr(a, comma - a));
      a = comma + 1;
      if (!split_name(operand, &letter, &index) ||
          std::string_view("xcty").find(letter) == std::string_view::npos)
        return program_error(fmt::format("statement '{}': bad operand '{}'", stmt, operand));
      PwOperand op;
      op.index = index;
      if (letter == 'x') {
        op.kind = PwOperand::Kind::kInput;
        p.num_inputs = std::max(p.num_inputs, index + 1);
      } else if (letter == 'c') {
        op.kind = PwOperand::Kind::kConst;
        p.num_constants = std::max(p.num_constants, index + 1);
      } else {
        auto it = defined.find(operand);
        if (it == defined.end())
          return program_error(
              fmt::format("statement '{}': '{}' is read before it is assigned", stmt, operand));
        op.kind = PwOperand::Kind::kStep;
        op.index = it->second;
      }
      step.args.push_back(op);
      if (comma == args.size()) break;
    }
    if (static_cast<int>(step.args.size()) != fn->arity)
      return program_error(fmt::format("statement '{}': {} takes {} operands, got {}", stmt, fn->name,
                                       fn->arity, step.args.size()));
    defined[step.name] = static_cast<int>(p.steps.size());
    p.steps.push_back(std::move(step));
  }
  if (p.steps.empty()) return program_error("the program is empty");
  for (int k = 0;; ++k) {
    auto it = defined.find("y" + std::to_string(k));
    if (it == defined.end()) break;
    p.output_steps.push_back(it->second);
  }
  for (const auto& s : p.steps)
    if (s.output >= static_cast<int>(p.output_steps.size()))
      return program_error(
          fmt::format("output '{}' is written but y{} is not (outputs are y0, y1, … in order)", s.name,
                      p.output_steps.size()));
  if (p.output_steps.empty()) return program_error("the program writes no output (y0)");
  return p;
}

Result<std::vector<DType>> pointwise_step_dtypes(const PwProgram& p, const std::vector<DType>& input_dtypes) {
  std::vector<DType> dt(p.steps.size(), DType::kUndefined);
  auto dtype_of = [&](const PwOperand& a) {
    if (a.kind == PwOperand::Kind::kInput)
      return a.index < static_cast<int>(input_dtypes.size()) ? input_dtypes[a.index] : DType::kUndefined;
    if (a.kind == PwOperand::Kind::kStep) return dt[a.index];
    return DType::kUndefined;  // constants take the dtype of what they meet
  };
  for (size_t s = 0; s < p.steps.size(); ++s) {
    const PwStep& step = p.steps[s];
    const PwFnInfo& fn = pointwise_function(step.fn);
    const std::string where = fmt::format("step {} ('{}=' {})", s, step.name, fn.name);
    for (const PwOperand& a : step.args)
      if (a.kind == PwOperand::Kind::kInput && a.index >= static_cast<int>(input_dtypes.size()))
        return program_error(
            fmt::format("{} reads x{} but the node has {} inputs", where, a.index, input_dtypes.size()));
    if (step.fn == PwFn::kWhere) {
      const DType c = dtype_of(step.args[0]);
      if (c != DType::kBool)
        return program_error(fmt::format("{}: the condition must be a bool tensor, got {}", where,
                                         c == DType::kUndefined ? "a constant" : dtype_name(c)));
    }
    if (fn.cast_to != DType::kUndefined) {
      const DType from = dtype_of(step.args[0]);
      if (!is_float(from))
        return program_error(fmt::format("{} casts {}; only float tensors are cast", where,
                                         from == DType::kUndefined ? "a constant" : dtype_name(from)));
      dt[s] = fn.cast_to;
      continue;
    }
    DType d = DType::kUndefined;
    for (int i = fn.first_data; i < fn.first_data + fn.num_data; ++i) {
      const DType a = dtype_of(step.args[i]);
      if (a == DType::kUndefined) continue;
      if (!is_float(a))
        return program_error(fmt::format("{}: operand {} is {}, not a float", where, i, dtype_name(a)));
      if (d != DType::kUndefined && a != d)
        return program_error(fmt::format("{}: operands are {} and {}; they must have one dtype", where,
                                         dtype_name(d), dtype_name(a)));
      d = a;
    }
    if (d == DType::kUndefined)
      return program_error(
          fmt::format("{} reads only constants (constant chains fold before fusion)", where));
    for (int i = 0; i < fn.arity; ++i) {  // parameters: scalars of any float dtype
      if (i >= fn.first_data && i < fn.first_data + fn.num_data) continue;
      if (step.fn == PwFn::kWhere && i == 0) continue;
      const DType a = dtype_of(step.args[i]);
      if (a != DType::kUndefined && !is_float(a))
        return program_error(
            fmt::format("{}: parameter operand {} is {}, not a float", where, i, dtype_name(a)));
    }
    dt[s] = d;
  }
  return dt;
}

namespace {

Status infer_pointwise_chain(InferContext& ctx) {
  const ir::Node& node = ctx.node();
  if (!node.has_attr(kPwProgramAttr)) return ctx.error("attribute 'program' is missing");
  const std::string text = node.attr_string(kPwProgramAttr, "");
  auto prog = parse_pointwise_program(text);
  if (!prog.ok()) return ctx.error("program '{}': {}", text, prog.status().message());
  const size_t n_consts = node.attr_floats(kPwConstantsAttr).size();
  if (prog->num_constants > static_cast<int>(n_consts))
    return ctx.error("program reads c{} but attribute 'constants' has {} values", prog->num_constants - 1,
                     n_consts);
  if (prog->num_inputs != static_cast<int>(ctx.num_inputs()))
    return ctx.error("program reads {} inputs (x0..x{}) but the node has {}", prog->num_inputs,
                     prog->num_inputs - 1, ctx.num_inputs());
  if (prog->output_steps.size() != ctx.num_outputs())
    return ctx.error("program writes {} outputs but the node has {}", prog->output_steps.size(),
                     ctx.num_outputs());
  if (ctx.num_inputs() > static_cast<size_t>(kPwMaxInputs))
    return ctx.error("{} inputs; at most {} are supported", ctx.num_inputs(), kPwMaxInputs);
  std::vector<DType> in_dt;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) return ctx.error("input {} is omitted; every input of a chain is read", i);
    in_dt.push_back(ctx.input_dtype(i));
  }
  auto dts = pointwise_step_dtypes(*prog, in_dt);
  if (!dts.ok()) return ctx.error("program '{}': {}", text, dts.status().message());
  KILN_ASSIGN_OR_RETURN(Shape shape, broadcast_inputs(ctx));
  for (size_t k = 0; k < prog->output_steps.size(); ++k)
    ctx.set_output(k, (*dts)[prog->output_steps[k]], shape);
  return Status();
}

}  // namespace

void register_pointwise_chain(OpRegistry& r) {
  OpDef def{"PointwiseChain", 1, kPwMaxInputs, 1, -1, infer_pointwise_chain};
  def.domain = kKilnDomain;
  r.add(def);
}

}  // namespace kiln::ops
