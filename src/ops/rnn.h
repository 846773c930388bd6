// RNN, GRU and LSTM attributes shared by inference and the CPU kernel: directions and activation functions.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ops {

struct RnnActivation {
  enum class Kind { kRelu, kTanh, kSigmoid, kAffine, kLeakyRelu, kThresholdedRelu, kScaledTanh, kHardSigmoid, kElu,
                    kSoftsign, kSoftplus };
  Kind kind = Kind::kTanh;
  double alpha = 0, beta = 0;

  double operator()(double x) const {
    switch (kind) {
      case Kind::kRelu: return x > 0 ? x : 0.0;
      case Kind::kTanh: return std::tanh(x);
      case Kind::kSigmoid: return 1.0 / (1.0 + std::exp(-x));
      case Kind::kAffine: return alpha * x + beta;
      case Kind::kLeakyRelu: return x >= 0 ? x : alpha * x;
      case Kind::kThresholdedRelu: return x >= alpha ? x : 0.0;
      case Kind::kScaledTanh: return alpha * std::tanh(beta * x);
      case Kind::kHardSigmoid: return std::min(std::max(alpha * x + beta, 0.0), 1.0);
      case Kind::kElu: return x >= 0 ? x : alpha * (std::exp(x) - 1.0);
      case Kind::kSoftsign: return x / (1.0 + std::fabs(x));
      case Kind::kSoftplus: return x > 30 ? x : std::log1p(std::exp(x));
    }
    return x;
  }
};

// 1 for forward/reverse, 2 for bidirectional, 0 for an unknown direction string.
int rnn_num_directions(const ir::Node& node);

// The activations for each direction in order (per_direction of them per direction, e.g. f, g, h for LSTM),
// from the 'activations' attribute or the op's defaults. activation_alpha/beta are consumed in order by the
// functions that take them. Returns an empty string, or what is wrong.
std::string rnn_activations(const ir::Node& node, size_t per_direction, size_t num_directions,
                            std::vector<RnnActivation>& out);

}  // namespace kiln::ops
