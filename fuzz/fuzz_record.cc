// json::parse_record: any line gives a Record or a kvdex::Error(kInvalidArgument),
// and a record written back with append_record reads back the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kvdex/error.h"
#include "kvdex/json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  kvdex::json::Record record;
  try {
    record = kvdex::json::parse_record(line);
  } catch (const kvdex::Error& e) {
    if (e.code() != kvdex::ErrorCode::kInvalidArgument) std::abort();
    return 0;
  }
  std::string again;
  kvdex::json::append_record(again, record.collection, record.key, record.value.text());
  const kvdex::json::Record back = kvdex::json::parse_record(again);
  if (back.collection != record.collection || back.key != record.key ||
      back.value.text() != record.value.text())
    std::abort();
  return 0;
}
