#include "py_json.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kvdex/error.h"
#include "kvdex/json.h"

namespace nb = nanobind;

namespace kvdex::python {
namespace {

[[noreturn]] void throw_python_error() { throw nb::python_error(); }

using json::append_u_escape;

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
    json::append_quoted(out, std::string_view(static_cast<const char*>(PyUnicode_DATA(s)),
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
// The value passed to encode_value is itself one level.
constexpr int kMaxEncodedDepth = 898;

class ContainerGuard {
 public:
  ContainerGuard(std::vector<PyObject*>& stack, PyObject* container) : stack_(stack) {
    if (Py_EnterRecursiveCall(" while encoding a JSON object")) throw_python_error();
    // A raised recursion limit must not let a value nest deeper than kvdex (and
    // LlamaIndex, at the default limit) reads back.
    if (static_cast<int>(stack_.size()) >= kMaxEncodedDepth) {
      Py_LeaveRecursiveCall();
      PyErr_SetString(PyExc_RecursionError,
                      "maximum recursion depth exceeded while encoding a JSON object");
      throw_python_error();
    }
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
      json::append_float(out_, PyFloat_AS_DOUBLE(obj));
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
      check_empty_depth();
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
      json::append_float(text, PyFloat_AS_DOUBLE(key));
      json::append_quoted(out, text);
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

  // An empty container takes no ContainerGuard (it cannot hold a cycle) but is a
  // level of nesting all the same.
  void check_empty_depth() {
    if (static_cast<int>(stack_.size()) >= kMaxEncodedDepth) {
      PyErr_SetString(PyExc_RecursionError,
                      "maximum recursion depth exceeded while encoding a JSON object");
      throw_python_error();
    }
  }

  void dict(PyObject* d) {
    if (PyDict_GET_SIZE(d) == 0) {
      check_empty_depth();
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

  // Members from a list of (key, value) pairs, keys converted as json.dumps converts
  // them. Keys that collide once converted ({1: "a", "1": "b"}) are all written, as
  // json.dumps writes them; reading back keeps the last, as json.loads does.
  void members_general(PyObject* items) {
    const Py_ssize_t n = PyList_GET_SIZE(items);
    out_.push_back('{');
    std::string key;
    for (Py_ssize_t i = 0; i < n; ++i) {
      PyObject* pair = PyList_GET_ITEM(items, i);
      if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
        PyErr_SetString(PyExc_ValueError, "items must return 2-tuples");
        throw_python_error();
      }
      key.clear();
      key_text(key, PyTuple_GET_ITEM(pair, 0));
      if (i) out_.append(", ");
      out_.append(key);
      out_.append(": ");
      value(PyTuple_GET_ITEM(pair, 1));
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

PyObject* new_ascii_str(const char* s, std::size_t n) {
  PyObject* str = PyUnicode_New(static_cast<Py_ssize_t>(n), 127);
  if (str != nullptr) std::memcpy(PyUnicode_1BYTE_DATA(str), s, n);
  return str;
}

// memcmp(a, b, n) == 0 for the short texts of StrCache, inline.
inline bool same_text(const char* a, const char* b, std::size_t n) {
  if (n >= 8) {
    std::uint64_t x, y;
    for (std::size_t i = 0; i + 8 < n; i += 8) {
      std::memcpy(&x, a + i, 8);
      std::memcpy(&y, b + i, 8);
      if (x != y) return false;
    }
    std::memcpy(&x, a + n - 8, 8);
    std::memcpy(&y, b + n - 8, 8);
    return x == y;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// Strings repeat from value to value: every node has the same keys ("__data__",
// "id_", "metadata", ...) and many of the same short values ("TextNode", "1",
// "text/plain", "\n"). A StrCache maps the raw text of a short string literal (its
// bytes between the quotes, escapes undecoded) to the str it decodes to, so that a
// repeat costs a lookup instead of an allocation and a decode. Sharing a str between
// results is invisible: str is immutable (containers are never shared).
//
// Sets of 4 entries, each identified by a 32-bit tag of the text's hash and its
// length (one 64-byte line per set with the str pointers), so a miss touches no str;
// a tag match is confirmed by comparing the raw text. A new entry goes in front of
// its set and the last one is dropped.
class StrCache {
 public:
  static constexpr std::size_t kMaxLength = 48;

  // `intern`: intern the strs kept (for keys: code looking up a literal key,
  // d["text"], then matches them by identity) and compute their hash (which every
  // dict insert needs).
  StrCache(std::size_t sets, bool intern)
      : mask_(sets - 1),
        intern_(intern),
        sets_(new Set[sets]),
        raw_(new char[sets * kWays * kMaxLength]) {}

  // A miss costs more than no cache (hashing, a lookup, an entry replaced, for keys
  // interning), a hit much less than a new str. Where strings seldom repeat (ids as
  // keys, unique short values), lookups do not pay: when more than 3 of 5 of a
  // window of at least kWindow lookups missed, the next kBypass strings are made
  // without the cache, then it is tried again. A decoder counts as it goes and
  // reports when done (so the counting stays in its registers); a decode started
  // while bypassing bypasses throughout.
  static constexpr std::uint32_t kWindow = 256;
  static constexpr std::uint32_t kBypass = 4096;
  struct Counts {
    std::uint32_t lookups = 0;
    std::uint32_t misses = 0;
    std::uint32_t bypassed = 0;
  };

  bool bypassing() const { return bypass_left_ != 0; }
  void report(const Counts& c) {
    bypass_left_ -= std::min(bypass_left_, c.bypassed);
    lookups_ += c.lookups;
    misses_ += c.misses;
    if (lookups_ < kWindow) return;
    if (misses_ * 5 > lookups_ * 3) bypass_left_ = kBypass;
    lookups_ = misses_ = 0;
  }

  // The cached str for the raw literal text [s, s + n) (n <= kMaxLength), borrowed,
  // or nullptr.
  PyObject* find(const char* s, std::size_t n, std::uint64_t hash) const {
    const std::size_t index = hash & mask_;
    const Set& set = sets_[index];
    const std::uint64_t id = id_of(hash, n);
    for (std::size_t w = 0; w < kWays; ++w) {
      if (set.ids[w] == id && same_text(raw(index, w), s, n)) return set.strs[w];
    }
    return nullptr;
  }

  // Keeps `str` (a new reference, what [s, s + n) decodes to) and returns it (a new
  // reference), interned when this cache interns. nullptr with a Python error set
  // if interning or hashing failed; `str` is consumed either way.
  PyObject* keep(const char* s, std::size_t n, std::uint64_t hash, PyObject* str) {
    if (intern_) {
      PyUnicode_InternInPlace(&str);  // may swap in the interpreter's equal str
      if (PyObject_Hash(str) == -1) {
        Py_DECREF(str);
        return nullptr;
      }
    }
    const std::size_t index = hash & mask_;
    Set& set = sets_[index];
    PyObject* dropped = set.strs[kWays - 1];
    for (std::size_t w = kWays - 1; w > 0; --w) {
      set.ids[w] = set.ids[w - 1];
      set.strs[w] = set.strs[w - 1];
      std::memcpy(raw(index, w), raw(index, w - 1), kMaxLength);
    }
    set.ids[0] = id_of(hash, n);
    Py_INCREF(str);
    set.strs[0] = str;
    std::memcpy(raw(index, 0), s, n);
    Py_XDECREF(dropped);  // last, with the set consistent
    return str;
  }

  // The hash of a literal's raw text (n <= kMaxLength).
  static std::uint64_t hash(const char* s, std::size_t n) {
    std::uint64_t a = n, b = 0;
    if (n >= 8) {
      std::uint64_t w;
      for (std::size_t i = 0; i + 8 < n; i += 8) {
        std::memcpy(&w, s + i, 8);
        a = (a ^ w) * 0x9E3779B97F4A7C15ULL;
      }
      std::memcpy(&b, s + n - 8, 8);
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        b |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[i])) << (8 * i);
      }
    }
    std::uint64_t h = a ^ (b * 0xC2B2AE3D27D4EB4FULL);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    return h;
  }

 private:
  static constexpr std::size_t kWays = 4;
  static constexpr std::uint64_t kNoId = ~std::uint64_t{0};  // no text has this length

  struct Set {
    std::uint64_t ids[kWays] = {kNoId, kNoId, kNoId, kNoId};  // tag << 32 | length
    PyObject* strs[kWays] = {};                               // owned
  };

  static std::uint64_t id_of(std::uint64_t hash, std::size_t n) {
    return (hash >> 32 << 32) | static_cast<std::uint32_t>(n);
  }
  char* raw(std::size_t index, std::size_t way) const {
    return raw_.get() + (index * kWays + way) * kMaxLength;
  }

  std::size_t mask_;
  bool intern_;
  std::unique_ptr<Set[]> sets_;
  std::unique_ptr<char[]> raw_;
  std::uint32_t bypass_left_ = 0;
  std::uint32_t lookups_ = 0;  // in this window
  std::uint32_t misses_ = 0;
};

// Used under the GIL only; never freed (the strs they hold live as long as the
// module).
StrCache& key_cache() {
  static StrCache* cache = new StrCache(64, true);
  return *cache;
}
StrCache& value_cache() {
  static StrCache* cache = new StrCache(256, false);
  return *cache;
}

// ---- The trusted fast decoder -------------------------------------------------------
//
// A store's values are canonical text: exactly what json.dumps writes (ensure_ascii,
// ", " and ": ", no other whitespace), checked when stored or loaded. FastDecoder
// reads that form only, building the Python objects directly: no WTF-8 detour for
// strings (escapes are decoded straight into the str's own buffer), no validation
// beyond what it needs to stay in bounds and be right. On anything else (bytes
// >= 0x80, other spacing, nesting deeper than kFastDepth, a number form json.dumps
// does not write, truncated text) it gives up without a Python error and
// decode_value runs the validating parser, which handles or reports it. So for every
// input the result is the validating parser's.

using json::hex_value;
using json::is_digit;
using json::plain_ascii_run;

// Walks a string literal's body that holds escapes, from `p` (just after the opening
// quote) to its closing quote, feeding `sink` runs of plain bytes and decoded code
// points as json.loads decodes them (a \uD8xx\uDCxx pair is one code point, a lone
// surrogate is kept). Returns the position of the closing quote, or nullptr if the
// literal is not one FastDecoder reads.
template <class Sink>
const char* walk_string(const char* p, const char* end, Sink& sink) {
  for (;;) {
    const std::size_t run = plain_ascii_run(p, end);
    if (run > 0) sink.run(p, run);
    p += run;
    if (p >= end) return nullptr;
    if (*p == '"') return p;
    if (*p != '\\' || end - p < 2) return nullptr;  // a raw control or non-ASCII byte
    Py_UCS4 c;
    switch (p[1]) {
      case '"':
        c = '"';
        break;
      case '\\':
        c = '\\';
        break;
      case '/':
        c = '/';
        break;
      case 'b':
        c = '\b';
        break;
      case 'f':
        c = '\f';
        break;
      case 'n':
        c = '\n';
        break;
      case 'r':
        c = '\r';
        break;
      case 't':
        c = '\t';
        break;
      case 'u': {
        if (end - p < 6) return nullptr;
        const int h0 = hex_value(p[2]), h1 = hex_value(p[3]), h2 = hex_value(p[4]),
                  h3 = hex_value(p[5]);
        if ((h0 | h1 | h2 | h3) < 0) return nullptr;
        c = static_cast<Py_UCS4>(h0 << 12 | h1 << 8 | h2 << 4 | h3);
        const char* at = p;
        p += 6;
        if (c >= 0xD800 && c <= 0xDBFF && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
          const int l0 = hex_value(p[2]), l1 = hex_value(p[3]), l2 = hex_value(p[4]),
                    l3 = hex_value(p[5]);
          if ((l0 | l1 | l2 | l3) >= 0) {
            const Py_UCS4 low = static_cast<Py_UCS4>(l0 << 12 | l1 << 8 | l2 << 4 | l3);
            if (low >= 0xDC00 && low <= 0xDFFF) {
              c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
              p += 6;
            }
          }
        }
        sink.code_point(at, static_cast<std::size_t>(p - at), c);
        continue;
      }
      default:
        return nullptr;
    }
    sink.code_point(p, 2, c);
    p += 2;
  }
}

// First pass over an escaped literal: its length in code points, its largest one,
// and where its first escapes are (so the second pass need not look for them).
struct MeasureSink {
  static constexpr std::size_t kMaxEscapes = 32;
  struct Escape {
    const char* at;
    std::uint32_t length;  // bytes of text
    Py_UCS4 c;
  };

  Py_ssize_t length = 0;
  Py_UCS4 max_char = 0x7f;
  std::size_t escape_count = 0;
  Escape escapes[kMaxEscapes];  // the first kMaxEscapes, left uninitialized

  void run(const char*, std::size_t n) { length += static_cast<Py_ssize_t>(n); }
  void code_point(const char* at, std::size_t n, Py_UCS4 c) {
    ++length;
    if (c > max_char) max_char = c;
    if (escape_count < kMaxEscapes) escapes[escape_count] = {at, static_cast<std::uint32_t>(n), c};
    ++escape_count;
  }
};

// Second pass: the characters, into a str's buffer of the kind the first chose.
template <class Char>
struct WriteSink {
  Char* out;
  void run(const char* p, std::size_t n) {
    if constexpr (sizeof(Char) == 1) {
      std::memcpy(out, p, n);
      out += n;
    } else {
      std::size_t i = 0;
#if defined(__SSE2__)
      // Zero-extend 16 ASCII bytes at a time.
      const __m128i zero = _mm_setzero_si128();
      for (; i + 16 <= n; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        const __m128i lo = _mm_unpacklo_epi8(v, zero), hi = _mm_unpackhi_epi8(v, zero);
        if constexpr (sizeof(Char) == 2) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out), lo);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), hi);
        } else {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi16(lo, zero));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4), _mm_unpackhi_epi16(lo, zero));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), _mm_unpacklo_epi16(hi, zero));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 12), _mm_unpackhi_epi16(hi, zero));
        }
        out += 16;
      }
#endif
      for (; i < n; ++i) *out++ = static_cast<unsigned char>(p[i]);
    }
  }
  void code_point(const char*, std::size_t, Py_UCS4 c) { *out++ = static_cast<Char>(c); }

  // The literal [start, close) measured by `m`, replaying its escapes.
  void literal(const char* start, const char* close, const MeasureSink& m) {
    if (m.escape_count > MeasureSink::kMaxEscapes) {
      walk_string(start, close + 1, *this);
      return;
    }
    const char* p = start;
    for (std::size_t i = 0; i < m.escape_count; ++i) {
      const MeasureSink::Escape& e = m.escapes[i];
      run(p, static_cast<std::size_t>(e.at - p));
      *out++ = static_cast<Char>(e.c);
      p = e.at + e.length;
    }
    run(p, static_cast<std::size_t>(close - p));
  }
};

// A dict for n items. _PyDict_NewPresized (CPython's own, in the non-limited API up to
// 3.12; Cython and orjson use it) saves the resizes of a dict grown one item at a
// time: each rebuilds the table. Elsewhere, a plain dict.
inline PyObject* new_dict(Py_ssize_t n) {
#if !defined(Py_LIMITED_API) && !defined(PYPY_VERSION) && PY_VERSION_HEX < 0x030D0000
  if (n > 5) return _PyDict_NewPresized(n);
#endif
  static_cast<void>(n);
  return PyDict_New();
}

class FastDecoder {
 public:
  // Containers nested deeper than this inside the top object go to the validating parser.
  static constexpr int kFastDepth = 64;
  // Longer values (ids, hashes, text) are mostly unique: not worth a cache entry.
  static constexpr std::size_t kMaxCachedValue = 32;

  explicit FastDecoder(std::string_view text)
      : p_(text.data()),
        end_(text.data() + text.size()),
        items_(item_stack()),
        keys_(key_cache()),
        values_(value_cache()) {}
  ~FastDecoder() {
    keys_.cache.report(keys_.counts);
    values_.cache.report(values_.counts);
  }
  FastDecoder(const FastDecoder&) = delete;
  FastDecoder& operator=(const FastDecoder&) = delete;

  // The object, a new reference. nullptr: a Python error is set, or, if gave_up(),
  // the text is not one this decoder reads (no error set).
  PyObject* decode() {
    if (p_ >= end_ || *p_ != '{') return give_up();
    ++p_;
    PyObject* v = object(0);
    if (v != nullptr && p_ != end_) {
      Py_DECREF(v);
      return give_up();
    }
    return v;
  }

  bool gave_up() const { return gave_up_; }

 private:
  PyObject* give_up() {
    gave_up_ = true;
    return nullptr;
  }

  // True (and past them) if the next two bytes are a, b (", " or ": ").
  bool consume2(char a, char b) {
    if (end_ - p_ < 2 || p_[0] != a || p_[1] != b) return false;
    p_ += 2;
    return true;
  }
  bool consume_word(const char* word, std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  }

  // After '{'. The members wait on the item stack, so that the dict is made at its
  // final size.
  PyObject* object(int depth) {
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return PyDict_New();
    }
    const std::size_t base = items_.size();
    for (;;) {
      if (p_ >= end_ || *p_ != '"') break;
      ++p_;
      PyObject* key = string(true);
      if (key == nullptr) break;
      items_.push_back(key);
      if (!consume2(':', ' ')) {
        give_up();
        break;
      }
      PyObject* v = value(depth);
      if (v == nullptr) break;
      items_.push_back(v);
      if (p_ < end_ && *p_ == '}') {
        ++p_;
        return make_dict(base);
      }
      if (!consume2(',', ' ')) break;
    }
    return fail(base);
  }

  // After '['.
  PyObject* array(int depth) {
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return make_list(items_.size());
    }
    const std::size_t base = items_.size();
    for (;;) {
      PyObject* v = value(depth);
      if (v == nullptr) break;
      items_.push_back(v);
      if (p_ < end_ && *p_ == ']') {
        ++p_;
        return make_list(base);
      }
      if (!consume2(',', ' ')) break;
    }
    return fail(base);
  }

  // A dict of the key, value pairs on the item stack from `base`, which it pops.
  PyObject* make_dict(std::size_t base) {
    const Py_ssize_t n = static_cast<Py_ssize_t>((items_.size() - base) / 2);
    PyObject* dict = new_dict(n);
    int rc = dict != nullptr ? 0 : -1;
    // By index: making the dict may have run a finalizer that decoded a value too
    // (the stack is back to its size, but may have moved).
    for (std::size_t i = base; i < items_.size(); i += 2) {
      if (rc == 0) rc = PyDict_SetItem(dict, items_[i], items_[i + 1]);
      Py_DECREF(items_[i]);
      Py_DECREF(items_[i + 1]);
    }
    items_.resize(base);
    if (rc < 0) {
      Py_XDECREF(dict);
      return nullptr;
    }
    return dict;
  }

  // A list of the items on the stack from `base`, which it pops.
  //
  // A list holding no container (every item a str, int, float, bool or None; or
  // none at all) is left untracked by the cyclic GC, as CPython leaves a dict of
  // atomic values: it cannot be part of a reference cycle, and a kept result's
  // tracked containers are what every later collection walks again (issue 14:
  // kept get results cost 3-4x their decoding in collections). Nothing can be
  // freed early: the collector treats what an untracked object refers to as
  // referenced from outside. The one difference from json.loads' list: CPython never
  // re-tracks a list, so a reference cycle a caller later closes through such a list
  // (appending a container that refers back to it) is freed only once the caller
  // breaks it, not by gc.collect(). json.dumps refuses a cyclic value, so no value
  // meant for a store holds one (docs/python.md).
  PyObject* make_list(std::size_t base) {
    const std::size_t n = items_.size() - base;
    PyObject* list = PyList_New(static_cast<Py_ssize_t>(n));
    if (list == nullptr) return fail(base);
    bool atomic = true;
    for (std::size_t i = 0; i < n; ++i) {
      PyObject* item = items_[base + i];
      // The decoder makes exact dicts and lists only.
      if (PyList_CheckExact(item) || PyDict_CheckExact(item)) atomic = false;
      PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
    }
    items_.resize(base);
    if (atomic) PyObject_GC_UnTrack(list);
    return list;
  }

  // Drops what the current container holds so far; nullptr, a Python error set or
  // gave_up().
  PyObject* fail(std::size_t base) {
    for (std::size_t i = base; i < items_.size(); ++i) Py_DECREF(items_[i]);
    items_.resize(base);
    if (!PyErr_Occurred()) give_up();
    return nullptr;
  }

  // A value inside a container at `depth`.
  PyObject* value(int depth) {
    if (p_ >= end_) return give_up();
    switch (*p_) {
      case '"':
        ++p_;
        return string(false);
      case '{':
        if (depth >= kFastDepth) return give_up();
        ++p_;
        return object(depth + 1);
      case '[':
        if (depth >= kFastDepth) return give_up();
        ++p_;
        return array(depth + 1);
      case 't':
        if (!consume_word("true", 4)) return give_up();
        Py_RETURN_TRUE;
      case 'f':
        if (!consume_word("false", 5)) return give_up();
        Py_RETURN_FALSE;
      case 'n':
        if (!consume_word("null", 4)) return give_up();
        Py_RETURN_NONE;
      case 'N':
        if (!consume_word("NaN", 3)) return give_up();
        return PyFloat_FromDouble(std::numeric_limits<double>::quiet_NaN());
      case 'I':
        if (!consume_word("Infinity", 8)) return give_up();
        return PyFloat_FromDouble(std::numeric_limits<double>::infinity());
      default:
        return number();
    }
  }

  // After the opening quote. Keys, and values up to kMaxCachedValue bytes of raw
  // text, come from the caches.
  PyObject* string(bool is_key) {
    const char* start = p_;
    const std::size_t plain = plain_ascii_run(start, end_);
    const char* close = start + plain;
    bool escaped = false;
    MeasureSink measure;
    if (close >= end_ || *close != '"') {
      close = walk_string(start, end_, measure);
      if (close == nullptr) return give_up();
      escaped = true;
    }
    p_ = close + 1;
    const std::size_t n = static_cast<std::size_t>(close - start);
    if (n <= (is_key ? StrCache::kMaxLength : kMaxCachedValue)) {
      Lookups& l = is_key ? keys_ : values_;
      if (!l.bypass) {
        const std::uint64_t hash = StrCache::hash(start, n);
        ++l.counts.lookups;
        if (PyObject* str = l.cache.find(start, n, hash)) {
          Py_INCREF(str);
          return str;
        }
        ++l.counts.misses;
        PyObject* str = escaped ? new_escaped_str(start, close, measure) : new_ascii_str(start, n);
        if (str == nullptr) return nullptr;
        return l.cache.keep(start, n, hash, str);
      }
      ++l.counts.bypassed;
    }
    return escaped ? new_escaped_str(start, close, measure) : new_ascii_str(start, n);
  }

  // The str of the literal [start, close) with escapes, measured by `m`.
  static PyObject* new_escaped_str(const char* start, const char* close, const MeasureSink& m) {
    PyObject* str = PyUnicode_New(m.length, m.max_char);
    if (str == nullptr) return nullptr;
    switch (PyUnicode_KIND(str)) {
      case PyUnicode_1BYTE_KIND:
        WriteSink<Py_UCS1>{PyUnicode_1BYTE_DATA(str)}.literal(start, close, m);
        break;
      case PyUnicode_2BYTE_KIND:
        WriteSink<Py_UCS2>{PyUnicode_2BYTE_DATA(str)}.literal(start, close, m);
        break;
      default:
        WriteSink<Py_UCS4>{PyUnicode_4BYTE_DATA(str)}.literal(start, close, m);
        break;
    }
    return str;
  }

  // A number (json::scan_number's grammar), or -Infinity.
  PyObject* number() {
    const char* start = p_;
    if (end_ - p_ >= 2 && p_[0] == '-' && p_[1] == 'I') {
      if (!consume_word("-Infinity", 9)) return give_up();
      return PyFloat_FromDouble(-std::numeric_limits<double>::infinity());
    }
    const json::NumberToken token = json::scan_number(start, end_);
    if (token.end == start) return give_up();
    p_ = token.end;
    if (token.is_float) {
      return PyFloat_FromDouble(
          json::parse_float(std::string_view(start, static_cast<std::size_t>(token.end - start))));
    }
    const bool negative = *start == '-';
    const char* digits = start + (negative ? 1 : 0);
    if (token.end - digits <= 18) {
      long long v = 0;
      for (const char* d = digits; d < token.end; ++d) v = v * 10 + (*d - '0');
      return PyLong_FromLongLong(negative ? -v : v);
    }
    const std::string text(start, static_cast<std::size_t>(token.end - start));
    return PyLong_FromString(text.c_str(), nullptr, 10);
  }

  // The members and items of the open containers, every decoder of the thread on the
  // same stack (a finalizer run while a value is built may decode another): each
  // container pops what it pushed. Not freed between decodes, so none allocates.
  static std::vector<PyObject*>& item_stack() {
    static thread_local std::vector<PyObject*> stack;
    return stack;
  }

  const char* p_;
  const char* end_;
  std::vector<PyObject*>& items_;
  // A cache, whether this decode bypasses it, and what it did with it.
  struct Lookups {
    explicit Lookups(StrCache& c) : cache(c), bypass(c.bypassing()) {}
    StrCache& cache;
    const bool bypass;
    StrCache::Counts counts;
  };
  Lookups keys_;
  Lookups values_;
  bool gave_up_ = false;
};

// Builds Python objects from what the validating parser reports.
class Builder final : public json::Handler {
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

  void start_object() override { open(PyDict_New()); }
  void start_array() override { open(PyList_New(0)); }
  void end_object() override { stack_.pop_back(); }
  void end_array() override { stack_.pop_back(); }
  void key(std::string_view k) override {
    Py_XDECREF(pending_key_);
    pending_key_ = new_str(k);
    if (pending_key_ == nullptr) throw_python_error();
  }
  void string(std::string_view s) override { add(new_str(s)); }
  void integer(std::string_view digits) override {
    if (digits.size() <= 18) {
      long long v = 0;
      std::from_chars(digits.data(), digits.data() + digits.size(), v);
      add(PyLong_FromLongLong(v));
    } else {
      const std::string text(digits);
      add(PyLong_FromString(text.c_str(), nullptr, 10));
    }
  }
  void floating(double v) override { add(PyFloat_FromDouble(v)); }
  void boolean(bool b) override {
    PyObject* v = b ? Py_True : Py_False;
    Py_INCREF(v);
    add(v);
  }
  void null() override {
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
  FastDecoder fast(canonical_text);
  if (PyObject* v = fast.decode()) return nb::steal(v);
  if (!fast.gave_up()) throw_python_error();
  // Not the canonical form FastDecoder reads: the validating parser decides.
  const std::size_t first = canonical_text.find_first_not_of(" \t\n\r");
  auto corrupt = [&](std::size_t offset, const std::string& reason) {
    return Error(ErrorCode::kCorruption, "stored value is not valid JSON at " +
                                             json::describe_offset(canonical_text, offset) + ": " +
                                             reason);
  };
  if (first == std::string_view::npos || canonical_text[first] != '{') {
    throw corrupt(first == std::string_view::npos ? canonical_text.size() : first,
                  "not a JSON object");
  }
  Builder builder;
  try {
    json::parse(canonical_text, builder);
  } catch (const json::SyntaxError& e) {
    throw corrupt(e.offset(), e.reason());
  }
  return builder.take();
}

std::optional<nb::object> decode_value_fast_only(std::string_view text) {
  FastDecoder fast(text);
  if (PyObject* v = fast.decode()) return nb::steal(v);
  if (!fast.gave_up()) throw_python_error();
  return std::nullopt;
}

nb::object decode_str(std::string_view wtf8) {
  PyObject* s = new_str(wtf8);
  if (s == nullptr) throw_python_error();
  return nb::steal(s);
}

StrArg::StrArg(PyObject* str, const char* what) {
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
