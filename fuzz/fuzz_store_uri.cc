// parse_store_uri: any text gives a StoreUri or a kvdex::Error, never a crash; a
// result keeps the text it was given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kvdex/error.h"
#include "kvdex/open.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const kvdex::StoreUri uri = kvdex::parse_store_uri(text);
    if (uri.text != text) std::abort();
    if (uri.scheme.empty()) std::abort();
  } catch (const kvdex::Error&) {
  }
  return 0;
}
