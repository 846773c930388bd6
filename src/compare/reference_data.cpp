// Reference inputs and outputs a user saved elsewhere: NAME.npy files, an .npz, or an ONNX test data set.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <kiln_onnx/onnx.pb.h>

#include "kiln/tensor_io.h"
#include "kiln/compare.h"
#include "onnx/tensor_proto.h"
#include "util/file.h"
#include "util/no_throw.h"

namespace kiln::compare {

namespace fs = std::filesystem;

namespace {

// As kiln run --output-dir names its files.
std::string file_stem(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (c == '/' || c == '\\' || c == ':') c = '_';
  return s;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// input_0.pb, input_1.pb... (or output_N.pb) in index order, with the names their protos hold.
Result<std::vector<std::pair<std::string, Tensor>>> load_pb_series(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (int i = 0;; ++i) {
    const fs::path p = dir / fmt::format("{}_{}.pb", prefix, i);
    if (!fs::exists(p)) break;
    KILN_ASSIGN_OR_RETURN(std::string bytes, read_file(p.string()));
    kiln_onnx::TensorProto proto;
    if (bytes.empty() || !proto.ParseFromString(bytes))
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("'{}' is not a serialized ONNX TensorProto (.pb)", p.string()));
    KILN_ASSIGN_OR_RETURN(Tensor t, onnx::tensor_from_proto(proto, dir.string(), "'" + p.string() + "'"));
    out.emplace_back(proto.name(), std::move(t));
  }
  return out;
}

// Tensors named by the model where their names match; a test data set written without names goes by index.
void assign(const std::vector<std::pair<std::string, Tensor>>& series, const std::vector<std::string>& names,
            std::map<std::string, Tensor>& into) {
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& [name, t] = series[i];
    if (std::find(names.begin(), names.end(), name) != names.end()) into[name] = t;
    else if (name.empty() && i < names.size()) into[names[i]] = t;
  }
}

Result<ReferenceData> load_npz_reference(const std::string& path, const std::vector<std::string>& input_names,
                                         const std::vector<std::string>& output_names) {
  KILN_ASSIGN_OR_RETURN(auto arrays, io::load_npz(path));
  ReferenceData d;
  d.source = path;
  for (auto& [key, t] : arrays) {
    if (std::find(input_names.begin(), input_names.end(), key) != input_names.end()) d.inputs[key] = t;
    if (std::find(output_names.begin(), output_names.end(), key) != output_names.end()) d.outputs[key] = t;
  }
  return d;
}

Result<ReferenceData> load_dir_reference(const fs::path& dir, const std::vector<std::string>& input_names,
                                         const std::vector<std::string>& output_names) {
  ReferenceData d;
  d.source = dir.string();
  if (fs::exists(dir / "output_0.pb")) {
    KILN_ASSIGN_OR_RETURN(auto ins, load_pb_series(dir, "input"));
    KILN_ASSIGN_OR_RETURN(auto outs, load_pb_series(dir, "output"));
    assign(ins, input_names, d.inputs);
    assign(outs, output_names, d.outputs);
    d.source += " (ONNX test data set)";
    return d;
  }
  for (const auto& name : output_names) {
    const fs::path p = dir / (file_stem(name) + ".npy");
    if (!fs::exists(p)) continue;
    KILN_ASSIGN_OR_RETURN(d.outputs[name], io::load_npy(p.string()));
  }
  if (d.outputs.empty()) {
    // No NAME.npy: one .npz holding everything will do.
    std::vector<fs::path> npz;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (ends_with(e.path().filename().string(), ".npz")) npz.push_back(e.path());
    if (npz.size() == 1) return load_npz_reference(npz[0].string(), input_names, output_names);
    return d;
  }
  for (const auto& name : input_names) {
    const fs::path p = dir / (file_stem(name) + ".npy");
    if (!fs::exists(p)) continue;
    KILN_ASSIGN_OR_RETURN(d.inputs[name], io::load_npy(p.string()));
  }
  return d;
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::vector<std::string> q;
  for (const auto& n : names) q.push_back("'" + n + "'");
  return fmt::format("{}", fmt::join(q, ", "));
}

}  // namespace

Result<ReferenceData> load_reference_data(const std::string& path, const std::vector<std::string>& input_names,
                                          const std::vector<std::string>& output_names,
                                          const std::map<std::string, Tensor>& given) {
  return no_throw("compare::load_reference_data", [&]() -> Result<ReferenceData> {
    std::error_code ec;
    if (!fs::exists(path, ec))
      return Status(StatusCode::kNotFound, fmt::format("--reference '{}' does not exist", path));
    ReferenceData d;
    if (fs::is_directory(path, ec)) {
      KILN_ASSIGN_OR_RETURN(d, load_dir_reference(path, input_names, output_names));
    } else if (ends_with(path, ".npz")) {
      KILN_ASSIGN_OR_RETURN(d, load_npz_reference(path, input_names, output_names));
    } else {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("--reference '{}': give a directory (NAME.npy per output and input, or an ONNX "
                                "test data set with input_N.pb/output_N.pb) or a .npz file",
                                path));
    }
    if (d.outputs.empty())
      return Status(StatusCode::kNotFound,
                    fmt::format("--reference '{}' holds none of the model's outputs {} (as NAME.npy, in a .npz, or "
                                "as output_N.pb)",
                                path, quoted_list(output_names)));
    for (const auto& [name, t] : given) d.inputs[name] = t;
    for (const auto& name : input_names)
      if (!d.inputs.count(name))
        return Status(StatusCode::kNotFound,
                      fmt::format("--reference '{}' has no input '{}' that its outputs came from; put {}.npy beside "
                                  "them or pass --input {}=FILE",
                                  path, name, file_stem(name), name));
    return d;
  });
}

}  // namespace kiln::compare
