// kiln bench --html (see bench_html.h).
#include "bench_html.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

#include "charts.h"

namespace kiln::cli {

namespace {

using nlohmann::json;

// Layers drawn as bars; a profile of a large model lists the rest in the per-op table only.
constexpr size_t kMaxLayerBars = 60;

std::string ms(const json& v) { return v.is_number() ? fmt::format("{:.4f}", v.get<double>()) : "-"; }

std::string shapes_text(const json& shapes) {
  std::string s;
  for (const auto& [name, dims] : shapes.items()) {
    std::string d;
    for (const auto& x : dims) d += (d.empty() ? "" : ",") + std::to_string(x.get<int64_t>());
    s += fmt::format("{}{} [{}]", s.empty() ? "" : ", ", name, d);
  }
  return s.empty() ? "(no inputs)" : s;
}

std::string point_label(const json& r) {
  const json& p = r.value("sweep_point", json());
  if (p.is_null()) return shapes_text(r["shapes"]);
  if (p["profile"].is_null()) return "static shapes";
  return fmt::format("profile {} {}", p["profile"].get<int>(), p["point"].get<std::string>());
}

std::string percentiles(const json& r) {
  const json& l = r["latency_ms"];
  std::vector<std::vector<std::string>> rows = {
      {"latency (ms)", ms(l["median"]), ms(l["mean"]), ms(l["p90"]), ms(l["p95"]), ms(l["p99"]), ms(l["min"]),
       ms(l["max"]), fmt::format("{:.2f} %", 100 * l["cv"].get<double>())}};
  if (r["engine"]["backend"] == "cuda") {
    for (const char* key : {"host_ms", "enqueue_ms"}) {
      const json& h = r[key];
      if (h.is_null()) continue;
      rows.push_back({key == std::string("host_ms") ? "host view: enqueue + wait (ms)" : "enqueue alone (ms)",
                      ms(h["median"]), ms(h["mean"]), ms(h["p90"]), ms(h["p95"]), ms(h["p99"]), ms(h["min"]),
                      ms(h["max"]), fmt::format("{:.2f} %", 100 * h["cv"].get<double>())});
    }
  }
  return html_table({"", "median", "mean", "p90", "p95", "p99", "min", "max", "cv"}, rows);
}

std::string histogram(const json& r) {
  const json& h = r["latency_histogram"];
  Histogram hist;
  hist.lo = h["lo_ms"].get<double>();
  hist.hi = h["hi_ms"].get<double>();
  hist.counts = h["counts"].get<std::vector<int64_t>>();
  const json& l = r["latency_ms"];
  return histogram_svg(hist, kHistogramFill,
                            {{"median", l["median"].get<double>()},
                             {"p95", l["p95"].get<double>()},
                             {"p99", l["p99"].get<double>()}},
                            " ms");
}

std::string warnings(const json& r) {
  std::string out;
  for (const auto& w : r["warnings"])
    out += fmt::format("<p class=\"warning\">warning: {} &mdash; {}</p>\n",
                       html_escape(w["message"].get<std::string>()), html_escape(w["advice"].get<std::string>()));
  return out;
}

std::string run_summary(const json& r) {
  const json& t = r["throughput"];
  std::string s = fmt::format(
      "<p>{} timed runs ({} warm-up) on {} stream(s), {} timer, shapes {}. Throughput {:.1f} inferences/s, "
      "{:.1f} samples/s at batch {} ({}).</p>\n",
      r["iterations"].get<size_t>(), r["warmup"].get<int>(), r["streams"].get<size_t>(),
      html_escape(r["timer"].get<std::string>()), html_escape(shapes_text(r["shapes"])),
      t["inferences_per_s"].get<double>(), t["samples_per_s"].get<double>(), r["batch"].get<int64_t>(),
      t["basis"] == "wall_clock" ? "aggregate over the common window" : "1 / mean latency");
  const json& io = r["io"];
  if (io["copies_timed"].get<bool>())
    s += fmt::format("<p>Host I/O (--io host), medians: H2D {} ms + compute {} ms + D2H {} ms; the latency "
                     "includes the copies.</p>\n",
                     ms(io["h2d_ms"]["median"]), ms(io["compute_ms"]["median"]), ms(io["d2h_ms"]["median"]));
  return s;
}

std::string profile_section(const json& p) {
  const json& layers = p["layers"];
  std::vector<Bar> bars;
  for (size_t i = 0; i < layers.size() && i < kMaxLayerBars; ++i) {
    const json& l = layers[i];
    const std::string placement = l["placement"].get<std::string>();
    std::string note = fmt::format("{:.1f} %", 100 * l["share"].get<double>());
    if (placement == "cpu-fallback") note += "  CPU fallback";
    bars.push_back({fmt::format("{} ({})", l["name"].get<std::string>(), l["op"].get<std::string>()),
                    l["ms"].get<double>(), placement == "cpu-fallback" ? kFallbackLayerFill : kLayerFill, note});
  }
  std::string out = fmt::format(
      "<h2>Per-layer time</h2>\n<p>Median of {} run(s) node by node (no CUDA graph), slowest first; layer sum "
      "{:.4f} ms{}.</p>\n",
      p["runs"].get<int>(), p["total_ms"].get<double>(),
      layers.size() > kMaxLayerBars ? fmt::format(", the slowest {} of {} layers drawn", kMaxLayerBars, layers.size())
                                    : "");
  BarChartStyle style;
  style.unit = " ms";
  out += "<div class=\"layers\">\n" + bar_chart_svg(bars, style) + "</div>\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& op : p["ops"])
    rows.push_back({op["op"].get<std::string>(), std::to_string(op["count"].get<int>()), ms(op["ms"]),
                    fmt::format("{:.1f} %", 100 * op["share"].get<double>())});
  const json& host = p["host_shape_math"];
  if (host["layers"].get<int>() > 0)
    rows.push_back({"host shape math (not in a CUDA graph replay)", std::to_string(host["layers"].get<int>()),
                    ms(host["ms"]), ""});
  return out + "<h2>Per op type</h2>\n" + html_table({"op", "layers", "ms", "share"}, rows);
}

std::string memory_and_execution(const json& r) {
  const json& x = r["execution"];
  const std::string load =
      fmt::format("{:.1f} ms (engine file {:.1f} + first context {:.1f})", r["load_ms"]["total"].get<double>(),
                  r["load_ms"]["engine_file"].get<double>(), r["load_ms"]["context"].get<double>());
  // A CPU engine has no device memory, graphs or read-backs to show.
  if (r["engine"]["backend"] != "cuda") return "<h2>Load</h2>\n" + html_table({"", ""}, {{"load", load}});
  const json& m = r["device_memory"];
  auto mib = [](const json& v) { return fmt::format("{:.2f} MiB", v.get<double>() / (1 << 20)); };
  std::vector<std::vector<std::string>> rows = {{"context (arena and scratch)", mib(m["context_bytes"])},
                                                {"I/O buffers", mib(m["io_bytes"])},
                                                {"weights", mib(m["weight_bytes"])},
                                                {"total", mib(m["total_bytes"])}};
  if (m.contains("process_delta_bytes"))
    rows.push_back({"whole process (cudaMemGetInfo)", mib(m["process_delta_bytes"])});
  std::string out = "<h2>Device memory</h2>\n" + html_table({"", ""}, rows);
  out += "<h2>Execution</h2>\n" +
         html_table({"", ""},
                         {{"CUDA graph", x["cuda_graph"].get<bool>() ? "yes: one launch per run"
                                                                     : "no: " + x["not_captured"].get<std::string>()},
                          {"GPU / host / CPU-fallback nodes",
                           fmt::format("{} / {} / {}", x["gpu_nodes"].get<int64_t>(), x["host_nodes"].get<int64_t>(),
                                       x["fallback_nodes"].get<int64_t>())},
                          {"read-backs per run", std::to_string(x["downloads"].get<int64_t>())},
                          {"load", load}});
  return out;
}

std::string sweep_section(const json& rows) {
  std::vector<Bar> bars;
  std::vector<std::vector<std::string>> table;
  for (const auto& r : rows) {
    const json& l = r["latency_ms"];
    bars.push_back({point_label(r), l["median"].get<double>(), kSweepFill,
                    fmt::format("p95 {:.4f}, p99 {:.4f}", l["p95"].get<double>(), l["p99"].get<double>())});
    table.push_back({point_label(r), shapes_text(r["shapes"]), ms(l["median"]), ms(l["p95"]), ms(l["p99"]),
                     fmt::format("{:.2f} %", 100 * l["cv"].get<double>()),
                     fmt::format("{:.1f}", r["throughput"]["inferences_per_s"].get<double>())});
  }
  BarChartStyle style;
  style.unit = " ms";
  return "<h2>Sweep across shapes: median latency</h2>\n<div class=\"sweep\">\n" + bar_chart_svg(bars, style) +
         "</div>\n" +
         html_table({"point", "shapes", "median ms", "p95", "p99", "cv", "inferences/s"}, table, 2);
}

std::string manifest_section(const json& first, const json& manifest) {
  const json& b = first["build"];
  const std::string gpu = b["gpu"].get<std::string>();
  std::string out = "<h2>Measured with</h2>\n";
  out += html_table({"", ""}, {{"kiln", b["kiln_version"].get<std::string>()},
                                    {"compiler", b["compiler"].get<std::string>()},
                                    {"GPU", gpu.empty() ? "none" : gpu + " (sm_" + b["sm"].get<std::string>() + ")"},
                                    {"CUDA runtime / driver",
                                     b["cuda_runtime"].get<std::string>() + " / " + b["cuda_driver"].get<std::string>()}});
  // One row per manifest field; nested ones (I/O, profiles, sections) as compact JSON.
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, value] : (manifest.is_object() ? manifest : first["engine"]).items())
    rows.push_back({key, value.is_string() ? value.get<std::string>() : value.dump()});
  return out + "<h2>Engine manifest</h2>\n<div class=\"manifest\">\n" + html_table({"field", "value"}, rows, 9) +
         "</div>\n";
}

std::string today() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

}  // namespace

std::string bench_html(const json& results, const json& manifest) {
  const bool sweep = results.is_array();
  if (sweep && results.empty()) return html_page("kiln bench", "<p>No configuration was measured.</p>\n");
  const json& first = sweep ? results.at(0) : results;
  const json& e = first["engine"];
  std::string body = fmt::format("<h1>kiln bench: {}</h1>\n", html_escape(e["path"].get<std::string>()));
  const std::string gpu = first["build"]["gpu"].get<std::string>();
  body += fmt::format(
      "<p class=\"meta\">{} backend, {}, {} nodes, {:.1f} MB weights{}; kiln {}; {}</p>\n",
      html_escape(e["backend"].get<std::string>()), html_escape(e["precision"].get<std::string>()),
      e["nodes"].get<size_t>(), e["weight_bytes"].get<double>() / 1e6,
      gpu.empty() || e["backend"] != "cuda" ? "" : ", on " + html_escape(gpu),
      html_escape(first["build"]["kiln_version"].get<std::string>()), today());
  if (sweep) {
    body += sweep_section(results);
    for (const auto& r : results) {
      body += fmt::format("<h2>{}: {}</h2>\n", html_escape(point_label(r)), html_escape(shapes_text(r["shapes"])));
      body += warnings(r) + run_summary(r) + percentiles(r) + histogram(r);
      if (r.contains("profile")) body += profile_section(r["profile"]);
    }
  } else {
    body += "<h2>Latency</h2>\n" + warnings(first) + run_summary(first) + percentiles(first) + histogram(first);
    if (first.contains("profile")) body += profile_section(first["profile"]);
    body += memory_and_execution(first);
  }
  body += manifest_section(first, manifest);
  return html_page("kiln bench: " + e["path"].get<std::string>(), body);
}

}  // namespace kiln::cli
