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

#include "kvdex/value.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kvdex::detail {

// ---- Scanning (shared by the codec and the Python module's decoder) ---------------

inline bool is_plain_ascii(unsigned char c) {
  return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

#if defined(__SSE2__)
// Lanes of the 16 bytes at p that are not plain ASCII, as a 16-bit mask. Signed
// compare: bytes >= 0x80 are negative, so "< 0x20" catches them too.
inline unsigned non_plain_mask(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i special = _mm_or_si128(
      _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))),
      _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
  return static_cast<unsigned>(_mm_movemask_epi8(special));
}
#endif

// Length of the prefix of [p, end) made of bytes that json.dumps copies unchanged
// (0x20..0x7e except '"' and '\\'), which is also what a string literal of canonical
// text holds between escapes. This loop is most of a load's and of a Python get's CPU
// time: the strings of LlamaIndex nodes are long runs of plain text. SSE2 is part of
// x86-64, so it needs no runtime dispatch; elsewhere eight bytes at a time. 16 bytes
// first (most keys and short values end there), then 32 at a time.
inline std::size_t plain_ascii_run(const char* p, const char* end) {
  const char* start = p;
#if defined(__SSE2__)
  auto found = [&](const char* at, unsigned mask) {
    return static_cast<std::size_t>(at - start) + static_cast<std::size_t>(__builtin_ctz(mask));
  };
  if (end - p >= 16) {
    if (const unsigned m = non_plain_mask(p)) return found(p, m);
    p += 16;
    while (end - p >= 32) {
      if (const unsigned m = non_plain_mask(p) | non_plain_mask(p + 16) << 16) return found(p, m);
      p += 32;
    }
    if (end - p >= 16) {
      if (const unsigned m = non_plain_mask(p)) return found(p, m);
      p += 16;
    }
  }
#else
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
  while (end - p >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    // A byte is special if < 0x20, >= 0x7f, '"' or '\\'.
    const std::uint64_t below_space = (word - kOnes * 0x20) & ~word;
    const std::uint64_t at_or_above_del = (word + kOnes * 0x01) | word;  // high bit if >= 0x7f
    const std::uint64_t quote = word ^ (kOnes * '"');
    const std::uint64_t backslash = word ^ (kOnes * '\\');
    const std::uint64_t is_quote = (quote - kOnes) & ~quote;
    const std::uint64_t is_backslash = (backslash - kOnes) & ~backslash;
    if (((below_space | at_or_above_del | is_quote | is_backslash) & kHighs) != 0) break;
    p += 8;
  }
#endif
  while (p < end && is_plain_ascii(static_cast<unsigned char>(*p))) ++p;
  return static_cast<std::size_t>(p - start);
}

// The value of a hex digit, or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Nesting deeper than this is rejected. CPython's own json stops near 1,000 levels
// (its recursion limit), so nothing Python writes is refused.
inline constexpr int kMaxJsonDepth = 2048;

// Thrown by the parser; callers add the file or value name and rethrow a kvdex::Error.
struct JsonSyntaxError {
  std::size_t offset;  // byte offset in the text handed to the parser
  std::string message;
};

// "byte 17 (line 2, column 5)"
std::string describe_offset(std::string_view text, std::size_t offset);

// ---- Writing ------------------------------------------------------------------------

// Appends `s` (WTF-8) as a JSON string literal with ensure_ascii escaping.
// Throws Error(kInvalidArgument) if `s` is not WTF-8.
void append_json_string(std::string& out, std::string_view s);

// Appends "\uXXXX" (lowercase hex) for a UTF-16 code unit, as json.dumps writes it.
void append_u_escape(std::string& out, unsigned unit);

// Appends a double as Python's float.__repr__ (json.dumps' float format).
void append_python_float(std::string& out, double value);

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
  explicit JsonParser(std::string_view text) : text_(text) {}

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

  // Parses one value (after whitespace), reporting it to `handler`.
  template <class Handler>
  void parse_value(Handler& handler);

  [[noreturn]] void fail(std::size_t at, std::string message) const {
    throw JsonSyntaxError{at, std::move(message)};
  }

 private:
  template <class Handler>
  void parse_scalar(Handler& handler);
  // Validates a number at pos_ and returns its text; sets is_float.
  std::string_view scan_number(bool& is_float);

  std::string_view text_;
  std::size_t pos_ = 0;
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

double parse_python_float(std::string_view text);

// Is `text` exactly what json.dumps writes for some JSON object? (No surrounding
// whitespace.) A true answer also means the text is valid.
bool is_canonical_object(std::string_view text);

// Parses any json.loads-acceptable text of a single JSON object (surrounding
// whitespace allowed) and returns its canonical form. Throws JsonSyntaxError, with
// the message "not a JSON object" when the value parsed is of another type.
std::string canonicalize_object(std::string_view text);
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
      if (static_cast<int>(stack.size()) >= kMaxJsonDepth) fail(pos_, "nesting too deep");
      ++pos_;
      handler.start_object();
      if (peek() == '}') {
        ++pos_;
        handler.end_object();
      } else {
        if (peek() != '"') fail(pos_, "expecting property name enclosed in double quotes");
        handler.key(parse_string(scratch_));
        expect(':', "expecting ':' delimiter");
        stack.push_back('{');
        continue;
      }
    } else if (c == '[') {
      if (static_cast<int>(stack.size()) >= kMaxJsonDepth) fail(pos_, "nesting too deep");
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
          if (peek() != '"') fail(pos_, "expecting property name enclosed in double quotes");
          handler.key(parse_string(scratch_));
          expect(':', "expecting ':' delimiter");
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
        bool is_float = false;
        const std::string_view number = scan_number(is_float);
        if (is_float) {
          handler.floating(parse_python_float(number));
        } else {
          handler.integer(number);
        }
        return;
      }
  }
  fail(start, "expecting value");
}

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_CORE_JSON_CODEC_H_
