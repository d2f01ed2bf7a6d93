#include "py_json.h"

#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/json_codec.h"
#include "kvdex/error.h"

namespace nb = nanobind;

namespace kvdex::python {
namespace {

[[noreturn]] void throw_python_error() { throw nb::python_error(); }

using detail::append_u_escape;

// json.dumps' ensure_ascii escaping of one code point.
inline void append_escaped(std::string& out, Py_UCS4 c) {
  if (c >= 0x20 && c <= 0x7e) {
    if (c == '"') {
      out.append("\\\"");
    } else if (c == '\\') {
      out.append("\\\\");
    } else {
      out.push_back(static_cast<char>(c));
    }
    return;
  }
  switch (c) {
    case '\n':
      out.append("\\n");
      return;
    case '\r':
      out.append("\\r");
      return;
    case '\t':
      out.append("\\t");
      return;
    case '\b':
      out.append("\\b");
      return;
    case '\f':
      out.append("\\f");
      return;
    default:
      break;
  }
  if (c >= 0x10000) {
    const Py_UCS4 v = c - 0x10000;
    append_u_escape(out, 0xD800 | (v >> 10));
    append_u_escape(out, 0xDC00 | (v & 0x3FF));
  } else {
    append_u_escape(out, c);  // controls, DEL, non-ASCII, lone surrogates
  }
}

template <class Char>
void append_escaped_run(std::string& out, const Char* data, Py_ssize_t n) {
  for (Py_ssize_t i = 0; i < n; ++i) append_escaped(out, static_cast<Py_UCS4>(data[i]));
}

// A str (or str subclass: its character data, as json does) as a JSON string.
void append_py_string(std::string& out, PyObject* s) {
#if PY_VERSION_HEX < 0x030C0000
  if (PyUnicode_READY(s) < 0) throw_python_error();
#endif
  const Py_ssize_t n = PyUnicode_GET_LENGTH(s);
  if (PyUnicode_IS_ASCII(s)) {
    // The ASCII bytes are the UTF-8 bytes: kvdex's escaper (8 bytes at a time).
    detail::append_json_string(out, std::string_view(static_cast<const char*>(PyUnicode_DATA(s)),
                                                     static_cast<std::size_t>(n)));
    return;
  }
  out.reserve(out.size() + static_cast<std::size_t>(n) * 2 + 2);
  out.push_back('"');
  switch (PyUnicode_KIND(s)) {
    case PyUnicode_1BYTE_KIND:
      append_escaped_run(out, PyUnicode_1BYTE_DATA(s), n);
      break;
    case PyUnicode_2BYTE_KIND:
      append_escaped_run(out, PyUnicode_2BYTE_DATA(s), n);
      break;
    default:
      append_escaped_run(out, PyUnicode_4BYTE_DATA(s), n);
      break;
  }
  out.push_back('"');
}

// int.__repr__ of an int (or int subclass), as json.dumps writes it.
void append_py_int(std::string& out, PyObject* obj) {
  int overflow = 0;
  const long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
  if (overflow == 0) {
    if (v == -1 && PyErr_Occurred()) throw_python_error();
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
    return;
  }
  // Beyond 64 bits: Python's own conversion (and its digit limit, as json.dumps).
  nb::object text = nb::steal(PyLong_Type.tp_repr(obj));
  if (!text.is_valid()) throw_python_error();
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
  if (data == nullptr) throw_python_error();
  out.append(data, static_cast<std::size_t>(size));
}

std::string type_name_of(PyObject* obj) {
  // json's default(): f'Object of type {o.__class__.__name__} ...'
  nb::object cls = nb::steal(PyObject_GetAttrString(obj, "__class__"));
  if (cls.is_valid()) {
    nb::object name = nb::steal(PyObject_GetAttrString(cls.ptr(), "__name__"));
    if (name.is_valid() && PyUnicode_Check(name.ptr())) {
      if (const char* s = PyUnicode_AsUTF8(name.ptr())) return s;
    }
  }
  PyErr_Clear();
  return Py_TYPE(obj)->tp_name;
}

// Py_EnterRecursiveCall plus json's circular-reference check, undone on exit.
class ContainerGuard {
 public:
  ContainerGuard(std::vector<PyObject*>& stack, PyObject* container) : stack_(stack) {
    if (Py_EnterRecursiveCall(" while encoding a JSON object")) throw_python_error();
    for (PyObject* open : stack_) {
      if (open == container) {
        Py_LeaveRecursiveCall();
        PyErr_SetString(PyExc_ValueError, "Circular reference detected");
        throw_python_error();
      }
    }
    stack_.push_back(container);
  }
  ~ContainerGuard() {
    stack_.pop_back();
    Py_LeaveRecursiveCall();
  }
  ContainerGuard(const ContainerGuard&) = delete;
  ContainerGuard& operator=(const ContainerGuard&) = delete;

 private:
  std::vector<PyObject*>& stack_;
};

class Encoder {
 public:
  explicit Encoder(std::string& out) : out_(out) {}

  void value(PyObject* obj) {
    if (obj == Py_None) {
      out_.append("null");
    } else if (obj == Py_True) {
      out_.append("true");
    } else if (obj == Py_False) {
      out_.append("false");
    } else if (PyUnicode_Check(obj)) {
      append_py_string(out_, obj);
    } else if (PyLong_Check(obj)) {
      append_py_int(out_, obj);
    } else if (PyFloat_Check(obj)) {
      detail::append_python_float(out_, PyFloat_AS_DOUBLE(obj));
    } else if (PyList_Check(obj) || PyTuple_Check(obj)) {
      list(obj);
    } else if (PyDict_Check(obj)) {
      dict(obj);
    } else {
      const std::string message =
          "Object of type " + type_name_of(obj) + " is not JSON serializable";
      PyErr_SetString(PyExc_TypeError, message.c_str());
      throw_python_error();
    }
  }

 private:
  void list(PyObject* seq) {
    const bool is_list = PyList_Check(seq);
    const Py_ssize_t n = is_list ? PyList_GET_SIZE(seq) : PyTuple_GET_SIZE(seq);
    if (n == 0) {
      out_.append("[]");
      return;
    }
    ContainerGuard guard(stack_, seq);
    out_.push_back('[');
    for (Py_ssize_t i = 0; i < n; ++i) {
      if (i > 0) out_.append(", ");
      // Re-read the size: nothing we call runs Python code, but stay safe.
      if (is_list && i >= PyList_GET_SIZE(seq)) break;
      value(is_list ? PyList_GET_ITEM(seq, i) : PyTuple_GET_ITEM(seq, i));
    }
    out_.push_back(']');
  }

  // The JSON text of a dict key, quotes included, as json.dumps converts keys.
  void key_text(std::string& out, PyObject* key) {
    if (PyUnicode_Check(key)) {
      append_py_string(out, key);
    } else if (PyFloat_Check(key)) {
      std::string text;
      detail::append_python_float(text, PyFloat_AS_DOUBLE(key));
      detail::append_json_string(out, text);
    } else if (key == Py_True) {
      out.append("\"true\"");
    } else if (key == Py_False) {
      out.append("\"false\"");
    } else if (key == Py_None) {
      out.append("\"null\"");
    } else if (PyLong_Check(key)) {
      out.push_back('"');
      append_py_int(out, key);
      out.push_back('"');
    } else {
      PyErr_Format(PyExc_TypeError, "keys must be str, int, float, bool or None, not %.100s",
                   Py_TYPE(key)->tp_name);
      throw_python_error();
    }
  }

  void dict(PyObject* d) {
    if (PyDict_GET_SIZE(d) == 0) {
      out_.append("{}");
      return;
    }
    ContainerGuard guard(stack_, d);
    if (!PyDict_CheckExact(d)) {
      // json.dumps asks a dict subclass for its items().
      nb::object items = nb::steal(PyMapping_Items(d));
      if (!items.is_valid()) throw_python_error();
      members_general(items.ptr());
      return;
    }
    // Fast path: every key an exact str (always so for LlamaIndex), so keys are
    // distinct and written as they come. On the first other key, start over.
    const std::size_t start = out_.size();
    out_.push_back('{');
    Py_ssize_t pos = 0;
    PyObject *key, *item;
    bool first = true;
    while (PyDict_Next(d, &pos, &key, &item)) {
      if (!PyUnicode_CheckExact(key)) {
        out_.resize(start);
        nb::object items = nb::steal(PyDict_Items(d));
        if (!items.is_valid()) throw_python_error();
        members_general(items.ptr());
        return;
      }
      if (!first) out_.append(", ");
      first = false;
      append_py_string(out_, key);
      out_.append(": ");
      value(item);
    }
    out_.push_back('}');
  }

  // Members from a list of (key, value) pairs, converting keys as json.dumps and
  // merging keys that collide as json.loads would (last value, first position).
  void members_general(PyObject* items) {
    const Py_ssize_t n = PyList_GET_SIZE(items);
    std::vector<std::pair<std::string, std::string>> members;
    std::unordered_map<std::string, std::size_t> index;
    members.reserve(static_cast<std::size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i) {
      PyObject* pair = PyList_GET_ITEM(items, i);
      if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_ValueError, "items must return 2-tuples");
        throw_python_error();
      }
      std::string key;
      key_text(key, PyTuple_GET_ITEM(pair, 0));
      // Encode the value in place, then move its text aside.
      const std::size_t mark = out_.size();
      value(PyTuple_GET_ITEM(pair, 1));
      std::string text = out_.substr(mark);
      out_.resize(mark);
      auto [it, inserted] = index.emplace(key, members.size());
      if (inserted) {
        members.emplace_back(std::move(key), std::move(text));
      } else {
        members[it->second].second = std::move(text);
      }
    }
    out_.push_back('{');
    bool first = true;
    for (const auto& [key, text] : members) {
      if (!first) out_.append(", ");
      first = false;
      out_.append(key);
      out_.append(": ");
      out_.append(text);
    }
    out_.push_back('}');
  }

  std::string& out_;
  std::vector<PyObject*> stack_;
};

// ---- Reading ------------------------------------------------------------------------

bool is_ascii(std::string_view s) {
  const char* p = s.data();
  const char* end = p + s.size();
  while (end - p >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    if (word & 0x8080808080808080ULL) return false;
    p += 8;
  }
  for (; p < end; ++p) {
    if (static_cast<unsigned char>(*p) >= 0x80) return false;
  }
  return true;
}

PyObject* new_str(std::string_view s) {
  if (is_ascii(s)) {
    PyObject* str = PyUnicode_New(static_cast<Py_ssize_t>(s.size()), 127);
    if (str != nullptr) std::memcpy(PyUnicode_DATA(str), s.data(), s.size());
    return str;
  }
  return PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "surrogatepass");
}

// Dict keys repeat from value to value ("__data__", "id_", "metadata", ...): keep
// the str objects (with their hashes computed) for short ASCII keys.
class KeyCache {
 public:
  PyObject* get(std::string_view key) {
    if (key.size() > kMaxLength) return new_str(key);
    std::uint64_t h = 1469598103934665603ULL;
    for (char c : key) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ULL;
    }
    PyObject*& slot = slots_[h & (kSlots - 1)];
    if (slot != nullptr && static_cast<std::size_t>(PyUnicode_GET_LENGTH(slot)) == key.size() &&
        std::memcmp(PyUnicode_DATA(slot), key.data(), key.size()) == 0) {
      Py_INCREF(slot);
      return slot;
    }
    PyObject* str = new_str(key);
    if (str == nullptr || !PyUnicode_IS_ASCII(str)) return str;
    if (PyObject_Hash(str) == -1) {
      Py_DECREF(str);
      return nullptr;
    }
    Py_XDECREF(slot);
    Py_INCREF(str);
    slot = str;
    return str;
  }

 private:
  static constexpr std::size_t kSlots = 1024;
  static constexpr std::size_t kMaxLength = 48;
  PyObject* slots_[kSlots] = {};
};

KeyCache& key_cache() {
  static KeyCache* cache = new KeyCache();  // used under the GIL only; never freed
  return *cache;
}

// A JsonParser handler that builds Python objects.
class Builder {
 public:
  Builder() = default;
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;
  ~Builder() {
    Py_XDECREF(root_);
    Py_XDECREF(pending_key_);
  }

  nb::object take() {
    PyObject* r = root_;
    root_ = nullptr;
    return nb::steal(r);
  }

  void start_object() { open(PyDict_New()); }
  void start_array() { open(PyList_New(0)); }
  void end_object() { stack_.pop_back(); }
  void end_array() { stack_.pop_back(); }
  void key(std::string_view k) {
    Py_XDECREF(pending_key_);
    pending_key_ = key_cache().get(k);
    if (pending_key_ == nullptr) throw_python_error();
  }
  void string(std::string_view s) { add(new_str(s)); }
  void integer(std::string_view digits) {
    if (digits.size() <= 18) {
      long long v = 0;
      std::from_chars(digits.data(), digits.data() + digits.size(), v);
      add(PyLong_FromLongLong(v));
    } else {
      const std::string text(digits);
      add(PyLong_FromString(text.c_str(), nullptr, 10));
    }
  }
  void floating(double v) { add(PyFloat_FromDouble(v)); }
  void boolean(bool b) {
    PyObject* v = b ? Py_True : Py_False;
    Py_INCREF(v);
    add(v);
  }
  void null() {
    Py_INCREF(Py_None);
    add(Py_None);
  }

 private:
  // Adds a new reference to the open container (or makes it the root).
  // Returns the object, borrowed.
  PyObject* add(PyObject* v) {
    if (v == nullptr) throw_python_error();
    if (stack_.empty()) {
      root_ = v;
      return v;
    }
    PyObject* parent = stack_.back();
    int rc;
    if (PyDict_CheckExact(parent)) {
      rc = PyDict_SetItem(parent, pending_key_, v);
    } else {
      rc = PyList_Append(parent, v);
    }
    Py_DECREF(v);
    if (rc < 0) throw_python_error();
    return v;
  }
  void open(PyObject* container) { stack_.push_back(add(container)); }

  PyObject* root_ = nullptr;
  PyObject* pending_key_ = nullptr;
  std::vector<PyObject*> stack_;  // borrowed: each is owned by its parent or root_
};

}  // namespace

void append_json(std::string& out, PyObject* obj) { Encoder(out).value(obj); }

EncodedValue encode_value(PyObject* obj) {
  if (!PyDict_Check(obj)) {
    throw Error(ErrorCode::kInvalidArgument,
                "value must be a JSON object (a dict), got " + type_name_of(obj));
  }
  auto text = std::make_shared<std::string>();
  append_json(*text, obj);
  const std::string_view view = *text;
  return EncodedValue::adopt_canonical(view, std::shared_ptr<const void>(std::move(text)));
}

nb::object decode_value(std::string_view canonical_text) {
  detail::JsonParser parser(canonical_text);
  Builder builder;
  try {
    parser.parse_value(builder);
  } catch (const detail::JsonSyntaxError& e) {
    throw Error(ErrorCode::kInternal, "stored value is not valid JSON at " +
                                          detail::describe_offset(canonical_text, e.offset) + ": " +
                                          e.message);
  }
  return builder.take();
}

nb::object decode_str(std::string_view wtf8) {
  PyObject* s = new_str(wtf8);
  if (s == nullptr) throw_python_error();
  return nb::steal(s);
}

KeyArg::KeyArg(PyObject* str, const char* what) {
  if (!PyUnicode_Check(str)) {
    PyErr_Format(PyExc_TypeError, "%s must be str, not %.100s", what, Py_TYPE(str)->tp_name);
    throw_python_error();
  }
  Py_ssize_t size = 0;
  if (const char* data = PyUnicode_AsUTF8AndSize(str, &size)) {
    view_ = std::string_view(data, static_cast<std::size_t>(size));
    return;
  }
  // Lone surrogates: keep them as WTF-8, as the values' strings.
  PyErr_Clear();
  nb::object bytes = nb::steal(PyUnicode_AsEncodedString(str, "utf-8", "surrogatepass"));
  if (!bytes.is_valid()) throw_python_error();
  owned_.assign(PyBytes_AS_STRING(bytes.ptr()),
                static_cast<std::size_t>(PyBytes_GET_SIZE(bytes.ptr())));
  view_ = owned_;
}

}  // namespace kvdex::python
