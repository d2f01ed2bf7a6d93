// Internal: the Python-compatible JSON codec.
//
// Writing follows CPython's json.dumps with its defaults (ensure_ascii=True,
// separators ", " and ": ", allow_nan=True, float repr). Reading follows
// json.loads: NaN/Infinity/-Infinity literals, any \u escape including lone
// surrogates, raw UTF-8 including encoded surrogates (Python decodes persist files
// with 'surrogatepass'), integers of any size, duplicate keys where the last value
// wins at the first key's position, and nothing else.
//
// Strings handed to handlers are WTF-8: UTF-8 that may also hold a surrogate code
// point as its 3-byte form, so that a lone surrogate survives a round trip.
#ifndef KVDEX_SRC_CORE_JSON_CODEC_H_
#define KVDEX_SRC_CORE_JSON_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "kvdex/json.h"
#include "kvdex/value.h"

namespace kvdex::detail {

// The scanning building blocks are public (kvdex/json.h); the codec uses them
// under their old names.
using json::hex_value;
using json::is_digit;
using json::is_plain_ascii;
using json::plain_ascii_run;

// Nesting deeper than this is rejected. CPython's json.loads has no fixed limit: its
// C scanner raises RecursionError when nesting plus the caller's Python frames reach
// the recursion limit (1,000 by default), so a bare `python3 -c` accepts 994 levels
// and LlamaIndex, loading from deeper in a stack (a notebook, a server, pytest), a
// few dozen fewer. Accepting more would store files LlamaIndex cannot load back, so
// the cap leaves room for about 100 caller frames. See docs/design-notes.md.
inline constexpr int kMaxJsonDepth = 900;
// A stored value sits two levels down a persist file ({collection: {key: value}}),
// so values nest at most this deep for their file to stay within kMaxJsonDepth.
inline constexpr int kMaxValueDepth = kMaxJsonDepth - 2;

// Thrown by the parser; callers add the file or value name and rethrow a kvdex::Error.
struct JsonSyntaxError {
  std::size_t offset;  // byte offset in the text handed to the parser
  std::string message;
};

using json::describe_offset;

// The SyntaxError a public function throws for an internal JsonSyntaxError.
[[noreturn]] void throw_syntax_error(std::string_view text, const JsonSyntaxError& error);

// ---- Writing ------------------------------------------------------------------------

// The writers are public (kvdex/json.h); these are their names inside the codec.
inline void append_json_string(std::string& out, std::string_view s) {
  json::append_quoted(out, s);
}
using json::append_u_escape;
inline void append_python_float(std::string& out, double value) { json::append_float(out, value); }

// Appends any Value as json.dumps would.
void append_python_json(std::string& out, const Value& value);

// ---- Reading ------------------------------------------------------------------------

// A SAX handler receives:
//   start_object(), key(std::string_view), end_object(),
//   start_array(), end_array(),
//   string(std::string_view), integer(std::string_view digits_with_sign),
//   floating(double), boolean(bool), null().
// Strings are WTF-8 and valid only during the call.
class JsonParser {
 public:
  explicit JsonParser(std::string_view text, int max_depth = kMaxJsonDepth)
      : text_(text), max_depth_(max_depth), max_int_digits_(json::max_int_digits()) {}

  // The deepest nesting parse_value accepts from here on, counted from the value it
  // starts at.
  void set_max_depth(int max_depth) { max_depth_ = max_depth; }

  std::size_t position() const { return pos_; }
  void set_position(std::size_t pos) { pos_ = pos; }
  bool at_end() const { return pos_ >= text_.size(); }
  std::string_view text() const { return text_; }

  void skip_whitespace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }
  // The next byte after whitespace, or '\0' at the end.
  char peek() {
    skip_whitespace();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }
  void expect(char c, const char* what);

  // Parses a string literal at the current position (after whitespace). The result
  // points into the text when it needs no decoding, else into `scratch`.
  std::string_view parse_string(std::string& scratch);

  // Parses `"name":` (after whitespace) and returns the name, as parse_string.
  std::string_view parse_member_name(std::string& scratch) {
    if (peek() != '"') fail(pos_, "expecting property name enclosed in double quotes");
    const std::string_view name = parse_string(scratch);
    expect(':', "expecting ':' delimiter");
    return name;
  }

  // Parses one value (after whitespace), reporting it to `handler`.
  template <class Handler>
  void parse_value(Handler& handler);

  // What json.loads' ValueError says for an integer over the digit limit.
  std::string int_digits_message(std::size_t count) const;

  [[noreturn]] void fail(std::size_t at, std::string message) const {
    throw JsonSyntaxError{at, std::move(message)};
  }

 private:
  template <class Handler>
  void parse_scalar(Handler& handler);
  // A private helper of parse_string: the literal opened at `open` from `i` on,
  // where it needs decoding or holds non-ASCII bytes to validate.
  std::string_view parse_escaped_string(std::size_t open, std::size_t i, std::string& scratch);
  // Decodes the escape at text_[i] == '\\' into scratch; returns the index after it.
  std::size_t decode_escape(std::size_t open, std::size_t i, std::string& scratch);
  // The UTF-16 unit of the "\\uXXXX" at `at`, or -1 if it is not one.
  long read_u_escape(std::size_t at) const;

  std::string_view text_;
  std::size_t pos_ = 0;
  int max_depth_;
  std::size_t max_int_digits_;  // 0: unlimited
  std::string scratch_;
};

// A handler that ignores everything: JsonParser::parse_value(discard) validates and
// skips one value (e.g. one kvdex will reject, so that a syntax error later in the
// text is still the error reported, as in Python).
struct DiscardHandler {
  void start_object() {}
  void end_object() {}
  void start_array() {}
  void end_array() {}
  void key(std::string_view) {}
  void string(std::string_view) {}
  void integer(std::string_view) {}
  void floating(double) {}
  void boolean(bool) {}
  void null() {}
};

inline double parse_python_float(std::string_view text) { return json::parse_float(text); }

// The offset of the first byte of `s` that does not begin a valid WTF-8 sequence
// (UTF-8, where a surrogate code point's 3-byte form, ED A0..BF xx, is allowed), or
// std::string_view::npos if `s` is WTF-8. Runs of ASCII are skipped 8 bytes at a time.
std::size_t find_invalid_wtf8(std::string_view s) noexcept;
inline bool is_wtf8(std::string_view s) noexcept {
  return find_invalid_wtf8(s) == std::string_view::npos;
}

// A key or collection name for a message: shortened (shorten_for_message), each byte
// that is not part of a WTF-8 sequence shown as \xHH. Never throws but for memory.
std::string escape_for_message(std::string_view name);

// "key '\xff\xfe' is not valid UTF-8 (byte 0xff at offset 0)": why `name` (a key
// or collection name, as `what` says) is refused, or the empty string if it is WTF-8.
std::string describe_invalid_name(std::string_view name, std::string_view what);

// Is `text` exactly what json.dumps writes for some JSON object, with distinct keys?
// (No surrounding whitespace.) A true answer also means the text is valid and that
// canonicalize_object(text) == text.
bool is_canonical_object(std::string_view text);

// As is_canonical_object, but duplicate keys allowed: json.dumps writes them for a
// dict whose keys differ in Python but not as JSON ({1: "a", "1": "b"}, or two lone
// surrogates next to the pair they spell). Such text is what an EncodedValue may
// hold; reading it back, the last duplicate wins, as in json.loads.
bool is_dumps_object(std::string_view text);

// Parses any json.loads-acceptable text of a single JSON object (surrounding
// whitespace allowed) and returns its canonical form. Throws JsonSyntaxError, with
// the message "not a JSON object" when the value parsed is of another type.
std::string canonicalize_object(std::string_view text, int max_depth = kMaxValueDepth);
// The same for any JSON value (used by from_python_json).
std::string canonicalize_any(std::string_view text);

// Parses one value at the parser's position (after whitespace) and returns its
// canonical text, leaving the parser just after it. Throws JsonSyntaxError.
std::string parse_canonical_value(JsonParser& parser);

// Builds a Value from canonical text. Throws Error(kOutOfRange) for integers beyond
// 64 bits and Error(kCorruption) when the text is not valid JSON (it came from a
// store, so the store holds bad bytes).
Value decode_canonical(std::string_view text);

// Escapes a key or collection name for the persist file; ASCII-only fast path.
inline void append_key(std::string& out, std::string_view key) { append_json_string(out, key); }

// ---- Template implementation ------------------------------------------------------

template <class Handler>
void JsonParser::parse_value(Handler& handler) {
  // Iterative, so a deep document cannot overflow the C++ stack. `stack` holds '{'
  // or '[' for every open container.
  std::vector<char> stack;
  for (;;) {
    // Parse one value start.
    const char c = peek();
    if (c == '{') {
      if (static_cast<int>(stack.size()) >= max_depth_) fail(pos_, "nesting too deep");
      ++pos_;
      handler.start_object();
      if (peek() == '}') {
        ++pos_;
        handler.end_object();
      } else {
        handler.key(parse_member_name(scratch_));
        stack.push_back('{');
        continue;
      }
    } else if (c == '[') {
      if (static_cast<int>(stack.size()) >= max_depth_) fail(pos_, "nesting too deep");
      ++pos_;
      handler.start_array();
      if (peek() == ']') {
        ++pos_;
        handler.end_array();
      } else {
        stack.push_back('[');
        continue;
      }
    } else {
      parse_scalar(handler);
    }
    // After a complete value: close containers or move to the next element.
    for (;;) {
      if (stack.empty()) return;
      const char next = peek();
      if (stack.back() == '{') {
        if (next == ',') {
          ++pos_;
          handler.key(parse_member_name(scratch_));
          break;
        }
        if (next == '}') {
          ++pos_;
          stack.pop_back();
          handler.end_object();
          continue;
        }
        fail(pos_, "expecting ',' delimiter");
      } else {
        if (next == ',') {
          ++pos_;
          break;
        }
        if (next == ']') {
          ++pos_;
          stack.pop_back();
          handler.end_array();
          continue;
        }
        fail(pos_, "expecting ',' delimiter");
      }
    }
  }
}

template <class Handler>
void JsonParser::parse_scalar(Handler& handler) {
  const std::size_t start = pos_;
  const char c = pos_ < text_.size() ? text_[pos_] : '\0';
  auto literal = [&](std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  };
  switch (c) {
    case '"':
      handler.string(parse_string(scratch_));
      return;
    case 't':
      if (literal("true")) return handler.boolean(true);
      break;
    case 'f':
      if (literal("false")) return handler.boolean(false);
      break;
    case 'n':
      if (literal("null")) return handler.null();
      break;
    case 'N':
      if (literal("NaN")) return handler.floating(std::numeric_limits<double>::quiet_NaN());
      break;
    case 'I':
      if (literal("Infinity")) return handler.floating(std::numeric_limits<double>::infinity());
      break;
    case '-':
      if (literal("-Infinity")) return handler.floating(-std::numeric_limits<double>::infinity());
      [[fallthrough]];
    default:
      if (c == '-' || (c >= '0' && c <= '9')) {
        const char* const begin = text_.data() + pos_;
        const json::NumberToken number = json::scan_number(begin, text_.data() + text_.size());
        if (number.end == begin) fail(start, "expecting value");
        const std::string_view digits(begin, static_cast<std::size_t>(number.end - begin));
        pos_ += digits.size();
        if (number.is_float) {
          handler.floating(parse_python_float(digits));
        } else {
          const std::size_t count = digits.size() - (c == '-' ? 1 : 0);
          if (max_int_digits_ != 0 && count > max_int_digits_)
            fail(start, int_digits_message(count));
          handler.integer(digits);
        }
        return;
      }
  }
  fail(start, "expecting value");
}

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_CORE_JSON_CODEC_H_
