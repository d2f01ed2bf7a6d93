// kvdex::json — the Python-compatible JSON text that kvdex stores, for code built on
// kvdex (the kvdex CLI and the Python package use only this).
//
// Writing follows CPython's json.dumps with its defaults (ensure_ascii=True,
// separators ", " and ": ", allow_nan=True, float repr); reading follows json.loads
// (NaN/Infinity/-Infinity, any \u escape including lone surrogates, integers of any
// size, duplicate keys where the last value wins at the first key's position). That
// form is "canonical": what EncodedValue::text() holds.
//
// Strings are WTF-8: UTF-8 that may also hold a surrogate code point in its 3-byte
// form, so that a lone surrogate survives a round trip.
//
// JSON Lines records ({"collection": C, "key": K, "value": V} per line) are the
// export/import format of `kvdex export` and `kvdex import`.
//
// Thread safety: every function here is safe to call from many threads at once.
// Errors: malformed text is reported as json::SyntaxError, a kvdex::Error with code
// kInvalidArgument whose message names the byte offset; other misuse is
// Error(kInvalidArgument). Nothing here prints or aborts.
#ifndef KVDEX_JSON_H_
#define KVDEX_JSON_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "kvdex/error.h"
#include "kvdex/value.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kvdex::json {

// ---- Writing ------------------------------------------------------------------------

// Appends `s` (WTF-8) as json.dumps writes a str: in double quotes, with
// ensure_ascii escaping. Throws Error(kInvalidArgument, "string is not valid UTF-8
// at byte N of the string") if `s` is not WTF-8; `out` may then hold a partial
// literal.
void append_quoted(std::string& out, std::string_view s);

// append_quoted into a new string: quote("a\"b") == "\"a\\\"b\"".
std::string quote(std::string_view s);

// Appends "\uXXXX" (lowercase hex) for the UTF-16 code unit `unit` (< 0x10000), as
// json.dumps escapes characters it has no short escape for.
void append_u_escape(std::string& out, unsigned unit);

// Appends `value` as Python's float.__repr__ writes it, which is json.dumps' float
// format: "0.1", "1e-05", "1e+16", "NaN", "-Infinity".
void append_float(std::string& out, double value);

// ---- Error messages -----------------------------------------------------------------

// A key or collection name as messages quote it: the JSON string literal of the
// part kvdex::shorten_for_message (kvdex/error.h) shows, then its "...(N bytes)" if
// shortened: "\"docstore/data\"". Never throws: bytes that are not WTF-8 are
// shown as \ufffd.
std::string quote_for_message(std::string_view text);

// "byte 17 (line 2, column 5)": where `offset` (clamped to the text's size) is in
// `text`, lines and columns counted from 1.
std::string describe_offset(std::string_view text, std::size_t offset);

// Text that is not JSON as json.loads reads it. what() is
// "<reason> at byte N (line L, column C)", e.g.
// "expecting ',' delimiter at byte 9 (line 1, column 10)"; code() is kInvalidArgument.
class SyntaxError : public Error {
 public:
  SyntaxError(std::string_view text, std::size_t offset, std::string reason);

  // Byte offset in the text that was parsed.
  std::size_t offset() const noexcept { return offset_; }
  // What was wrong there, as json.loads says it ("expecting value", "extra data").
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::size_t offset_;
  std::string reason_;
};

// ---- Reading ------------------------------------------------------------------------

// Receives one value's parts in document order. Strings are WTF-8 and valid only
// during the call; integer() gets the digits as written, sign included ("-12"), so
// integers of any size stay exact. An exception thrown by a handler ends the parse
// and propagates unchanged.
class Handler {
 public:
  virtual ~Handler() = default;
  virtual void start_object() = 0;
  virtual void key(std::string_view key) = 0;
  virtual void end_object() = 0;
  virtual void start_array() = 0;
  virtual void end_array() = 0;
  virtual void string(std::string_view value) = 0;
  virtual void integer(std::string_view digits) = 0;
  virtual void floating(double value) = 0;
  virtual void boolean(bool value) = 0;
  virtual void null() = 0;
};

// The readers below take text as json.loads takes a str: a leading UTF-8 BOM (U+FEFF)
// is an error ("expecting value" at byte 0). Entry points that read bytes (files,
// EncodedValue::parse, parse_record) skip one, as json.loads(bytes) does.
//
// Parses `text`, one JSON value with optional whitespace around it, reporting it to
// `handler`. Duplicate keys are all reported, in order. Throws SyntaxError for text
// json.loads rejects: also nesting deeper than 900 levels (json.loads' limit depends
// on its caller's stack; see docs/design-notes.md) and integers of more than
// max_int_digits() digits.
void parse(std::string_view text, Handler& handler);

// The canonical text of `text`, any JSON value json.loads accepts (whitespace
// around it allowed): canonicalize(" [1.50, {\"a\": 1, \"a\": 2}] ") ==
// "[1.5, {\"a\": 2}]". Throws SyntaxError.
std::string canonicalize(std::string_view text);

// As canonicalize, for text that must hold a JSON object: a stored value, which nests
// at most 898 levels (its persist file adds two). Throws SyntaxError, with reason
// "not a JSON object" at the value's first byte when the text is valid JSON of
// another type.
std::string canonicalize_object(std::string_view text);

// Is `text` exactly canonical object text (no surrounding whitespace, distinct keys)?
// A true answer also means the text is valid JSON and canonicalize_object(text) ==
// text.
bool is_canonical_object(std::string_view text);

// As is_canonical_object, but keys may repeat: what json.dumps writes for a dict whose
// keys differ in Python but not as JSON, and so what EncodedValue::text() may hold.
// One pass, no allocation: the check for text read back from a store before it is
// handed on (kvdex's LMDB backend checks only the shape on its read path).
bool is_dumps_object(std::string_view text);

// The most digits an integer may have, as Python's sys.get_int_max_str_digits():
// json.loads refuses longer ones (ValueError), so kvdex refuses them too. 4,300 (the
// default of Python 3.11+) unless set; 0 means no limit. Process-wide, as in Python;
// the Python package sets it from sys before it parses. Thread-safe.
std::size_t max_int_digits() noexcept;
void set_max_int_digits(std::size_t digits) noexcept;

// ---- Scanning: building blocks for fast readers of canonical text -------------------
// Inline: they are the inner loops of loading a persist file and of the Python
// package's get().

// Bytes that json.dumps copies into a string literal unchanged: 0x20..0x7e except
// '"' and '\\'.
inline bool is_plain_ascii(unsigned char c) {
  return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
}

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The value of a hex digit (either case), or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

namespace internal {
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
}  // namespace internal

// Length of the prefix of [p, end) made of plain ASCII bytes (is_plain_ascii), which
// is what a string literal of canonical text holds between escapes. Reads only
// inside [p, end).
//
// This loop is most of a load's and of a Python get's CPU time: the strings of
// LlamaIndex nodes are long runs of plain text. SSE2 is part of x86-64, so it needs
// no runtime dispatch; elsewhere eight bytes at a time. 16 bytes first (most keys
// and short values end there), then 32 at a time.
inline std::size_t plain_ascii_run(const char* p, const char* end) {
  const char* start = p;
#if defined(__SSE2__)
  auto found = [&](const char* at, unsigned mask) {
    return static_cast<std::size_t>(at - start) + static_cast<std::size_t>(__builtin_ctz(mask));
  };
  if (end - p >= 16) {
    if (const unsigned m = internal::non_plain_mask(p)) return found(p, m);
    p += 16;
    while (end - p >= 32) {
      if (const unsigned m = internal::non_plain_mask(p) | internal::non_plain_mask(p + 16) << 16)
        return found(p, m);
      p += 32;
    }
    if (end - p >= 16) {
      if (const unsigned m = internal::non_plain_mask(p)) return found(p, m);
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

// A number token: [begin, end) of the text, and whether it has a fraction or an
// exponent (a float to Python) or not (an int).
struct NumberToken {
  const char* end;
  bool is_float;
};

// The JSON number grammar, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?, matched
// as json.loads' scanner matches it: the longest prefix of [p, end) it accepts, so
// "1.x" is the number "1" followed by ".x" (which the caller rejects).
// Returns end == p when [p, end) does not start with a number (e.g. "-", "+1", ".5").
inline NumberToken scan_number(const char* p, const char* end) {
  const char* q = p;
  if (q < end && *q == '-') ++q;
  if (q >= end || !is_digit(*q)) return {p, false};
  if (*q == '0') {
    ++q;
  } else {
    while (q < end && is_digit(*q)) ++q;
  }
  bool is_float = false;
  if (end - q >= 2 && *q == '.' && is_digit(q[1])) {
    q += 2;
    while (q < end && is_digit(*q)) ++q;
    is_float = true;
  }
  if (q < end && (*q == 'e' || *q == 'E')) {
    const char* e = q + 1;
    if (e < end && (*e == '+' || *e == '-')) ++e;
    if (e < end && is_digit(*e)) {
      while (e < end && is_digit(*e)) ++e;
      q = e;
      is_float = true;
    }
  }
  return {q, is_float};
}

// The double a float token (see scan_number) denotes, as Python's float() gives it:
// correctly rounded, ±inf beyond the range, ±0.0 below it. Also accepts the text of
// any number token ("12" is 12.0).
double parse_float(std::string_view number);

// ---- JSON Lines records -------------------------------------------------------------

// One line of an export: a key-value pair and its collection.
struct Record {
  std::string collection;
  std::string key;
  EncodedValue value;
};

// Appends the record {"collection": C, "key": K, "value": V} and a newline, with
// `value_text` (canonical object text, e.g. EncodedValue::text() or what
// BaseKVStore::scan gives) copied as it is. Throws Error(kInvalidArgument) if
// `collection` or `key` is not WTF-8.
void append_record(std::string& out, std::string_view collection, std::string_view key,
                   std::string_view value_text);

// Reads one record line (a leading UTF-8 BOM and a trailing "\n" or "\r\n" allowed,
// as json.loads(bytes) allows them; members in any order, other
// members ignored, duplicates resolved as json.loads does). A missing "collection"
// is kDefaultCollection ("data"). Throws Error(kInvalidArgument): SyntaxError for
// text that is not a JSON object (its offset counted in `line`), else with one of
// the messages "\"collection\" must be a string", "\"key\" must be a string",
// "\"value\" must be a JSON object", "missing \"key\"", "missing \"value\"".
Record parse_record(std::string_view line);

}  // namespace kvdex::json

#endif  // KVDEX_JSON_H_
