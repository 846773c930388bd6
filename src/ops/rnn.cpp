// RNN, GRU and LSTM: one-layer recurrent ops with directions, layouts, sequence lengths and initial states.
#include "ops/rnn.h"

#include <cctype>

#include "ops/op_table.h"
#include "ops/shape_utils.h"

namespace kiln::ops {

int rnn_num_directions(const ir::Node& node) {
  const std::string d = node.attr_string("direction", "forward");
  if (d == "forward" || d == "reverse") return 1;
  if (d == "bidirectional") return 2;
  return 0;
}

namespace {

struct ActivationInfo {
  const char* name;
  RnnActivation::Kind kind;
  bool uses_alpha, uses_beta;
  float alpha, beta;  // ONNX defaults of the matching standalone ops
};

const ActivationInfo kActivations[] = {
    {"relu", RnnActivation::Kind::kRelu, false, false, 0.f, 0.f},
    {"tanh", RnnActivation::Kind::kTanh, false, false, 0.f, 0.f},
    {"sigmoid", RnnActivation::Kind::kSigmoid, false, false, 0.f, 0.f},
    {"affine", RnnActivation::Kind::kAffine, true, true, 1.f, 0.f},
    {"leakyrelu", RnnActivation::Kind::kLeakyRelu, true, false, 0.01f, 0.f},
    {"thresholdedrelu", RnnActivation::Kind::kThresholdedRelu, true, false, 1.f, 0.f},
    {"scaledtanh", RnnActivation::Kind::kScaledTanh, true, true, 1.f, 1.f},
    {"hardsigmoid", RnnActivation::Kind::kHardSigmoid, true, true, 0.2f, 0.5f},
    {"elu", RnnActivation::Kind::kElu, true, false, 1.f, 0.f},
    {"softsign", RnnActivation::Kind::kSoftsign, false, false, 0.f, 0.f},
    {"softplus", RnnActivation::Kind::kSoftplus, false, false, 0.f, 0.f},
};

const ActivationInfo* find_activation(std::string name) {
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& a : kActivations)
    if (name == a.name) return &a;
  return nullptr;
}

}  // namespace

std::string rnn_activations(const ir::Node& node, size_t per_direction, size_t num_directions,
                            std::vector<RnnActivation>& out) {
  static const std::vector<std::string> kDefaults = {"Sigmoid", "Tanh", "Tanh"};
  std::vector<std::string> names;
  if (const ir::Attribute* a = node.attr("activations")) names = a->strings;
  if (names.empty()) {
    // RNN's one function is Tanh; GRU's are (Sigmoid, Tanh); LSTM's (Sigmoid, Tanh, Tanh).
    std::vector<std::string> one = per_direction == 1 ? std::vector<std::string>{"Tanh"}
                                                      : std::vector<std::string>(kDefaults.begin(),
                                                                                 kDefaults.begin() + per_direction);
    for (size_t d = 0; d < num_directions; ++d) names.insert(names.end(), one.begin(), one.end());
  } else if (names.size() == per_direction && num_directions == 2) {
    std::vector<std::string> twice = names;
    names.insert(names.end(), twice.begin(), twice.end());
  }
  if (names.size() != per_direction * num_directions)
    return fmt::format("'activations' lists {} functions but {} direction(s) need {} each", names.size(),
                       num_directions, per_direction);
  const std::vector<float> alphas = node.attr_floats("activation_alpha");
  const std::vector<float> betas = node.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  out.clear();
  for (const auto& n : names) {
    const ActivationInfo* info = find_activation(n);
    if (!info) return fmt::format("activation '{}' is not an RNN activation function", n);
    RnnActivation act;
    act.kind = info->kind;
    act.alpha = info->alpha;
    act.beta = info->beta;
    if (info->uses_alpha && ai < alphas.size()) act.alpha = alphas[ai++];
    if (info->uses_beta && bi < betas.size()) act.beta = betas[bi++];
    out.push_back(act);
  }
  return "";
}

namespace {

// Checks one dim against what the op's other inputs imply (when both are known).
Status check_dim(const InferContext& ctx, size_t input, size_t axis, const Dim& want, const char* meaning) {
  const Shape& s = ctx.input_shape(input);
  if (!s.has_rank() || axis >= s.rank() || !s[axis].is_static() || !want.is_static()) return Status();
  if (s[axis].value() != want.value())
    return ctx.error("input {} ('{}') {} has {} = {} but {} is expected", input, ctx.node().inputs[input],
                     s.to_string(), meaning, s[axis].value(), want.value());
  return Status();
}

Status check_rank(const InferContext& ctx, size_t input, size_t rank, const char* layout) {
  const Shape& s = ctx.input_shape(input);
  if (s.has_rank() && s.rank() != rank)
    return ctx.error("input {} ('{}') must be {}, got {}", input, ctx.node().inputs[input], layout, s.to_string());
  return Status();
}

Dim dim_of(const Shape& s, size_t i) { return s.has_rank() && i < s.rank() ? s[i] : Dim::unknown(); }

// gates: 1 (RNN), 3 (GRU), 4 (LSTM). Inputs X, W, R, B, sequence_lens, initial_h[, initial_c, P].
Status infer_recurrent(InferContext& ctx, int64_t gates, size_t per_direction) {
  const DType dt = ctx.input_dtype(0);
  if (!is_float(dt)) return ctx.error("X must be float, got {}", dtype_name(dt));
  for (size_t i : {1, 2, 3, 5, 6, 7})
    if (ctx.has_input(i) && ctx.input_dtype(i) != dt)
      return ctx.error("input {} ('{}') is {} but X is {}", i, ctx.node().inputs[i], dtype_name(ctx.input_dtype(i)),
                       dtype_name(dt));
  if (ctx.has_input(4) && ctx.input_dtype(4) != DType::kI32)
    return ctx.error("sequence_lens must be i32, got {}", dtype_name(ctx.input_dtype(4)));
  const int dirs = rnn_num_directions(ctx.node());
  if (dirs == 0)
    return ctx.error("direction '{}' must be forward, reverse or bidirectional",
                     ctx.node().attr_string("direction", ""));
  const int64_t layout = ctx.opset() >= 14 ? ctx.node().attr_int("layout", 0) : 0;
  if (layout != 0 && layout != 1) return ctx.error("layout must be 0 or 1, got {}", layout);
  if (ctx.node().attr_int("input_forget", 0) != 0 && gates != 4)
    return ctx.error("input_forget is an LSTM attribute");
  std::vector<RnnActivation> acts;
  if (std::string err = rnn_activations(ctx.node(), per_direction, dirs, acts); !err.empty())
    return ctx.error("{}", err);

  KILN_RETURN_IF_ERROR(check_rank(ctx, 0, 3, layout ? "[batch, seq, input]" : "[seq, batch, input]"));
  KILN_RETURN_IF_ERROR(check_rank(ctx, 1, 3, "[num_directions, gates*hidden, input]"));
  KILN_RETURN_IF_ERROR(check_rank(ctx, 2, 3, "[num_directions, gates*hidden, hidden]"));
  const Shape& x = ctx.input_shape(0);
  const Dim seq = dim_of(x, layout ? 1 : 0), batch = dim_of(x, layout ? 0 : 1), input = dim_of(x, 2);
  Dim hidden = dim_of(ctx.input_shape(2), 2);
  if (ctx.node().has_attr("hidden_size")) {
    const int64_t h = ctx.node().attr_int("hidden_size", 0);
    if (h <= 0) return ctx.error("hidden_size must be positive, got {}", h);
    KILN_RETURN_IF_ERROR(check_dim(ctx, 2, 2, Dim(h), "hidden size"));
    hidden = Dim(h);
  }
  const Dim gh = hidden.is_static() ? Dim(gates * hidden.value()) : Dim::unknown();
  const Dim dir_dim(dirs);
  KILN_RETURN_IF_ERROR(check_dim(ctx, 1, 0, dir_dim, "num_directions"));
  KILN_RETURN_IF_ERROR(check_dim(ctx, 1, 1, gh, "gates*hidden_size"));
  KILN_RETURN_IF_ERROR(check_dim(ctx, 1, 2, input, "input_size"));
  KILN_RETURN_IF_ERROR(check_dim(ctx, 2, 0, dir_dim, "num_directions"));
  KILN_RETURN_IF_ERROR(check_dim(ctx, 2, 1, gh, "gates*hidden_size"));
  if (ctx.has_input(3)) {
    KILN_RETURN_IF_ERROR(check_rank(ctx, 3, 2, "[num_directions, 2*gates*hidden]"));
    KILN_RETURN_IF_ERROR(check_dim(ctx, 3, 0, dir_dim, "num_directions"));
    KILN_RETURN_IF_ERROR(
        check_dim(ctx, 3, 1, hidden.is_static() ? Dim(2 * gates * hidden.value()) : Dim::unknown(), "2*gates*hidden"));
  }
  if (ctx.has_input(4)) {
    KILN_RETURN_IF_ERROR(check_rank(ctx, 4, 1, "[batch]"));
    KILN_RETURN_IF_ERROR(check_dim(ctx, 4, 0, batch, "batch size"));
  }
  for (size_t i : {5, 6}) {
    if (!ctx.has_input(i) || (i == 6 && gates != 4)) continue;
    KILN_RETURN_IF_ERROR(check_rank(ctx, i, 3, layout ? "[batch, num_directions, hidden]" : "[num_directions, batch, hidden]"));
    KILN_RETURN_IF_ERROR(check_dim(ctx, i, layout ? 1 : 0, dir_dim, "num_directions"));
    KILN_RETURN_IF_ERROR(check_dim(ctx, i, layout ? 0 : 1, batch, "batch size"));
    KILN_RETURN_IF_ERROR(check_dim(ctx, i, 2, hidden, "hidden size"));
  }
  if (gates == 4 && ctx.has_input(7)) {
    KILN_RETURN_IF_ERROR(check_rank(ctx, 7, 2, "[num_directions, 3*hidden]"));
    KILN_RETURN_IF_ERROR(check_dim(ctx, 7, 0, dir_dim, "num_directions"));
    KILN_RETURN_IF_ERROR(check_dim(ctx, 7, 1, hidden.is_static() ? Dim(3 * hidden.value()) : Dim::unknown(), "3*hidden"));
  }
  if (layout == 0) {
    ctx.set_output(0, dt, Shape(std::vector<Dim>{seq, dir_dim, batch, hidden}));
    ctx.set_output(1, dt, Shape(std::vector<Dim>{dir_dim, batch, hidden}));
    ctx.set_output(2, dt, Shape(std::vector<Dim>{dir_dim, batch, hidden}));
  } else {
    ctx.set_output(0, dt, Shape(std::vector<Dim>{batch, seq, dir_dim, hidden}));
    ctx.set_output(1, dt, Shape(std::vector<Dim>{batch, dir_dim, hidden}));
    ctx.set_output(2, dt, Shape(std::vector<Dim>{batch, dir_dim, hidden}));
  }
  return Status();
}

Status infer_rnn(InferContext& ctx) { return infer_recurrent(ctx, 1, 1); }
Status infer_gru(InferContext& ctx) { return infer_recurrent(ctx, 3, 2); }
Status infer_lstm(InferContext& ctx) { return infer_recurrent(ctx, 4, 3); }

}  // namespace

void register_rnn(OpRegistry& r) {
  r.add({"RNN", 3, 6, 0, 2, infer_rnn});
  r.add({"GRU", 3, 6, 0, 2, infer_gru});
  r.add({"LSTM", 3, 8, 0, 3, infer_lstm});
}

}  // namespace kiln::ops
