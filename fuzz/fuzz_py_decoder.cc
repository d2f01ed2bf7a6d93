// The Python package's decoder (python/src/py_json.cc: the fast path for canonical
// text, the validating parser for anything else) against CPython's own json.loads
// on the same bytes, in an embedded interpreter:
//   - what kvdex decodes, json.loads decodes to an equal object: equal repr, which
//     tells 1 from 1.0 from True and keeps NaN, -0.0, lone surrogates, key order
//     and big integers;
//   - what json.loads decodes to a dict and kvdex refuses is refused for nesting
//     deeper than kvdex's documented limit (docs/design-notes.md), never otherwise;
//   - nothing crashes, leaks or reads out of bounds (ASan, UBSan).
// Only UTF-8 input without a BOM is compared: json.loads also detects UTF-16/32 and
// skips a BOM, and no stored value is either.
#include <Python.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "kvdex/error.h"
#include "py_json.h"

namespace nb = nanobind;

namespace {

PyObject* json_loads = nullptr;
PyObject* json_detect_encoding = nullptr;

void init_python() {
  if (Py_IsInitialized()) return;
  // pymalloc keeps small objects in mmap'd arenas, which LeakSanitizer does not
  // scan: a large object referenced only from one would be reported as leaked.
  ::setenv("PYTHONMALLOC", "malloc", 1);
  Py_InitializeEx(0);
  PyObject* json = PyImport_ImportModule("json");
  if (json == nullptr) std::abort();
  json_loads = PyObject_GetAttrString(json, "loads");
  json_detect_encoding = PyObject_GetAttrString(json, "detect_encoding");
  if (json_loads == nullptr || json_detect_encoding == nullptr) std::abort();
  // Deep enough that json.loads reaches past kvdex's own nesting limit, shallow
  // enough for the C stack.
  if (PyRun_SimpleString("import sys; sys.setrecursionlimit(3000)") != 0) std::abort();
}

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "fuzz_py_decoder: %s on %zu bytes\n", what, input.size());
  PyErr_Print();
  std::abort();
}

std::optional<std::string> repr_of(PyObject* obj) {
  nb::object r = nb::steal(PyObject_Repr(obj));
  if (!r.is_valid()) {
    PyErr_Clear();
    return std::nullopt;
  }
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(r.ptr(), &size);
  if (data == nullptr) {
    // Lone surrogates in a repr are escaped, so this does not happen; be safe.
    PyErr_Clear();
    return std::nullopt;
  }
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  init_python();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nb::object bytes =
      nb::steal(PyBytes_FromStringAndSize(text.data(), static_cast<Py_ssize_t>(size)));
  nb::object encoding = nb::steal(PyObject_CallOneArg(json_detect_encoding, bytes.ptr()));
  if (!encoding.is_valid()) fail("json.detect_encoding failed", text);
  const char* encoding_name = PyUnicode_AsUTF8(encoding.ptr());
  // A stored value never starts with a BOM ("utf-8-sig"): the decoder reads values.
  if (std::strcmp(encoding_name, "utf-8") != 0) return 0;

  nb::object expected = nb::steal(PyObject_CallOneArg(json_loads, bytes.ptr()));
  if (!expected.is_valid()) PyErr_Clear();

  std::optional<nb::object> got;
  std::string refusal;
  try {
    got = kvdex::python::decode_value(text);
  } catch (const nb::python_error& e) {
    refusal = e.what();
  } catch (const kvdex::Error& e) {
    refusal = e.what();
  }
  PyErr_Clear();

  if (got) {
    if (!expected.is_valid()) fail("kvdex decoded what json.loads refuses", text);
    const std::optional<std::string> a = repr_of(got->ptr());
    const std::optional<std::string> b = repr_of(expected.ptr());
    if (!a || !b) return 0;  // too deep for repr itself
    if (*a != *b) fail("kvdex and json.loads disagree", text);
    return 0;
  }
  if (expected.is_valid() && PyDict_Check(expected.ptr()) &&
      refusal.find("too deep") == std::string::npos) {
    std::fprintf(stderr, "kvdex refused: %s\n", refusal.c_str());
    fail("kvdex refused a JSON object json.loads accepts", text);
  }
  return 0;
}
