#include "core/json_codec.h"

#include <locale.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <clocale>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <unordered_map>

#include "kvdex/error.h"
#include "kvdex/kvstore.h"
#include "kvdex/write_batch.h"

namespace kvdex::detail {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Decodes one WTF-8 sequence starting at s[i] (a byte >= 0x80). Returns the code
// point and advances i, or returns -1 for an invalid sequence.
long decode_wtf8(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) -> unsigned {
    return k < s.size() ? static_cast<unsigned char>(s[k]) : 0u;
  };
  const unsigned b0 = byte(i);
  const auto cont = [](unsigned b) { return (b & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (!cont(byte(i + 1))) return -1;
    const long cp = ((b0 & 0x1F) << 6) | (byte(i + 1) & 0x3F);
    i += 2;
    return cp;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned b1 = byte(i + 1);
    if (b0 == 0xE0 ? (b1 < 0xA0 || b1 > 0xBF) : !cont(b1)) return -1;
    if (!cont(byte(i + 2))) return -1;
    const long cp = ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (byte(i + 2) & 0x3F);
    i += 3;
    return cp;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned b1 = byte(i + 1);
    const bool ok1 = b0 == 0xF0   ? (b1 >= 0x90 && b1 <= 0xBF)
                     : b0 == 0xF4 ? (b1 >= 0x80 && b1 <= 0x8F)
                                  : cont(b1);
    if (!ok1 || !cont(byte(i + 2)) || !cont(byte(i + 3))) return -1;
    const long cp = ((b0 & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((byte(i + 2) & 0x3F) << 6) |
                    (byte(i + 3) & 0x3F);
    i += 4;
    return cp;
  }
  return -1;
}

void append_wtf8(std::string& out, unsigned long cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Value of a lowercase hex digit, -1 for anything else (canonical escapes are lowercase).
constexpr auto kLowerHexValue = [] {
  std::array<int, 256> table{};
  for (int& v : table) v = -1;
  for (int c = '0'; c <= '9'; ++c) table[static_cast<std::size_t>(c)] = c - '0';
  for (int c = 'a'; c <= 'f'; ++c) table[static_cast<std::size_t>(c)] = c - 'a' + 10;
  return table;
}();

}  // namespace

std::size_t find_invalid_wtf8(std::string_view s) noexcept {
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    // ASCII fast path: 8 bytes at a time while none has its high bit set.
    while (i + 8 <= n) {
      std::uint64_t word;
      std::memcpy(&word, s.data() + i, 8);
      if ((word & 0x8080808080808080ull) != 0) break;
      i += 8;
    }
    if (i >= n) break;
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t at = i;
    if (decode_wtf8(s, i) < 0) return at;
  }
  return std::string_view::npos;
}

std::string escape_for_message(std::string_view name) {
  const std::string shown = shorten_for_message(name);
  std::string out;
  out.reserve(shown.size());
  std::size_t i = 0;
  while (i < shown.size()) {
    const auto byte = static_cast<unsigned char>(shown[i]);
    std::size_t next = i + 1;
    if (byte >= 0x80) {
      next = i;
      if (decode_wtf8(shown, next) < 0) {
        out += "\\x";
        out.push_back(kHex[byte >> 4]);
        out.push_back(kHex[byte & 0xF]);
        ++i;
        continue;
      }
    }
    out.append(shown, i, next - i);
    i = next;
  }
  return out;
}

void check_name(std::string_view name, std::string_view what) {
  if (is_wtf8(name)) [[likely]]
    return;
  throw Error(ErrorCode::kInvalidArgument,
              describe_invalid_name(name, what) +
                  ": keys and collection names must be text (UTF-8), as in LlamaIndex");
}

std::string describe_invalid_name(std::string_view name, std::string_view what) {
  const std::size_t at = find_invalid_wtf8(name);
  if (at == std::string_view::npos) return {};
  const auto byte = static_cast<unsigned char>(name[at]);
  std::string out(what);
  out += " '" + escape_for_message(name) + "' is not valid UTF-8 (byte 0x";
  out.push_back(kHex[byte >> 4]);
  out.push_back(kHex[byte & 0xF]);
  out += " at offset " + std::to_string(at) + ")";
  return out;
}

}  // namespace kvdex::detail

namespace kvdex::json {

void append_u_escape(std::string& out, unsigned unit) {
  using detail::kHex;
  char buf[6] = {'\\',
                 'u',
                 kHex[(unit >> 12) & 0xf],
                 kHex[(unit >> 8) & 0xf],
                 kHex[(unit >> 4) & 0xf],
                 kHex[unit & 0xf]};
  out.append(buf, 6);
}

std::string describe_offset(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "byte " + std::to_string(offset) + " (line " + std::to_string(line) + ", column " +
         std::to_string(offset - line_start + 1) + ")";
}

// ---- Writing ------------------------------------------------------------------------

void append_quoted(std::string& out, std::string_view s) {
  out.push_back('"');
  const char* const begin = s.data();
  const char* const end = begin + s.size();
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t run = plain_ascii_run(begin + i, end);
    out.append(begin + i, run);
    i += run;
    if (i >= s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out.append("\\\"");
        ++i;
        continue;
      case '\\':
        out.append("\\\\");
        ++i;
        continue;
      case '\n':
        out.append("\\n");
        ++i;
        continue;
      case '\r':
        out.append("\\r");
        ++i;
        continue;
      case '\t':
        out.append("\\t");
        ++i;
        continue;
      case '\b':
        out.append("\\b");
        ++i;
        continue;
      case '\f':
        out.append("\\f");
        ++i;
        continue;
      default:
        break;
    }
    if (c < 0x80) {  // other control characters and DEL
      append_u_escape(out, c);
      ++i;
      continue;
    }
    const std::size_t at = i;
    const long cp = detail::decode_wtf8(s, i);
    if (cp < 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  "string is not valid UTF-8 at byte " + std::to_string(at) + " of the string");
    }
    if (cp >= 0x10000) {
      const unsigned long v = static_cast<unsigned long>(cp) - 0x10000;
      append_u_escape(out, 0xD800 | static_cast<unsigned>(v >> 10));
      append_u_escape(out, 0xDC00 | static_cast<unsigned>(v & 0x3FF));
    } else {
      append_u_escape(out, static_cast<unsigned>(cp));
    }
  }
  out.push_back('"');
}

void append_float(std::string& out, double value) {
  if (std::isnan(value)) {
    out.append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out.append(value > 0 ? "Infinity" : "-Infinity");
    return;
  }
  // Shortest round-trip digits, then Python's repr layout (format_float_short, 'r').
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(result.ptr - buf));  // e.g. -1.2345e+02
  bool negative = false;
  if (!sci.empty() && sci.front() == '-') {
    negative = true;
    sci.remove_prefix(1);
  }
  const std::size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exponent);
  const int decpt = exponent + 1;  // value = 0.DIGITS * 10^decpt
  const int ndigits = static_cast<int>(digits.size());
  if (negative) out.push_back('-');
  if (decpt <= -4 || decpt > 16) {
    out.push_back(digits[0]);
    if (ndigits > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    out.push_back('e');
    const int e = decpt - 1;
    out.push_back(e < 0 ? '-' : '+');
    const int magnitude = e < 0 ? -e : e;
    if (magnitude < 10) out.push_back('0');
    out.append(std::to_string(magnitude));
  } else if (decpt <= 0) {
    out.append("0.");
    out.append(static_cast<std::size_t>(-decpt), '0');
    out.append(digits);
  } else if (decpt >= ndigits) {
    out.append(digits);
    out.append(static_cast<std::size_t>(decpt - ndigits), '0');
    out.append(".0");
  } else {
    out.append(digits, 0, static_cast<std::size_t>(decpt));
    out.push_back('.');
    out.append(digits, static_cast<std::size_t>(decpt), std::string::npos);
  }
}

std::string quote(std::string_view s) {
  std::string out;
  append_quoted(out, s);
  return out;
}

double parse_float(std::string_view number) {
  double value = 0;
  const auto result = std::from_chars(number.data(), number.data() + number.size(), value);
  if (result.ec == std::errc() && result.ptr == number.data() + number.size()) return value;
  // Overflow, underflow or a subnormal: strtod in the C locale gives what Python's
  // float() gives (±inf, ±0.0, the subnormal).
  static locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(0));
  const std::string copy(number);
  return strtod_l(copy.c_str(), nullptr, c_locale);
}

std::string quote_for_message(std::string_view text) {
  std::string shown = shorten_for_message(text);
  std::string suffix;
  if (text.size() > kMaxShownBytes) {
    suffix = "...(" + std::to_string(text.size()) + " bytes)";
    shown.resize(shown.size() - suffix.size());
  }
  std::string out;
  out.push_back('"');
  std::size_t i = 0;
  while (i < shown.size()) {
    // A message about bad bytes must not fail on them: each invalid one is U+FFFD.
    std::size_t next = i;
    if (static_cast<unsigned char>(shown[i]) < 0x80) {
      ++next;
    } else if (detail::decode_wtf8(shown, next) < 0) {
      append_u_escape(out, 0xFFFD);
      ++i;
      continue;
    }
    std::string literal;
    append_quoted(literal, std::string_view(shown).substr(i, next - i));
    out.append(literal, 1, literal.size() - 2);
    i = next;
  }
  out.push_back('"');
  out.append(suffix);
  return out;
}

namespace {
// Python 3.11's default sys.int_max_str_digits.
std::atomic<std::size_t> g_max_int_digits{4300};
}  // namespace

std::size_t max_int_digits() noexcept { return g_max_int_digits.load(std::memory_order_relaxed); }

void set_max_int_digits(std::size_t digits) noexcept {
  g_max_int_digits.store(digits, std::memory_order_relaxed);
}

SyntaxError::SyntaxError(std::string_view text, std::size_t offset, std::string reason)
    : Error(ErrorCode::kInvalidArgument, reason + " at " + describe_offset(text, offset)),
      offset_(offset),
      reason_(std::move(reason)) {}

}  // namespace kvdex::json

namespace kvdex::detail {

void throw_syntax_error(std::string_view text, const JsonSyntaxError& error) {
  throw json::SyntaxError(text, error.offset, error.message);
}

void append_python_json(std::string& out, const Value& value) {
  using Type = Value::value_t;
  switch (value.type()) {
    case Type::null:
      out.append("null");
      return;
    case Type::boolean:
      out.append(value.get<bool>() ? "true" : "false");
      return;
    case Type::number_integer:
      out.append(std::to_string(value.get<std::int64_t>()));
      return;
    case Type::number_unsigned:
      out.append(std::to_string(value.get<std::uint64_t>()));
      return;
    case Type::number_float:
      append_python_float(out, value.get<double>());
      return;
    case Type::string:
      append_json_string(out, value.get_ref<const std::string&>());
      return;
    case Type::array: {
      out.push_back('[');
      bool first = true;
      for (const Value& item : value) {
        if (!first) out.append(", ");
        first = false;
        append_python_json(out, item);
      }
      out.push_back(']');
      return;
    }
    case Type::object: {
      out.push_back('{');
      bool first = true;
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!first) out.append(", ");
        first = false;
        append_json_string(out, it.key());
        out.append(": ");
        append_python_json(out, it.value());
      }
      out.push_back('}');
      return;
    }
    case Type::binary:
      throw Error(ErrorCode::kInvalidArgument, "binary data has no JSON form");
    case Type::discarded:
      throw Error(ErrorCode::kInvalidArgument, "discarded value has no JSON form");
  }
}

// ---- Reading ------------------------------------------------------------------------

std::string JsonParser::int_digits_message(std::size_t count) const {
  return "Exceeds the limit (" + std::to_string(max_int_digits_) +
         " digits) for integer string conversion: value has " + std::to_string(count) + " digits";
}

void JsonParser::expect(char c, const char* what) {
  if (peek() != c) fail(pos_, what);
  ++pos_;
}

std::string_view JsonParser::parse_string(std::string& scratch) {
  if (pos_ >= text_.size() || text_[pos_] != '"') fail(pos_, "expecting string");
  const std::size_t open = pos_;
  const std::size_t close =
      open + 1 + plain_ascii_run(text_.data() + open + 1, text_.data() + text_.size());
  if (close < text_.size() && text_[close] == '"') {
    pos_ = close + 1;
    return text_.substr(open + 1, close - open - 1);
  }
  return parse_escaped_string(open, close, scratch);
}

std::string_view JsonParser::parse_escaped_string(std::size_t open, std::size_t i,
                                                  std::string& scratch) {
  const char* const base = text_.data();
  const char* const end = base + text_.size();
  scratch.assign(base + open + 1, i - open - 1);
  for (;;) {
    if (i >= text_.size()) fail(open, "unterminated string starting at " + std::to_string(open));
    const unsigned char c = static_cast<unsigned char>(text_[i]);
    if (c == '"') {
      pos_ = i + 1;
      return scratch;
    }
    if (c == '\\') {
      i = decode_escape(open, i, scratch);
    } else if (c < 0x20) {
      fail(i, "invalid control character");
    } else if (c < 0x80) {
      const std::size_t run = std::max<std::size_t>(1, plain_ascii_run(base + i, end));
      scratch.append(base + i, run);
      i += run;
    } else {
      const std::size_t at = i;
      if (decode_wtf8(text_, i) < 0) fail(at, "invalid UTF-8");
      scratch.append(base + at, i - at);
    }
  }
}

std::size_t JsonParser::decode_escape(std::size_t open, std::size_t i, std::string& scratch) {
  if (i + 1 >= text_.size()) fail(open, "unterminated string starting at " + std::to_string(open));
  switch (text_[i + 1]) {
    case '"':
      scratch.push_back('"');
      return i + 2;
    case '\\':
      scratch.push_back('\\');
      return i + 2;
    case '/':
      scratch.push_back('/');
      return i + 2;
    case 'b':
      scratch.push_back('\b');
      return i + 2;
    case 'f':
      scratch.push_back('\f');
      return i + 2;
    case 'n':
      scratch.push_back('\n');
      return i + 2;
    case 'r':
      scratch.push_back('\r');
      return i + 2;
    case 't':
      scratch.push_back('\t');
      return i + 2;
    case 'u':
      break;
    default:
      fail(i, "invalid \\escape");
  }
  const long unit = read_u_escape(i);
  if (unit < 0) fail(i + 1, "invalid \\uXXXX escape");  // where Python points
  i += 6;
  // A high surrogate followed by a low one is one character; any other is kept alone
  // (json.loads keeps lone surrogates).
  if (unit >= 0xD800 && unit <= 0xDBFF) {
    const long low = read_u_escape(i);
    if (low >= 0xDC00 && low <= 0xDFFF) {
      append_wtf8(scratch, 0x10000 + ((static_cast<unsigned long>(unit) - 0xD800) << 10) +
                               (static_cast<unsigned long>(low) - 0xDC00));
      return i + 6;
    }
  }
  append_wtf8(scratch, static_cast<unsigned long>(unit));
  return i;
}

long JsonParser::read_u_escape(std::size_t at) const {
  if (at + 6 > text_.size() || text_[at] != '\\' || text_[at + 1] != 'u') return -1;
  long unit = 0;
  for (std::size_t k = at + 2; k < at + 6; ++k) {
    const int h = hex_value(text_[k]);
    if (h < 0) return -1;
    unit = unit * 16 + h;
  }
  return unit;
}

// ---- Canonical check --------------------------------------------------------------

namespace {

class CanonicalChecker {
 public:
  CanonicalChecker(std::string_view text, bool unique_keys)
      : text_(text), unique_keys_(unique_keys), max_int_digits_(json::max_int_digits()) {}

  bool check_object() {
    if (text_.empty() || text_[0] != '{') return false;
    if (!value()) return false;
    return pos_ == text_.size();
  }

 private:
  char at(std::size_t k) const { return k < text_.size() ? text_[k] : '\0'; }
  bool consume(std::string_view s) {
    if (text_.substr(pos_, s.size()) != s) return false;
    pos_ += s.size();
    return true;
  }

  bool string() {
    const char* const base = text_.data();
    const char* const end = base + text_.size();
    const char* p = base + pos_;
    if (p >= end || *p != '"') return false;
    ++p;
    for (;;) {
      p += plain_ascii_run(p, end);
      if (p >= end) return false;
      if (*p == '"') {
        pos_ = static_cast<std::size_t>(p + 1 - base);
        return true;
      }
      if (*p != '\\' || end - p < 2) return false;  // raw control, non-ASCII or end of text
      const char e = p[1];
      if (e == 'u') {
        if (end - p < 6) return false;
        const int h0 = kLowerHexValue[static_cast<unsigned char>(p[2])];
        const int h1 = kLowerHexValue[static_cast<unsigned char>(p[3])];
        const int h2 = kLowerHexValue[static_cast<unsigned char>(p[4])];
        const int h3 = kLowerHexValue[static_cast<unsigned char>(p[5])];
        if ((h0 | h1 | h2 | h3) < 0) return false;  // uppercase hex or not hex
        const unsigned unit = static_cast<unsigned>((h0 << 12) | (h1 << 8) | (h2 << 4) | h3);
        // json.dumps escapes with \u exactly the units it has no short escape for.
        if (unit >= 0x20 && unit <= 0x7e) return false;
        if (unit == '\n' || unit == '\r' || unit == '\t' || unit == '\b' || unit == '\f')
          return false;
        p += 6;
      } else if (e == '"' || e == '\\' || e == 'n' || e == 'r' || e == 't' || e == 'b' ||
                 e == 'f') {
        p += 2;
      } else {
        return false;
      }
    }
  }

  bool number() {
    const char* const begin = text_.data() + pos_;
    const json::NumberToken token = json::scan_number(begin, text_.data() + text_.size());
    if (token.end == begin) return false;
    const std::string_view number(begin, static_cast<std::size_t>(token.end - begin));
    pos_ += number.size();
    if (!token.is_float) {
      const std::size_t digits = number.size() - (number[0] == '-' ? 1 : 0);
      return number != "-0" && (max_int_digits_ == 0 || digits <= max_int_digits_);
    }
    scratch_.clear();
    append_python_float(scratch_, parse_python_float(number));
    return scratch_ == number;
  }

  bool value() {
    // Iterative over containers. `open_` holds '{' or '[' per level; `keys_` holds
    // the raw keys of every open object, `key_starts_` where each object's begin.
    for (;;) {
      const char c = at(pos_);
      if (c == '{' || c == '[') {
        if (static_cast<int>(open_.size()) >= kMaxValueDepth) return false;
        ++pos_;
        if (c == '{') {
          if (at(pos_) == '}') {
            ++pos_;
          } else {
            open_.push_back('{');
            key_starts_.push_back(keys_.size());
            if (!key()) return false;
            continue;
          }
        } else {
          if (at(pos_) == ']') {
            ++pos_;
          } else {
            open_.push_back('[');
            continue;
          }
        }
      } else if (!scalar(c)) {
        return false;
      }
      // Close or advance.
      for (;;) {
        if (open_.empty()) return true;
        if (consume(", ")) {
          if (open_.back() == '{') {
            if (!key()) return false;
          }
          break;
        }
        const char close = open_.back() == '{' ? '}' : ']';
        if (at(pos_) != close) return false;
        ++pos_;
        if (open_.back() == '{') {
          if (unique_keys_ && !keys_unique()) return false;
          keys_.resize(key_starts_.back());
          key_starts_.pop_back();
        }
        open_.pop_back();
      }
    }
  }

  bool key() {
    const std::size_t start = pos_;
    if (!string()) return false;
    keys_.push_back(text_.substr(start, pos_ - start));
    return consume(": ");
  }

  bool keys_unique() {
    // Canonical escaping is unique, so equal keys have equal raw text.
    const std::size_t first = key_starts_.back();
    const std::size_t n = keys_.size() - first;
    if (n <= 16) {
      for (std::size_t a = first; a < keys_.size(); ++a) {
        for (std::size_t b = a + 1; b < keys_.size(); ++b) {
          if (keys_[a] == keys_[b]) return false;
        }
      }
      return true;
    }
    std::vector<std::string_view> sorted(keys_.begin() + static_cast<std::ptrdiff_t>(first),
                                         keys_.end());
    std::sort(sorted.begin(), sorted.end());
    return std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
  }

  bool scalar(char c) {
    switch (c) {
      case '"':
        return string();
      case 't':
        return consume("true");
      case 'f':
        return consume("false");
      case 'n':
        return consume("null");
      case 'N':
        return consume("NaN");
      case 'I':
        return consume("Infinity");
      case '-':
        if (consume("-Infinity")) return true;
        return number();
      default:
        return number();
    }
  }

  std::string_view text_;
  bool unique_keys_;
  std::size_t max_int_digits_;  // 0: unlimited
  std::size_t pos_ = 0;
  std::vector<char> open_;
  std::vector<std::string_view> keys_;
  std::vector<std::size_t> key_starts_;
  std::string scratch_;
};

// ---- A small tree for the slow path -------------------------------------------------

struct Node {
  enum class Kind : std::uint8_t {
    kNull,
    kFalse,
    kTrue,
    kInteger,
    kFloat,
    kString,
    kArray,
    kObject
  };
  Kind kind = Kind::kNull;
  double number = 0;
  std::string text;               // integer digits or string contents (WTF-8)
  std::vector<Node> items;        // array elements or object values
  std::vector<std::string> keys;  // object keys, parallel to items
};

// Builds a Node tree with json.loads' semantics for duplicate keys.
class TreeBuilder {
 public:
  Node root;

  void start_object() { open(Node::Kind::kObject); }
  void start_array() { open(Node::Kind::kArray); }
  void end_object() { close(); }
  void end_array() { close(); }
  void key(std::string_view k) {
    Frame& frame = frames_.back();
    Node& object = *frame.node;
    frame.pending_slot = object.items.size();
    if (object.keys.size() < 16) {
      for (std::size_t i = 0; i < object.keys.size(); ++i) {
        if (object.keys[i] == k) {
          frame.pending_slot = i;
          return;
        }
      }
    } else {
      if (frame.index.empty()) {
        for (std::size_t i = 0; i < object.keys.size(); ++i) frame.index.emplace(object.keys[i], i);
      }
      auto [it, inserted] = frame.index.emplace(std::string(k), object.items.size());
      if (!inserted) {
        frame.pending_slot = it->second;
        return;
      }
    }
    object.keys.emplace_back(k);
  }
  void string(std::string_view s) {
    Node& n = place();
    n.kind = Node::Kind::kString;
    n.text.assign(s);
  }
  void integer(std::string_view digits) {
    Node& n = place();
    n.kind = Node::Kind::kInteger;
    // json.loads gives a Python int, which prints without "-0".
    n.text.assign(digits == "-0" ? std::string_view("0") : digits);
  }
  void floating(double v) {
    Node& n = place();
    n.kind = Node::Kind::kFloat;
    n.number = v;
  }
  void boolean(bool b) { place().kind = b ? Node::Kind::kTrue : Node::Kind::kFalse; }
  void null() { place().kind = Node::Kind::kNull; }

 private:
  struct Frame {
    Node* node;
    std::size_t pending_slot = 0;
    std::unordered_map<std::string, std::size_t> index;  // built for large objects only
  };

  // The node the next value goes into.
  Node& place() {
    if (frames_.empty()) return root;
    Frame& frame = frames_.back();
    Node& parent = *frame.node;
    if (parent.kind == Node::Kind::kArray || frame.pending_slot == parent.items.size()) {
      parent.items.emplace_back();
      return parent.items.back();
    }
    Node& replaced = parent.items[frame.pending_slot];
    replaced = Node{};
    return replaced;
  }
  void open(Node::Kind kind) {
    Node& n = place();
    n.kind = kind;
    frames_.push_back(Frame{&n, 0, {}});
  }
  void close() { frames_.pop_back(); }

  std::vector<Frame> frames_;
};

void write_node(std::string& out, const Node& n) {
  switch (n.kind) {
    case Node::Kind::kNull:
      out.append("null");
      return;
    case Node::Kind::kFalse:
      out.append("false");
      return;
    case Node::Kind::kTrue:
      out.append("true");
      return;
    case Node::Kind::kInteger:
      out.append(n.text);
      return;
    case Node::Kind::kFloat:
      append_python_float(out, n.number);
      return;
    case Node::Kind::kString:
      append_json_string(out, n.text);
      return;
    case Node::Kind::kArray:
      out.push_back('[');
      for (std::size_t i = 0; i < n.items.size(); ++i) {
        if (i) out.append(", ");
        write_node(out, n.items[i]);
      }
      out.push_back(']');
      return;
    case Node::Kind::kObject:
      out.push_back('{');
      for (std::size_t i = 0; i < n.items.size(); ++i) {
        if (i) out.append(", ");
        append_json_string(out, n.keys[i]);
        out.append(": ");
        write_node(out, n.items[i]);
      }
      out.push_back('}');
      return;
  }
}

}  // namespace

std::string parse_canonical_value(JsonParser& parser) {
  const std::size_t start = parser.position();
  TreeBuilder builder;
  parser.parse_value(builder);
  std::string out;
  out.reserve(parser.position() - start);
  write_node(out, builder.root);
  return out;
}

namespace {

std::string canonicalize(std::string_view text, bool require_object, int max_depth) {
  JsonParser parser(text, max_depth);
  const char first = parser.peek();
  const std::size_t value_start = parser.position();
  TreeBuilder builder;
  parser.parse_value(builder);
  parser.skip_whitespace();
  if (!parser.at_end()) parser.fail(parser.position(), "extra data");
  if (require_object && first != '{') parser.fail(value_start, "not a JSON object");
  std::string out;
  out.reserve(text.size());
  write_node(out, builder.root);
  return out;
}

// Builds a Value from canonical text. Keys may repeat there (is_dumps_object): the
// last value wins at the first position, as in json.loads. Small objects search their
// keys; large ones an index, so a big object does not cost ordered_json's linear
// search per member.
class ValueBuilder {
 public:
  Value root;

  void start_object() { open(Value::object()); }
  void start_array() { open(Value::array()); }
  void end_object() { frames_.pop_back(); }
  void end_array() { frames_.pop_back(); }
  void key(std::string_view k) { key_.assign(k); }
  void string(std::string_view s) { place(Value(std::string(s))); }
  void integer(std::string_view digits) {
    std::int64_t i = 0;
    auto r = std::from_chars(digits.data(), digits.data() + digits.size(), i);
    if (r.ec == std::errc() && r.ptr == digits.data() + digits.size()) {
      place(Value(i));
      return;
    }
    std::uint64_t u = 0;
    r = std::from_chars(digits.data(), digits.data() + digits.size(), u);
    if (r.ec == std::errc() && r.ptr == digits.data() + digits.size()) {
      place(Value(u));
      return;
    }
    throw Error(
        ErrorCode::kOutOfRange,
        "integer " + shorten_for_message(digits) +
            " does not fit in 64 bits; read the value's text (get_encoded) to keep it exact");
  }
  void floating(double v) { place(Value(v)); }
  void boolean(bool b) { place(Value(b)); }
  void null() { place(Value(nullptr)); }

 private:
  struct Frame {
    Value* value;
    std::unordered_map<std::string, std::size_t> index;  // built for large objects only
  };

  Value& place(Value&& v) {
    if (frames_.empty()) {
      root = std::move(v);
      return root;
    }
    Frame& frame = frames_.back();
    Value& parent = *frame.value;
    if (parent.is_array()) {
      auto& array = parent.get_ref<Value::array_t&>();
      array.push_back(std::move(v));
      return array.back();
    }
    auto& members = parent.get_ref<Value::object_t&>();
    if (const std::size_t at = find_member(frame, members); at != kNone) {
      Value& existing = members.Container::operator[](at).second;
      existing = std::move(v);
      return existing;
    }
    if (!frame.index.empty()) frame.index.emplace(key_, members.size());
    members.Container::emplace_back(std::move(key_), std::move(v));
    key_.clear();
    return members.Container::back().second;
  }

  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);

  std::size_t find_member(Frame& frame, Value::object_t& members) {
    constexpr std::size_t kLinear = 16;
    const std::size_t n = members.size();
    if (n < kLinear) {
      for (std::size_t i = 0; i < n; ++i) {
        if (members.Container::operator[](i).first == key_) return i;
      }
      return kNone;
    }
    if (frame.index.empty()) {
      for (std::size_t i = 0; i < n; ++i)
        frame.index.emplace(members.Container::operator[](i).first, i);
    }
    const auto it = frame.index.find(key_);
    return it == frame.index.end() ? kNone : it->second;
  }

  void open(Value&& container) {
    Value& placed = place(std::move(container));
    frames_.push_back(Frame{&placed, {}});
  }

  std::vector<Frame> frames_;
  std::string key_;
};

}  // namespace

bool is_canonical_object(std::string_view text) {
  return CanonicalChecker(text, /*unique_keys=*/true).check_object();
}

bool is_dumps_object(std::string_view text) {
  return CanonicalChecker(text, /*unique_keys=*/false).check_object();
}

std::string canonicalize_object(std::string_view text, int max_depth) {
  return canonicalize(text, true, max_depth);
}

std::string canonicalize_any(std::string_view text) {
  return canonicalize(text, false, kMaxJsonDepth);
}

Value decode_canonical(std::string_view text) {
  JsonParser parser(text);
  ValueBuilder builder;
  try {
    parser.parse_value(builder);
  } catch (const JsonSyntaxError& e) {
    // Canonical text only comes from a store: bad bytes there are corruption.
    throw Error(ErrorCode::kCorruption, "stored value is not valid JSON at " +
                                            describe_offset(text, e.offset) + ": " + e.message);
  }
  return std::move(builder.root);
}

}  // namespace kvdex::detail

namespace kvdex::json {
namespace {

// Lets the codec's parser, a template over its handler, drive a virtual Handler.
class HandlerAdapter {
 public:
  explicit HandlerAdapter(Handler& handler) : handler_(handler) {}
  void start_object() { handler_.start_object(); }
  void key(std::string_view k) { handler_.key(k); }
  void end_object() { handler_.end_object(); }
  void start_array() { handler_.start_array(); }
  void end_array() { handler_.end_array(); }
  void string(std::string_view s) { handler_.string(s); }
  void integer(std::string_view digits) { handler_.integer(digits); }
  void floating(double v) { handler_.floating(v); }
  void boolean(bool b) { handler_.boolean(b); }
  void null() { handler_.null(); }

 private:
  Handler& handler_;
};

}  // namespace

void parse(std::string_view text, Handler& handler) {
  detail::JsonParser parser(text);
  HandlerAdapter adapter(handler);
  try {
    parser.parse_value(adapter);
    parser.skip_whitespace();
    if (!parser.at_end()) parser.fail(parser.position(), "extra data");
  } catch (const detail::JsonSyntaxError& e) {
    detail::throw_syntax_error(text, e);
  }
}

std::string canonicalize(std::string_view text) {
  try {
    return detail::canonicalize_any(text);
  } catch (const detail::JsonSyntaxError& e) {
    detail::throw_syntax_error(text, e);
  }
}

std::string canonicalize_object(std::string_view text) {
  try {
    return detail::canonicalize_object(text);
  } catch (const detail::JsonSyntaxError& e) {
    detail::throw_syntax_error(text, e);
  }
}

bool is_canonical_object(std::string_view text) { return detail::is_canonical_object(text); }

bool is_dumps_object(std::string_view text) { return detail::is_dumps_object(text); }

void append_record(std::string& out, std::string_view collection, std::string_view key,
                   std::string_view value_text) {
  out.append("{\"collection\": ");
  append_quoted(out, collection);
  out.append(", \"key\": ");
  append_quoted(out, key);
  out.append(", \"value\": ");
  out.append(value_text);
  out.append("}\n");
}

namespace {

// The members of a record, read from its canonical text.
class RecordReader {
 public:
  explicit RecordReader(std::string_view canonical) : canonical_(canonical), parser_(canonical) {}

  Record read() {
    parser_.expect('{', "expecting '{'");
    if (parser_.peek() != '}') {
      for (;;) {
        read_member();
        if (parser_.peek() != ',') break;
        parser_.set_position(parser_.position() + 1);
      }
    }
    if (!key_) throw Error(ErrorCode::kInvalidArgument, "missing \"key\"");
    if (!value_) throw Error(ErrorCode::kInvalidArgument, "missing \"value\"");
    return Record{collection_.value_or(std::string(kDefaultCollection)), std::move(*key_),
                  std::move(*value_)};
  }

 private:
  void read_member() {
    const std::string field(parser_.parse_member_name(scratch_));
    if (field == "collection" || field == "key") {
      if (parser_.peek() != '"')
        throw Error(ErrorCode::kInvalidArgument, "\"" + field + "\" must be a string");
      (field == "collection" ? collection_ : key_) = std::string(parser_.parse_string(scratch_));
      return;
    }
    parser_.skip_whitespace();
    const std::size_t start = parser_.position();
    detail::DiscardHandler skip;
    parser_.parse_value(skip);
    if (field != "value") return;
    const std::string_view text = canonical_.substr(start, parser_.position() - start);
    if (text.empty() || text[0] != '{')
      throw Error(ErrorCode::kInvalidArgument, "\"value\" must be a JSON object");
    value_ = EncodedValue::adopt_canonical(text, nullptr);
  }

  std::string_view canonical_;
  detail::JsonParser parser_;
  std::string scratch_;
  std::optional<std::string> collection_;
  std::optional<std::string> key_;
  std::optional<EncodedValue> value_;
};

}  // namespace

Record parse_record(std::string_view line) {
  // A line is bytes, as json.loads(bytes) reads them: a UTF-8 BOM may lead (the first
  // line of a file saved with one). Offsets stay counted in `line`.
  constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
  if (line.starts_with(kUtf8Bom)) {
    try {
      return parse_record(line.substr(kUtf8Bom.size()));
    } catch (const SyntaxError& e) {
      throw SyntaxError(line, e.offset() + kUtf8Bom.size(), e.reason());
    }
  }
  std::string canonical;
  try {
    // The record's own braces are one level above its value's.
    canonical = detail::canonicalize_object(line, detail::kMaxValueDepth + 1);
  } catch (const detail::JsonSyntaxError& e) {
    detail::throw_syntax_error(line, e);
  }
  try {
    return RecordReader(canonical).read();
  } catch (const detail::JsonSyntaxError& e) {
    throw Error(ErrorCode::kInternal, "parse_record: canonical text did not parse: " + e.message);
  }
}

}  // namespace kvdex::json
