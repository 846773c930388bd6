// kiln._kiln: the native half of the kiln Python package (python/kiln/ is the other half).
#include "bindings.h"

PYBIND11_MODULE(_kiln, m) {
  m.doc() = "kiln's native module; use the kiln package, which wraps it.";
  m.attr("__version__") = kiln::kVersion;
  kiln::python::bind_errors(m);
  kiln::python::bind_engine(m);
  kiln::python::bind_context(m);
  kiln::python::bind_device(m);
  kiln::python::bind_inspect(m);
}
