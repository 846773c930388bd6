// Every kiln Status that reaches Python becomes the kiln.Error subclass of its code; no C++ exception
// crosses into the interpreter unconverted, so nothing aborts it.
#include <map>
#include <new>

#include "bindings.h"

namespace kiln::python {

namespace {

// Classes are defined in Python (kiln/_errors.py) and handed over once at import. Plain owned references:
// they live as long as the interpreter, and releasing them at exit would race the interpreter's own teardown.
std::map<int, PyObject*>& error_classes() {
  static auto* classes = new std::map<int, PyObject*>();
  return *classes;
}
PyObject* g_base_error = nullptr;
PyObject* g_out_of_memory = nullptr;

PyObject* class_for(StatusCode code) {
  auto it = error_classes().find(static_cast<int>(code));
  if (it != error_classes().end()) return it->second;
  return g_base_error ? g_base_error : PyExc_RuntimeError;
}

void set_error_classes(const py::dict& by_code, const py::object& base, const py::object& out_of_memory) {
  for (auto& [code, cls] : error_classes()) Py_DECREF(cls);
  error_classes().clear();
  for (auto item : by_code) {
    PyObject* cls = item.second.ptr();
    Py_INCREF(cls);
    error_classes()[item.first.cast<int>()] = cls;
  }
  Py_XDECREF(g_base_error);
  g_base_error = base.ptr();
  Py_INCREF(g_base_error);
  Py_XDECREF(g_out_of_memory);
  g_out_of_memory = out_of_memory.ptr();
  Py_INCREF(g_out_of_memory);
}

// (code, name) for every StatusCode this build of kiln has, so codes added later still get a class.
std::vector<std::pair<int, std::string>> status_codes() {
  std::vector<std::pair<int, std::string>> codes;
  for (int c = 1; c < 64; ++c) {
    std::string name = status_code_name(static_cast<StatusCode>(c));
    if (name == "unknown") break;
    codes.emplace_back(c, name);
  }
  return codes;
}

}  // namespace

void bind_errors(py::module_& m) {
  m.def("_status_codes", &status_codes, "(code, name) of every kiln StatusCode except ok.");
  m.def("_set_error_classes", &set_error_classes, py::arg("by_code"), py::arg("base"), py::arg("out_of_memory"),
        "Registers the Python exception class raised for each StatusCode.");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const StatusError& e) {
      PyErr_SetString(class_for(e.status().code()), e.status().message().c_str());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(g_out_of_memory ? g_out_of_memory : PyExc_MemoryError,
                      "kiln ran out of host memory (std::bad_alloc); use smaller shapes or free memory");
    } catch (const py::error_already_set&) {
      throw;  // a Python exception on its way out: pybind11 restores it
    } catch (const py::builtin_exception&) {
      throw;  // pybind11's own (TypeError, IndexError...): its translator sets them
    } catch (const std::exception& e) {
      PyErr_SetString(class_for(StatusCode::kInternal),
                      (std::string("kiln internal error (please report it): ") + e.what()).c_str());
    }
  });
}

}  // namespace kiln::python
