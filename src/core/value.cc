#include "kvdex/value.h"

#include "core/json_codec.h"
#include "kvdex/error.h"

namespace kvdex {
namespace {
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";
}  // namespace

EncodedValue::EncodedValue() : data_("{}"), size_(2) {}

EncodedValue EncodedValue::encode(const Value& value) {
  if (!value.is_object()) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("value must be a JSON object, got ") + value.type_name());
  }
  std::string text;
  detail::append_python_json(text, value);
  auto owner = std::make_shared<const std::string>(std::move(text));
  const std::string& stored = *owner;
  return EncodedValue(std::move(owner), stored.data(), stored.size());
}

EncodedValue EncodedValue::parse(std::string_view json_text) {
  // Bytes, as json.loads(bytes) reads them: a UTF-8 BOM may lead (a value piped in
  // from a file an editor saved with one).
  const std::size_t skip = json_text.starts_with(kUtf8Bom) ? kUtf8Bom.size() : 0;
  const std::string_view body = json_text.substr(skip);
  if (detail::is_canonical_object(body)) return adopt_canonical(body, nullptr);
  std::string canonical;
  try {
    canonical = detail::canonicalize_object(body);
  } catch (const detail::JsonSyntaxError& e) {
    throw Error(ErrorCode::kInvalidArgument,
                "invalid JSON value: " + e.message + " at " +
                    detail::describe_offset(json_text, e.offset + skip));
  }
  auto owner = std::make_shared<const std::string>(std::move(canonical));
  const std::string& stored = *owner;
  return EncodedValue(std::move(owner), stored.data(), stored.size());
}

EncodedValue EncodedValue::adopt_canonical(std::string_view text,
                                           std::shared_ptr<const void> owner) {
#ifndef NDEBUG
  if (!detail::is_dumps_object(text)) {
    throw Error(ErrorCode::kInternal, "adopt_canonical: text is not canonical JSON object text");
  }
#endif
  if (owner == nullptr) {
    auto copy = std::make_shared<const std::string>(text);
    const std::string& stored = *copy;
    return EncodedValue(std::move(copy), stored.data(), stored.size());
  }
  return EncodedValue(std::move(owner), text.data(), text.size());
}

Value EncodedValue::decode() const { return detail::decode_canonical(text()); }

std::string to_python_json(const Value& value) {
  std::string out;
  detail::append_python_json(out, value);
  return out;
}

Value from_python_json(std::string_view json_text) {
  std::string canonical;
  try {
    canonical = detail::canonicalize_any(json_text);
  } catch (const detail::JsonSyntaxError& e) {
    throw Error(ErrorCode::kInvalidArgument, "invalid JSON: " + e.message + " at " +
                                                 detail::describe_offset(json_text, e.offset));
  }
  return detail::decode_canonical(canonical);
}

}  // namespace kvdex
