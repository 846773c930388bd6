// kiln compare --html FILE: the comparison as one self-contained page (no scripts, no network): per shape, the
// error of every output and (--layerwise) every layer in the model's order as bars of the largest error over
// tolerance of any element, on a log scale with the tolerance marked, the first diverging layer framed.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kiln::cli {

// Fills the page's bars use; tests look for them in a browser's screenshot.
inline constexpr const char* kWithinToleranceFill = "#59a14f";
inline constexpr const char* kOverToleranceFill = "#e15759";

// `report`: kiln compare's JSON report; `bisect_lines`: --precision-bisect's text (may be empty).
std::string compare_html(const nlohmann::json& report, const std::vector<std::string>& bisect_lines);

}  // namespace kiln::cli
