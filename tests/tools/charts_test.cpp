// The HTML reports' pieces: histogram bins, bar lengths (linear, log, inf, NaN), the reference line, escaping.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <regex>

#include "charts.h"

namespace kiln::cli {
namespace {

// The width attributes of the <rect>s of an SVG, in order.
std::vector<double> rect_widths(const std::string& svg) {
  std::vector<double> w;
  static const std::regex rect("<rect [^>]*width=\"([0-9.]+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), rect); it != std::sregex_iterator(); ++it)
    w.push_back(std::stod((*it)[1]));
  return w;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(Charts, HistogramBins) {
  Histogram h = histogram_of({1, 2, 2, 3, 4, 5}, 4);
  EXPECT_EQ(h.lo, 1);
  EXPECT_EQ(h.hi, 5);
  EXPECT_EQ(h.counts, (std::vector<int64_t>{1, 2, 1, 2}));  // the maximum lands in the last bin
  EXPECT_DOUBLE_EQ(h.bin_width(), 1.0);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Histogram same = histogram_of({7, 7, nan, 7}, 10);  // all equal: one bin; NaN left out
  EXPECT_EQ(same.counts, (std::vector<int64_t>{3}));
  EXPECT_TRUE(histogram_of({}, 8).counts.empty());
  EXPECT_TRUE(histogram_of({1, 2}, 0).counts.empty());
}

TEST(Charts, HistogramSvgDrawsNonEmptyBinsAndMarkers) {
  Histogram h = histogram_of({1, 1, 1, 1, 4}, 3);  // counts 4, 0, 1
  const std::string svg = histogram_svg(h, "#123456", {{"median", 1}, {"p99", 4}}, " ms");
  EXPECT_EQ(rect_widths(svg).size(), 2u);  // the empty bin draws nothing
  EXPECT_EQ(count(svg, "class=\"marker\""), 2u);
  EXPECT_NE(svg.find("fill=\"#123456\""), std::string::npos);
  EXPECT_NE(svg.find("p99 4"), std::string::npos);
  EXPECT_NE(histogram_svg({}, "#000000", {}, "").find("no values"), std::string::npos);
  // One value only: still one visible bar.
  EXPECT_EQ(rect_widths(histogram_svg(histogram_of({3}, 5), "#000000", {}, "")).size(), 1u);
}

TEST(Charts, LinearBarsAreProportional) {
  BarChartStyle style;
  const std::string svg = bar_chart_svg({{"a", 4, "#111111"}, {"b", 2, "#222222"}, {"c", 1, "#333333"}}, style);
  auto w = rect_widths(svg);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_NEAR(w[1] / w[0], 0.5, 0.01);
  EXPECT_NEAR(w[2] / w[0], 0.25, 0.01);
  EXPECT_EQ(count(svg, "class=\"bar\""), 3u);
}

TEST(Charts, LogBarsInfNanAndReference) {
  BarChartStyle style;
  style.log_scale = true;
  style.log_floor = 1e-3;
  style.reference = 1.0;
  style.reference_label = "tolerance";
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const std::string svg = bar_chart_svg(
      {{"zero", 0, "#111111"}, {"at", 1, "#222222"}, {"far", 10, "#333333"}, {"inf", inf, "#444444"},
       {"nan", nan, "#555555"}},
      style);
  auto w = rect_widths(svg);
  ASSERT_EQ(w.size(), 4u);  // NaN has no bar
  EXPECT_EQ(w[0], 3.0);     // a zero still shows a stub of its colour
  // Scale: floor 1e-3 to 100 x the reference (5 decades): 1 is 3/5 of the way, 10 is 4/5, inf the whole.
  EXPECT_NEAR(w[1] / w[3], 0.6, 0.01);
  EXPECT_NEAR(w[2] / w[3], 0.8, 0.01);
  EXPECT_NE(svg.find(">inf"), std::string::npos);
  EXPECT_NE(svg.find(">nan"), std::string::npos);
  // The reference line sits at the end of the "at 1" bar.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex("class=\"reference\" x1=\"([0-9.]+)\"")));
  std::smatch r;
  ASSERT_TRUE(std::regex_search(svg, r, std::regex("<rect x=\"([0-9.]+)\"")));
  EXPECT_NEAR(std::stod(m[1]), std::stod(r[1]) + w[1], 0.2);
}

TEST(Charts, OutlineAndLongLabels) {
  BarChartStyle style;
  const std::string long_label(200, 'x');
  const std::string svg = bar_chart_svg({{long_label, 1, "#999999", "", true}}, style);
  EXPECT_NE(svg.find("stroke=\"#111111\""), std::string::npos);
  EXPECT_NE(svg.find(long_label), std::string::npos);                   // whole in the tooltip and data-label
  EXPECT_NE(svg.find(std::string(47, 'x') + "\xE2\x80\xA6"), std::string::npos);  // cut on the picture
}

TEST(Charts, EscapingAndPage) {
  EXPECT_EQ(html_escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  const std::string svg = bar_chart_svg({{"<script>alert(1)</script>", 1, "#111111"}}, {});
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  const std::string page = html_page("a <b>", "<p>body</p>");
  EXPECT_NE(page.find("<title>a &lt;b&gt;</title>"), std::string::npos);
  EXPECT_NE(page.find("<p>body</p>"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("src="), std::string::npos);
  const std::string table = html_table({"name", "ms"}, {{"<x>", "1.5"}});
  EXPECT_NE(table.find("<td>&lt;x&gt;</td><td class=\"num\">1.5</td>"), std::string::npos);
}

}  // namespace
}  // namespace kiln::cli
