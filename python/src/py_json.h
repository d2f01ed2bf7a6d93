// Python objects <-> kvdex's canonical JSON text, without the json module.
//
// Writing walks the PyObjects and produces exactly what json.dumps(obj) writes
// with its defaults (ensure_ascii, ", " / ": ", float repr, NaN/Infinity, ints of
// any size, str subclasses as str, tuples as lists, dict keys that are str, int,
// float, bool or None converted as json.dumps converts them). Whatever json.dumps
// refuses is refused with json's exception and message (TypeError "Object of type
// X is not JSON serializable", ValueError "Circular reference detected",
// RecursionError). Where non-str keys collide after conversion ({1: 'a', '1': 'b'}),
// the result is what json.loads makes of json.dumps' output: one key, the last
// value, at the first position.
//
// Reading builds dicts, lists, str (lone surrogates kept), int (any size), float,
// bool and None, as json.loads does. Stored text is canonical (checked when stored or
// loaded), so a decoder that reads only that form builds the objects directly, with
// short strings shared through caches (str is immutable; containers are always new;
// lists holding no container are left untracked by the cyclic GC, see make_list);
// anything else goes to kvdex's validating parser.
//
// Everything here needs the GIL. Errors are thrown as nanobind::python_error (the
// Python error is set) or kvdex::Error.
#ifndef KVDEX_PYTHON_PY_JSON_H_
#define KVDEX_PYTHON_PY_JSON_H_

#include <nanobind/nanobind.h>

#include <optional>
#include <string>
#include <string_view>

#include "kvdex/value.h"

namespace kvdex::python {

// json.dumps(obj) appended to `out`.
void append_json(std::string& out, PyObject* obj);

// A dict as an EncodedValue. Anything but a dict (or dict subclass) is
// Error(kInvalidArgument): a stored value is a JSON object.
EncodedValue encode_value(PyObject* obj);

// The Python object for a stored value's text (a new reference): what json.loads
// returns for it. Canonical text (what a store holds) takes a fast path; any other
// text goes through the validating parser, and text that is not one JSON value is
// Error(kCorruption).
nanobind::object decode_value(std::string_view canonical_text);

// The fast path alone (for tests): nullopt where decode_value would fall back to the
// validating parser.
std::optional<nanobind::object> decode_value_fast_only(std::string_view text);

// A Python str from WTF-8 (keys and collection names read back from a store).
nanobind::object decode_str(std::string_view wtf8);

// A str argument given from Python (a key, a collection name, a URI, JSON text):
// must be a str; its WTF-8 bytes (a lone surrogate is kept, as Python's json keeps
// it). `what` names the argument in the TypeError. The view stays valid while the
// str and this object live.
class StrArg {
 public:
  StrArg(PyObject* str, const char* what);
  StrArg(const StrArg&) = delete;
  StrArg& operator=(const StrArg&) = delete;
  std::string_view view() const { return view_; }
  std::string str() const { return std::string(view_); }

 private:
  std::string owned_;
  std::string_view view_;
};

}  // namespace kvdex::python

#endif  // KVDEX_PYTHON_PY_JSON_H_
