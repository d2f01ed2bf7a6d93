// The batches the crash test's writer commits, derived from (run, batch id) alone so
// that the checking process can recompute every one of them.
#ifndef KVDEX_TESTS_LMDB_CRASH_BATCHES_H_
#define KVDEX_TESTS_LMDB_CRASH_BATCHES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kvdex/value.h"

namespace kvdex::testing {

inline constexpr const char* kMarkerCollection = "crash/markers";

struct CrashEntry {
  std::string collection;
  std::string key;
  Value value;
};

struct CrashBatch {
  std::vector<CrashEntry> puts;           // the batch's data entries
  std::string marker;                     // put into kMarkerCollection
  std::optional<std::string> old_marker;  // removed from kMarkerCollection
};

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline std::string crash_marker(int run, int batch) {
  return "m" + std::to_string(run) + "/b" + std::to_string(batch);
}

inline CrashBatch crash_batch(int run, int batch) {
  const std::uint64_t h =
      splitmix64((static_cast<std::uint64_t>(run) << 32) | static_cast<std::uint32_t>(batch));
  const int n = 1 + static_cast<int>(h % 24);
  const bool big = (h >> 8) % 16 == 0;  // now and then a value of overflow pages
  CrashBatch out;
  for (int j = 0; j < n; ++j) {
    std::string collection;
    switch (j % 3) {
      case 0:
        collection = "crash/" + std::to_string((batch + j) % 4);
        break;
      case 1:
        collection = "crash/long/" + std::string(600, 'c') + std::to_string(batch % 2);
        break;
      default:
        collection = "crash/\xc3\xa9/" + std::to_string(run % 3);
        break;
    }
    std::string key =
        "r" + std::to_string(run) + "/b" + std::to_string(batch) + "/" + std::to_string(j);
    if (j % 7 == 3) key = std::string(700, 'k') + key;  // a long key
    const std::size_t pad =
        big && j == 0 ? 60000 : splitmix64(h + static_cast<std::uint64_t>(j)) % 300;
    out.puts.push_back(CrashEntry{
        std::move(collection), std::move(key),
        Value{{"run", run}, {"batch", batch}, {"j", j}, {"n", n}, {"pad", std::string(pad, 'p')}}});
  }
  out.marker = crash_marker(run, batch);
  if (batch > 0) out.old_marker = crash_marker(run, batch - 1);
  return out;
}

}  // namespace kvdex::testing

#endif  // KVDEX_TESTS_LMDB_CRASH_BATCHES_H_
