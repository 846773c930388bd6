// Charts for kiln's self-contained HTML reports (kiln bench --html, kiln compare --html): inline SVG drawn by
// kiln itself, so a page opens anywhere with no network, no scripts and no plotting library.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::cli {

// Counts of values in equal-width bins from lo to hi (the last bin includes hi).
struct Histogram {
  double lo = 0, hi = 0;
  std::vector<int64_t> counts;
  double bin_width() const { return counts.empty() ? 0.0 : (hi - lo) / static_cast<double>(counts.size()); }
};
// `bins` bins over min..max of the finite values (one bin when they are all equal; none for no values).
Histogram histogram_of(const std::vector<double>& values, int bins);

// A vertical line drawn over a histogram at `value` (a percentile, say), labelled.
struct Marker {
  std::string label;
  double value = 0;
};
// Bars of the histogram in `fill`, an x axis in `unit`, and the markers as dashed lines.
std::string histogram_svg(const Histogram& h, const std::string& fill, const std::vector<Marker>& markers,
                          const std::string& unit);

struct Bar {
  std::string label;  // left of the bar
  double value = 0;   // +inf draws a full bar labelled "inf"; NaN an empty one labelled "nan"
  std::string fill;   // "#rrggbb"
  std::string note;   // right of the value ("12.3 %", "FAIL")
  bool outline = false;  // a dark frame: the row to look at (the first divergence, say)
};
struct BarChartStyle {
  std::string unit;           // after each value
  bool log_scale = false;     // bars by log10(value / log_floor); values at or under the floor get none
  double log_floor = 1e-3;
  std::optional<double> reference;  // a vertical line at this value (a tolerance), labelled reference_label
  std::string reference_label;
  double width = 860;         // of the whole chart, labels included
};
// One horizontal bar per entry, top to bottom in the given order.
std::string bar_chart_svg(const std::vector<Bar>& bars, const BarChartStyle& style);

// HTML text escaping (& < > " '); names from a model may hold anything.
std::string html_escape(const std::string& s);
// A whole page: title, inline style sheet, and `body` (HTML) as is. No scripts, no external references.
std::string html_page(const std::string& title, const std::string& body);
// A table; cells are escaped text. `numeric_from`: columns from this index on are right-aligned.
std::string html_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       size_t numeric_from = 1);

}  // namespace kiln::cli
