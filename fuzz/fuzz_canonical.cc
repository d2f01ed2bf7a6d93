// is_canonical_object(x) implies canonicalize(x) == x; canonical output is canonical
// (or, with keys json.dumps writes twice, is_dumps_object) and stable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/json_codec.h"
#include "kvdex/error.h"
#include "kvdex/json.h"
#include "kvdex/value.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (kvdex::json::is_canonical_object(text)) {
    if (kvdex::json::canonicalize(text) != text) std::abort();
    if (!kvdex::detail::is_dumps_object(text)) std::abort();
  }
  std::string canonical;
  try {
    canonical = kvdex::json::canonicalize_object(text);
  } catch (const kvdex::Error&) {
    return 0;
  }
  if (!kvdex::detail::is_dumps_object(canonical)) std::abort();
  if (kvdex::json::canonicalize_object(canonical) != canonical &&
      kvdex::json::is_canonical_object(canonical))
    std::abort();
  try {
    (void)kvdex::EncodedValue::adopt_canonical(canonical, nullptr).decode();
  } catch (const kvdex::Error& e) {
    if (e.code() != kvdex::ErrorCode::kOutOfRange) std::abort();  // beyond 64 bits
  }
  return 0;
}
