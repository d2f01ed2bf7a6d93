// The persist-file loader (simdjson fast path, then the exact path) against the
// validating parser on the same bytes: both accept with equal contents, or both refuse.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kvdex/error.h"
#include "kvdex/json.h"
#include "kvdex/simple_kvstore.h"

namespace {

// The persist file as the validating parser reads it: an object of objects of
// objects, canonicalized (duplicates resolved as json.loads resolves them).
bool expected_text(std::string_view bytes, std::string& out) {
  if (bytes.starts_with("\xEF\xBB\xBF")) bytes.remove_prefix(3);
  try {
    out = kvdex::json::canonicalize(bytes);
  } catch (const kvdex::Error&) {
    return false;
  }
  // canonicalize accepts any value, 900 levels deep; the loader wants
  // {collection: {key: {...}}} with each value within 898 levels.
  try {
    const auto store = kvdex::SimpleKVStore::from_json_text(out, "canonical");
    out = store->to_json_text();
    return true;
  } catch (const kvdex::Error&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  std::string loaded;
  bool accepted = false;
  try {
    loaded = kvdex::SimpleKVStore::from_json_text(bytes, "fuzz")->to_json_text();
    accepted = true;
  } catch (const kvdex::Error& e) {
    if (e.code() != kvdex::ErrorCode::kCorruption) std::abort();
  }
  std::string expected;
  const bool valid = expected_text(bytes, expected);
  if (accepted != valid) std::abort();
  if (accepted && loaded != expected) std::abort();
  return 0;
}
