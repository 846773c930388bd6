// NonMaxSuppression: per batch and class, take boxes by descending score and drop those overlapping a kept box.
#include <algorithm>
#include <numeric>

#include "backends/cpu/kernel_list.h"

namespace kiln::cpu {

namespace {

struct Box {
  double y1, x1, y2, x2;
  double area() const { return (y2 - y1) * (x2 - x1); }
};

// center_point_box=1 gives [x_center, y_center, width, height]; otherwise any two diagonal corners [y1, x1, y2, x2].
Box read_box(const Tensor& t, int64_t offset, bool center) {
  const double a = t.get_as_double(offset), b = t.get_as_double(offset + 1);
  const double c = t.get_as_double(offset + 2), d = t.get_as_double(offset + 3);
  if (center) return {b - d / 2, a - c / 2, b + d / 2, a + c / 2};
  return {std::min(a, c), std::min(b, d), std::max(a, c), std::max(b, d)};
}

double iou(const Box& p, const Box& q) {
  const double ap = p.area(), aq = q.area();
  if (ap <= 0 || aq <= 0) return 0.0;
  const double ih = std::max(0.0, std::min(p.y2, q.y2) - std::max(p.y1, q.y1));
  const double iw = std::max(0.0, std::min(p.x2, q.x2) - std::max(p.x1, q.x1));
  const double inter = ih * iw;
  const double uni = ap + aq - inter;
  return uni <= 0 ? 0.0 : inter / uni;
}

Status run_nms(KernelContext& ctx) {
  const Tensor& boxes = ctx.input(0);
  const Tensor& scores = ctx.input(1);
  const bool center = ctx.node().attr_int("center_point_box", 0) == 1;
  const int64_t max_out = ctx.has_input(2) && ctx.input(2).numel() > 0 ? ctx.input(2).get_as_int(0) : 0;
  const double iou_threshold = ctx.has_input(3) && ctx.input(3).numel() > 0 ? ctx.input(3).get_as_double(0) : 0.0;
  const bool filter_scores = ctx.has_input(4) && ctx.input(4).numel() > 0;
  const double score_threshold = filter_scores ? ctx.input(4).get_as_double(0) : 0.0;
  const int64_t batches = boxes.dim(0), n = boxes.dim(1), classes = scores.dim(1);
  if (scores.dim(0) != batches || scores.dim(2) != n)
    return ctx.error("boxes {} and scores {} do not match", dims_to_string(boxes.dims()),
                     dims_to_string(scores.dims()));

  std::vector<int64_t> selected;  // triples (batch, class, box)
  std::vector<Box> all(static_cast<size_t>(n));
  std::vector<int64_t> kept;
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t i = 0; i < n; ++i) all[i] = read_box(boxes, (b * n + i) * 4, center);
    for (int64_t c = 0; c < classes && max_out > 0; ++c) {
      const int64_t base = (b * classes + c) * n;
      std::vector<int64_t> cand;
      for (int64_t i = 0; i < n; ++i)
        if (!filter_scores || scores.get_as_double(base + i) > score_threshold) cand.push_back(i);
      // Stable so equal scores keep the lower box index first.
      std::stable_sort(cand.begin(), cand.end(), [&](int64_t p, int64_t q) {
        return scores.get_as_double(base + p) > scores.get_as_double(base + q);
      });
      kept.clear();
      for (int64_t i : cand) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        bool suppressed = false;
        for (int64_t k : kept)
          if (iou(all[i], all[k]) > iou_threshold) {
            suppressed = true;
            break;
          }
        if (suppressed) continue;
        kept.push_back(i);
        selected.insert(selected.end(), {b, c, i});
      }
    }
  }
  Tensor& out = ctx.allocate_output(0, DType::kI64, {static_cast<int64_t>(selected.size() / 3), 3});
  std::copy(selected.begin(), selected.end(), out.data<int64_t>());
  return Status();
}

}  // namespace

void register_cpu_non_max_suppression(KernelTable& t) { t.add({"NonMaxSuppression", run_nms}); }

}  // namespace kiln::cpu
