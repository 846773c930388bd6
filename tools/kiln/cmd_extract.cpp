// kiln extract MODEL.onnx --inputs a,b --outputs c,d -o part.onnx: cut the subgraph between named values into a
// model of its own, then check it on the CPU backend against the whole model.
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "kiln/extract.h"

namespace kiln::cli {

namespace {

struct ExtractOptions {
  std::string model, output, external_data = "auto";
  std::vector<std::string> inputs, outputs, shapes;
  bool check = true, json = false, list_values = false, strict_inputs = false;
  uint64_t seed = 0;
  double atol = 1e-5, rtol = 1e-4;
};

nlohmann::json desc_json(const TensorDesc& d) {
  return {{"name", d.name}, {"dtype", std::string(dtype_name(d.dtype))}, {"shape", d.shape.to_string()}};
}

std::string human_bytes(int64_t b) {
  if (b < 10 * 1024) return fmt::format("{} B", b);
  if (b < 10 * 1024 * 1024) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{:.1f} MiB", b / (1024.0 * 1024.0));
}

int list_values(const ExtractOptions& o) {
  auto values = list_model_values(o.model);
  if (!values.ok()) return fail(values.status());
  if (o.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& v : *values)
      j.push_back({{"name", v.name},
                   {"dtype", std::string(dtype_name(v.dtype))},
                   {"shape", v.shape.to_string()},
                   {"producer", v.producer},
                   {"op", v.op},
                   {"readers", v.readers}});
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{}: {} values (graph inputs, then node outputs in graph order)\n", o.model,
                           values->size());
  for (const auto& v : *values)
    std::cout << fmt::format("  {:<24} {:<22} {}\n", v.name, fmt::format("{}{}", dtype_name(v.dtype), v.shape.to_string()),
                             v.producer.empty() ? std::string("graph input")
                                                : fmt::format("{} ({})", v.producer, v.op));
  return 0;
}

int run_extract(const ExtractOptions& o) {
  if (o.list_values) return list_values(o);
  if (o.output.empty())
    return fail(Status(StatusCode::kInvalidArgument, "give the part's file with -o PART.onnx"));
  if (o.outputs.empty())
    return fail(Status(StatusCode::kInvalidArgument,
                       "give the values to cut at with --inputs a,b --outputs c,d (`kiln extract MODEL "
                       "--list-values` lists them)"));
  ExtractConfig cfg;
  cfg.inputs = o.inputs;
  cfg.outputs = o.outputs;
  cfg.strict_inputs = o.strict_inputs;
  if (o.external_data == "auto") cfg.external_data = ExternalDataChoice::kAuto;
  else if (o.external_data == "always") cfg.external_data = ExternalDataChoice::kAlways;
  else if (o.external_data == "never") cfg.external_data = ExternalDataChoice::kNever;
  else
    return fail(Status(StatusCode::kInvalidArgument,
                       "--external-data must be auto, always or never, got '" + o.external_data + "'"));
  ExtractCheckConfig check_cfg;
  check_cfg.seed = o.seed;
  check_cfg.atol = o.atol;
  check_cfg.rtol = o.rtol;
  if (o.check) {
    // Parsed before anything is written, so a typo in --shapes costs nothing.
    OptimizationProfile p;
    if (Status s = parse_shapes(o.shapes, p); !s.ok()) return fail(s);
    for (const auto& [name, r] : p.inputs) {
      if (r.min != r.max)
        return fail(Status(StatusCode::kInvalidArgument,
                           fmt::format("--shapes {}: the check runs one shape; give NAME:DIMS", name)));
      check_cfg.dims[name] = r.opt;
    }
  }
  auto rep = extract_model(o.model, o.output, cfg);
  if (!rep.ok()) return fail(rep.status());
  for (const auto& w : rep->warnings) std::cerr << "warning: " << w << "\n";

  nlohmann::json j;
  j["model"] = o.model;
  j["part"] = rep->part_path;
  j["data_file"] = rep->data_path.empty() ? nlohmann::json() : nlohmann::json(rep->data_path);
  j["external_tensors"] = rep->external_tensors;
  j["source_external_data"] = rep->source_external_data;
  for (const auto& d : rep->inputs) j["inputs"].push_back(desc_json(d));
  for (const auto& d : rep->outputs) j["outputs"].push_back(desc_json(d));
  j["nodes"] = rep->nodes;
  j["model_nodes"] = rep->model_nodes;
  j["initializers"] = rep->initializers;
  j["initializer_bytes"] = rep->initializer_bytes;
  j["warnings"] = rep->warnings;
  if (!o.json) {
    std::cout << fmt::format("extracted {} -> {}: {} of {} nodes, {} initializers ({}{})\n", o.model, rep->part_path,
                             rep->nodes.size(), rep->model_nodes, rep->initializers,
                             human_bytes(rep->initializer_bytes),
                             rep->data_path.empty()
                                 ? std::string(", inline")
                                 : fmt::format(", {} tensor(s) in {}", rep->external_tensors, rep->data_path));
    for (const char* k : {"inputs", "outputs"}) {
      std::cout << "  " << k << ":\n";
      for (const auto& d : j[k])
        std::cout << fmt::format("    {} {}{}\n", d["name"].get<std::string>(), d["dtype"].get<std::string>(),
                                 d["shape"].get<std::string>());
    }
    std::cout << fmt::format("  nodes: {}\n", fmt::join(rep->nodes, ", "));
  }
  int code = 0;
  if (o.check) {
    auto c = check_extracted(o.model, o.output, check_cfg);
    if (!c.ok())
      return fail(c.status().with_context(fmt::format(
          "checking the part (written to {}; --no-check skips the check)", rep->part_path)));
    std::string dims;
    for (const auto& [name, d] : c->model_input_dims) {
      j["check"]["model_input_dims"][name] = d;
      dims += fmt::format("{}{}={}", dims.empty() ? "" : " ", name, dims_to_string(d));
    }
    j["check"]["seed"] = o.seed;
    j["check"]["atol"] = o.atol;
    j["check"]["rtol"] = o.rtol;
    j["check"]["match"] = c->match;
    for (const auto& v : c->outputs)
      j["check"]["outputs"].push_back({{"name", v.name},
                                       {"shape", v.dims},
                                       {"max_abs_error", v.shape_mismatch ? nlohmann::json() : nlohmann::json(v.max_abs_error)},
                                       {"max_abs_reference", v.max_abs_reference},
                                       {"mismatches", v.mismatches},
                                       {"worst_index", v.worst_index},
                                       {"shape_mismatch", v.shape_mismatch}});
    if (!o.json) {
      std::cout << fmt::format("check on the CPU backend (model inputs {}, random, seed {}): {}\n", dims, o.seed,
                               c->match ? "the part matches the model" : "MISMATCH");
      for (const auto& v : c->outputs) {
        if (v.shape_mismatch) {
          std::cout << fmt::format("  {}: the part gives shape {}, the model another shape\n", v.name,
                                   dims_to_string(v.dims));
          continue;
        }
        std::cout << fmt::format("  {} {}: max abs error {:.3g} (largest |value| {:.3g}), {} element(s) over "
                                 "atol {:g} + rtol {:g} * |value|\n",
                                 v.name, dims_to_string(v.dims), v.max_abs_error, v.max_abs_reference, v.mismatches,
                                 o.atol, o.rtol);
      }
    }
    if (!c->match) {
      code = 1;
      std::cerr << "error: the part's outputs differ from the model's tensors at those names (see above); the "
                   "part is written, but do not trust it\n";
    }
  }
  if (o.json) std::cout << j.dump(2) << "\n";
  return code;
}

}  // namespace

void add_extract_command(CLI::App& app) {
  auto o = std::make_shared<ExtractOptions>();
  auto* cmd = app.add_subcommand(
      "extract",
      "Cut the subgraph between named values into an ONNX model of its own, and check it against the whole model");
  cmd->add_option("model", o->model, "ONNX model (.onnx)")->required();
  cmd->add_option("--inputs", o->inputs,
                  "Values that become the part's inputs, comma-separated (e.g. --inputs r1,mask)")
      ->delimiter(',');
  cmd->add_option("--outputs", o->outputs,
                  "Values that become the part's outputs, comma-separated (e.g. --outputs logits)")
      ->delimiter(',');
  cmd->add_option("-o,--output", o->output, "Where to write the part (PART.onnx)");
  cmd->add_flag("--check,!--no-check", o->check,
                "Run the part and the whole model on the CPU backend with the same random model inputs and compare "
                "the part's outputs with the model's tensors at those names (default on; exit 1 on mismatch)");
  cmd->add_option("--shapes", o->shapes,
                  "For the check: the whole model's input dims NAME:DIMS (e.g. image:2x3x32x32); other dynamic "
                  "dims take 1");
  cmd->add_option("--seed", o->seed, "Seed of the check's random inputs (default 0)");
  cmd->add_option("--atol", o->atol, "Check tolerance: |part - model| <= atol + rtol * |model| (default 1e-5)");
  cmd->add_option("--rtol", o->rtol, "Check tolerance, relative part (default 1e-4)");
  cmd->add_option("--external-data", o->external_data,
                  "Where the part's weights go: auto (external data beside the part when the model kept its weights "
                  "external or they pass 1900 MiB, else inline), always (tensors of 1 KiB or more to PART.onnx.data), "
                  "never (all inline)");
  cmd->add_flag("--strict-inputs", o->strict_inputs,
                "An --inputs value that no needed node reads is an error (default: a warning)");
  cmd->add_flag("--list-values", o->list_values,
                "List the model's values (graph inputs and node outputs, with dtype, shape and producer): the names "
                "a cut can be made at");
  cmd->add_flag("--json", o->json, "Print the report as JSON");
  cmd->callback([o] { std::exit(run_extract(*o)); });
}

}  // namespace kiln::cli
