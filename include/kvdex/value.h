// Values: what a key maps to.
//
// A value is a JSON object. At the API edge it is a kvdex::Value
// (nlohmann::ordered_json, which keeps key order as Python's dict does). Inside a
// store it is an EncodedValue: the exact text Python's json.dumps writes for that
// object (separators ", " and ": ", ensure_ascii, float repr, NaN/Infinity). That
// text is what LlamaIndex's persist files, Redis hashes and PostgreSQL rows hold, so
// an EncodedValue moves between stores without re-encoding, and copying one is a
// reference-count increment.
//
// Strings inside a Value are UTF-8. A lone surrogate (which Python allows in a str
// and json.dumps writes as "\udXXX") is carried as its 3-byte generalized UTF-8
// (WTF-8) form, so it round-trips.
//
// Thread safety: EncodedValue is immutable; copies may be used from any thread.
#ifndef KVDEX_VALUE_H_
#define KVDEX_VALUE_H_

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace kvdex {

// The value type at the API edge. Use it for single values only: its object lookup
// is linear, so a 100,000-member ordered_json is slow to build and to search.
using Value = nlohmann::ordered_json;

// A JSON object in canonical (Python json.dumps) text form. Always valid, always an
// object, always canonical: the only ways to make one check that.
class EncodedValue {
 public:
  // Encodes a Value. Throws Error(kInvalidArgument) if it is not an object, holds
  // binary data or a string that is not UTF-8.
  static EncodedValue encode(const Value& value);

  // Parses any text Python's json.loads accepts (NaN, Infinity, duplicate keys where
  // the last wins, integers of any size) and keeps its canonical form. The text is
  // bytes, as json.loads(bytes) reads them, so a leading UTF-8 BOM is skipped. Throws
  // Error(kInvalidArgument) naming the byte offset if the text is not JSON or is not
  // an object.
  static EncodedValue parse(std::string_view json_text);

  // Adopts text that the caller guarantees is canonical (e.g. read back from a store
  // that only ever holds EncodedValue text). `owner` keeps `text` alive; pass nullptr
  // to copy the text. Debug builds verify the claim.
  static EncodedValue adopt_canonical(std::string_view text, std::shared_ptr<const void> owner);

  // An empty object, "{}".
  EncodedValue();

  std::string_view text() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }

  // Builds the Value. Throws Error(kOutOfRange) if an integer does not fit in 64 bits
  // (use text() to get it exactly).
  Value decode() const;

  friend bool operator==(const EncodedValue& a, const EncodedValue& b) noexcept {
    return a.text() == b.text();
  }

 private:
  EncodedValue(std::shared_ptr<const void> owner, const char* data, std::size_t size) noexcept
      : owner_(std::move(owner)), data_(data), size_(size) {}

  std::shared_ptr<const void> owner_;  // keeps data_ alive; shared by every copy
  const char* data_;
  std::size_t size_;
};

// Writes `value` (any JSON, not only objects) exactly as Python's json.dumps would.
// Throws Error(kInvalidArgument) for binary data or a string that is not UTF-8.
std::string to_python_json(const Value& value);

// Parses text as Python's json.loads does (see EncodedValue::parse), into a Value.
// Throws Error(kInvalidArgument) with the byte offset for malformed text and
// Error(kOutOfRange) for an integer beyond 64 bits.
Value from_python_json(std::string_view json_text);

}  // namespace kvdex

#endif  // KVDEX_VALUE_H_
