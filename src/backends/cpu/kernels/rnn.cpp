// RNN, GRU and LSTM: one sequence (batch entry) and direction at a time, in double, with plain dot products.
#include <limits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernel_list.h"
#include "ops/rnn.h"

namespace kiln::cpu {

namespace {

enum class Cell { kRnn, kGru, kLstm };

std::vector<double> read_f64(const KernelContext& ctx, size_t i, size_t zeros_if_absent) {
  if (!ctx.has_input(i)) return std::vector<double>(zeros_if_absent, 0.0);
  const Tensor& t = ctx.input(i);
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t k = 0; k < t.numel(); ++k) v[k] = t.get_as_double(k);
  return v;
}

Status run_recurrent(KernelContext& ctx, Cell cell) {
  const ir::Node& node = ctx.node();
  const int64_t gates = cell == Cell::kRnn ? 1 : (cell == Cell::kGru ? 3 : 4);
  const size_t per_dir = cell == Cell::kRnn ? 1 : (cell == Cell::kGru ? 2 : 3);
  const bool batch_first = ctx.opset() >= 14 && node.attr_int("layout", 0) == 1;
  const Tensor& xt = ctx.input(0);
  const int64_t seq = xt.dim(batch_first ? 1 : 0), batch = xt.dim(batch_first ? 0 : 1), input = xt.dim(2);
  const int64_t dirs = ops::rnn_num_directions(node);
  const int64_t hid = node.attr_int("hidden_size", ctx.input(2).dim(2));
  const bool reverse_only = node.attr_string("direction", "forward") == "reverse";
  const double clip = node.has_attr("clip") ? node.attr_float("clip", 0.f) : std::numeric_limits<double>::infinity();
  const bool linear_before_reset = node.attr_int("linear_before_reset", 0) != 0;
  const bool input_forget = node.attr_int("input_forget", 0) != 0;
  std::vector<ops::RnnActivation> acts;
  if (std::string err = ops::rnn_activations(node, per_dir, dirs, acts); !err.empty()) return ctx.error("{}", err);

  const int64_t gh = gates * hid;
  const auto x = read_f64(ctx, 0, 0);
  const auto w = read_f64(ctx, 1, 0);
  const auto r = read_f64(ctx, 2, 0);
  const auto bias = read_f64(ctx, 3, dirs * 2 * gh);
  const auto h0 = read_f64(ctx, 5, dirs * batch * hid);
  const auto c0 = cell == Cell::kLstm ? read_f64(ctx, 6, dirs * batch * hid) : std::vector<double>();
  const auto peep = cell == Cell::kLstm ? read_f64(ctx, 7, dirs * 3 * hid) : std::vector<double>();
  std::vector<int64_t> lens(batch, seq);
  if (ctx.has_input(4))
    for (int64_t b = 0; b < batch; ++b) {
      lens[b] = ctx.input(4).get_as_int(b);
      if (lens[b] < 0 || lens[b] > seq)
        return ctx.error("sequence_lens[{}] = {} is outside [0, {}]", b, lens[b], seq);
    }

  // Index helpers for the two layouts; the state index is shared by initial_h/c and Y_h/Y_c.
  auto x_at = [&](int64_t t, int64_t b) { return (batch_first ? b * seq + t : t * batch + b) * input; };
  auto state_at = [&](int64_t d, int64_t b) { return (batch_first ? b * dirs + d : d * batch + b) * hid; };
  auto y_at = [&](int64_t t, int64_t d, int64_t b) {
    return (batch_first ? (b * seq + t) * dirs + d : (t * dirs + d) * batch + b) * hid;
  };
  std::vector<double> y(static_cast<size_t>(seq * dirs * batch * hid), 0.0);
  std::vector<double> yh(static_cast<size_t>(dirs * batch * hid), 0.0), yc(yh.size(), 0.0);
  auto clipped = [clip](double v) { return std::max(-clip, std::min(clip, v)); };

  std::vector<double> xw(gh), hr(gh), h(hid), c(hid), h_new(hid), rg(hid);
  for (int64_t d = 0; d < dirs; ++d) {
    const bool backward = reverse_only || d == 1;
    const double* wd = w.data() + d * gh * input;
    const double* rd = r.data() + d * gh * hid;
    const double* wb = bias.data() + d * 2 * gh;
    const double* rb = wb + gh;
    const ops::RnnActivation* f = &acts[d * per_dir];
    for (int64_t b = 0; b < batch; ++b) {
      std::copy(h0.begin() + state_at(d, b), h0.begin() + state_at(d, b) + hid, h.begin());
      if (cell == Cell::kLstm) std::copy(c0.begin() + state_at(d, b), c0.begin() + state_at(d, b) + hid, c.begin());
      for (int64_t s = 0; s < lens[b]; ++s) {
        const int64_t t = backward ? lens[b] - 1 - s : s;
        const double* xv = x.data() + x_at(t, b);
        for (int64_t g = 0; g < gh; ++g) {
          double a = wb[g], e = rb[g];
          for (int64_t k = 0; k < input; ++k) a += xv[k] * wd[g * input + k];
          for (int64_t k = 0; k < hid; ++k) e += h[k] * rd[g * hid + k];
          xw[g] = a;
          hr[g] = e;
        }
        if (cell == Cell::kRnn) {
          for (int64_t j = 0; j < hid; ++j) h_new[j] = f[0](clipped(xw[j] + hr[j]));
        } else if (cell == Cell::kGru) {
          // Gates z, r, h. Without linear_before_reset the reset gate scales h before the recurrence.
          for (int64_t j = 0; j < hid; ++j) rg[j] = f[0](clipped(xw[hid + j] + hr[hid + j]));
          for (int64_t j = 0; j < hid; ++j) {
            const double z = f[0](clipped(xw[j] + hr[j]));
            double rec;
            if (linear_before_reset) {
              rec = rg[j] * hr[2 * hid + j];
            } else {
              rec = rb[2 * hid + j];
              for (int64_t k = 0; k < hid; ++k) rec += rg[k] * h[k] * rd[(2 * hid + j) * hid + k];
            }
            const double cand = f[1](clipped(xw[2 * hid + j] + rec));
            h_new[j] = (1.0 - z) * cand + z * h[j];
          }
        } else {
          // Gates i, o, f, c; peepholes P = [Pi, Po, Pf].
          const double* p = peep.data() + d * 3 * hid;
          for (int64_t j = 0; j < hid; ++j) {
            const double ig = f[0](clipped(xw[j] + hr[j] + p[j] * c[j]));
            const double fg = input_forget ? 1.0 - ig : f[0](clipped(xw[2 * hid + j] + hr[2 * hid + j] + p[2 * hid + j] * c[j]));
            const double cand = f[1](clipped(xw[3 * hid + j] + hr[3 * hid + j]));
            c[j] = fg * c[j] + ig * cand;
            const double og = f[0](clipped(xw[hid + j] + hr[hid + j] + p[hid + j] * c[j]));
            h_new[j] = og * f[2](c[j]);
          }
        }
        h = h_new;
        std::copy(h.begin(), h.end(), y.begin() + y_at(t, d, b));
      }
      std::copy(h.begin(), h.end(), yh.begin() + state_at(d, b));
      if (cell == Cell::kLstm) std::copy(c.begin(), c.end(), yc.begin() + state_at(d, b));
    }
  }

  const std::vector<double>* results[] = {&y, &yh, &yc};
  for (size_t o = 0; o < ctx.num_outputs() && o < 3; ++o) {
    if (!ctx.has_output(o)) continue;
    Tensor& out = ctx.output(o);
    const std::vector<double>& src = *results[o];
    bool ok = dispatch_float(out.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      for (size_t i = 0; i < src.size(); ++i) out.data<T>()[i] = static_cast<T>(src[i]);
    });
    if (!ok) return ctx.unsupported("dtype {} is not supported", dtype_name(out.dtype()));
  }
  return Status();
}

Status run_rnn(KernelContext& ctx) { return run_recurrent(ctx, Cell::kRnn); }
Status run_gru(KernelContext& ctx) { return run_recurrent(ctx, Cell::kGru); }
Status run_lstm(KernelContext& ctx) { return run_recurrent(ctx, Cell::kLstm); }

}  // namespace

void register_cpu_rnn(KernelTable& t) {
  t.add({"RNN", run_rnn});
  t.add({"GRU", run_gru});
  t.add({"LSTM", run_lstm});
}

}  // namespace kiln::cpu
