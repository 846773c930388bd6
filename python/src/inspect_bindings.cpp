// kiln.inspect: kiln::inspect_json for Python (python/kiln/__init__.py parses the document).
#include "bindings.h"

#include "kiln/inspect.h"

namespace kiln::python {

void bind_inspect(py::module_& m) {
  m.def(
      "inspect_json",
      [](const std::string& path, int member, bool placement, bool layers, const ProfileSpecs& shapes,
         const std::string& dot, const std::string& svg) {
        InspectOptions o;
        o.member = member;
        o.placement = placement;
        o.layers = layers;
        o.shapes = to_profiles(shapes);
        o.dot_path = dot;
        o.svg_path = svg;
        Result<std::string> r = Status(StatusCode::kInternal, "inspect did not run");
        {
          py::gil_scoped_release release;
          r = inspect_json(path, o);
        }
        return unwrap(std::move(r));
      },
      py::arg("path"), py::arg("member"), py::arg("placement"), py::arg("layers"), py::arg("shapes"), py::arg("dot"),
      py::arg("svg"), "The JSON document of `kiln inspect --json` for a model or engine file.");
}

}  // namespace kiln::python
