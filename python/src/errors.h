// kvdex::Error -> Python exception, in one place.
//
// The exception classes live in Python (kvdex/exceptions.py); kvdex/__init__.py
// hands them to the module once with _native._register_exceptions(). Each
// ErrorCode maps to one class (InvalidArgumentError, NotFoundError, ...) that
// inherits both kvdex.Error and the natural builtin; the message is the C++ one.
#ifndef KVDEX_PYTHON_ERRORS_H_
#define KVDEX_PYTHON_ERRORS_H_

#include <nanobind/nanobind.h>

#include <exception>
#include <string_view>

#include "kvdex/error.h"

namespace kvdex::python {

// The code whose error_code_name() is `name`; nb::value_error if none.
ErrorCode code_from_name(std::string_view name);

// Installs the nanobind exception translator for kvdex::Error.
void register_error_translation(nanobind::module_& m);

// Sets the Python error indicator from any exception a kvdex call can throw
// (kvdex::Error, nanobind::python_error, std::bad_alloc, std::exception).
void set_python_error(const std::exception_ptr& error);

// The same, as an exception object (for completing an asyncio future). Never
// throws; needs the GIL.
nanobind::object exception_object(const std::exception_ptr& error);

}  // namespace kvdex::python

#endif  // KVDEX_PYTHON_ERRORS_H_
