#include "errors.h"

#include <nanobind/stl/string.h>

#include <algorithm>
#include <array>
#include <new>
#include <string>

#include "kvdex/error.h"

namespace nb = nanobind;

namespace kvdex::python {
namespace {

// Indexed by the code's stable number (kvdex/error.h).
constexpr std::size_t kMaxCodeNumber = [] {
  int max = 0;
  for (ErrorCode code : kAllErrorCodes) max = std::max(max, static_cast<int>(code));
  return static_cast<std::size_t>(max);
}();

// Strong references, set once by _register_exceptions and kept for the process.
std::array<PyObject*, kMaxCodeNumber + 1> g_classes{};

// The builtin used before kvdex/__init__.py registered its classes (only when
// kvdex._native is imported on its own).
PyObject* builtin_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return PyExc_ValueError;
    case ErrorCode::kNotFound:
      return PyExc_FileNotFoundError;
    case ErrorCode::kCorruption:
      return PyExc_ValueError;
    case ErrorCode::kIOError:
      return PyExc_OSError;
    case ErrorCode::kUnavailable:
      return PyExc_ConnectionError;
    case ErrorCode::kNotSupported:
      return PyExc_NotImplementedError;
    case ErrorCode::kOutOfRange:
      return PyExc_OverflowError;
    case ErrorCode::kInternal:
      return PyExc_RuntimeError;
    case ErrorCode::kFailedPrecondition:
      return PyExc_RuntimeError;
    case ErrorCode::kResourceExhausted:
      return PyExc_OSError;
    case ErrorCode::kAlreadyExists:
      return PyExc_ValueError;
    case ErrorCode::kDeadlineExceeded:
      return PyExc_TimeoutError;
    case ErrorCode::kPermissionDenied:
      return PyExc_PermissionError;
  }
  return PyExc_RuntimeError;
}

PyObject* class_for(ErrorCode code) {
  const auto index = static_cast<std::size_t>(code);
  if (index < g_classes.size() && g_classes[index] != nullptr) return g_classes[index];
  return builtin_for(code);
}

// {"invalid_argument": InvalidArgumentError, ...}: every code must be present.
void register_exceptions(nb::dict classes) {
  std::array<PyObject*, kMaxCodeNumber + 1> found{};
  for (ErrorCode code : kAllErrorCodes) {
    const std::string name(error_code_name(code));
    if (!classes.contains(name.c_str())) {
      throw nb::key_error(("_register_exceptions: missing class for code " + name).c_str());
    }
    nb::object cls = classes[name.c_str()];
    if (!PyType_Check(cls.ptr()) ||
        !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(cls.ptr()),
                          reinterpret_cast<PyTypeObject*>(PyExc_Exception))) {
      throw nb::type_error(
          ("_register_exceptions: " + name + " is not an exception class").c_str());
    }
    found[static_cast<std::size_t>(code)] = cls.release().ptr();
  }
  for (std::size_t i = 0; i < g_classes.size(); ++i) {
    Py_XDECREF(g_classes[i]);
    g_classes[i] = found[i];
  }
}

}  // namespace

ErrorCode code_from_name(std::string_view name) {
  for (ErrorCode code : kAllErrorCodes) {
    if (error_code_name(code) == name) return code;
  }
  throw nb::value_error(("unknown error code " + std::string(name)).c_str());
}

void set_python_error(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    PyErr_SetString(class_for(e.code()), e.what());
  } catch (nb::python_error& e) {
    e.restore();
  } catch (const nb::builtin_exception& e) {
    // nb::type_error and friends, thrown by the binding itself.
    PyObject* type = PyExc_RuntimeError;
    switch (e.type()) {
      case nb::exception_type::type_error:
        type = PyExc_TypeError;
        break;
      case nb::exception_type::value_error:
        type = PyExc_ValueError;
        break;
      case nb::exception_type::key_error:
        type = PyExc_KeyError;
        break;
      case nb::exception_type::index_error:
        type = PyExc_IndexError;
        break;
      default:
        break;
    }
    PyErr_SetString(type, e.what());
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "kvdex: unknown C++ exception");
  }
}

nb::object exception_object(const std::exception_ptr& error) {
  set_python_error(error);
#if PY_VERSION_HEX >= 0x030C0000
  return nb::steal(PyErr_GetRaisedException());
#else
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  if (traceback != nullptr) PyException_SetTraceback(value, traceback);
  Py_XDECREF(type);
  Py_XDECREF(traceback);
  return nb::steal(value);
#endif
}

void register_error_translation(nb::module_& m) {
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const Error&) {
      set_python_error(p);
    }
    // Anything else propagates to nanobind's own translators.
  });
  m.def("_register_exceptions", &register_exceptions, nb::arg("classes"),
        "Installs the Python classes raised for each kvdex error code (kvdex/__init__.py).");
  m.def(
      "_error_codes",
      [] {
        nb::dict codes;
        for (ErrorCode code : kAllErrorCodes)
          codes[nb::str(std::string(error_code_name(code)).c_str())] = static_cast<int>(code);
        return codes;
      },
      "{name: stable number} of every kvdex error code, in the table's order (kvdex/error.h).");
  m.def(
      "_raise_error",
      [](const std::string& code_name, const std::string& message) {
        throw Error(code_from_name(code_name), message);
      },
      nb::arg("code"), nb::arg("message"),
      "Raises kvdex::Error(code, message) from C++ (for tests).");
}

}  // namespace kvdex::python
