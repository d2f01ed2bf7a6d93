// The child process of kvdex_lmdb_test's multi-process and crash tests. Each mode
// opens an LmdbKVStore, does one job and reports on stdout, one line at a time
// (written with write(2), so a line a killed child acknowledged is in the pipe).
//
//   put PATH COLLECTION KEY JSON           -> "ok"
//   get PATH COLLECTION KEY                -> the value text, or "absent" (read-only open)
//   fill PATH COLLECTION PREFIX COUNT VALUE_BYTES BATCH_SIZE -> "done"
//   hold-reader PATH COLLECTION            -> "ready", then waits inside a read transaction
//   writer PATH ID ROUNDS KEYS             -> "done": ROUNDS batches of KEYS keys of
//                                             collection "shared" plus one "own" key each
//   crash-writer PATH RUN full|nometasync  -> one line per committed batch id, for ever
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "kvdex/kvdex.h"
#include "kvdex/lmdb_kvstore.h"
#include "lmdb/crash_batches.h"

namespace {

void say(const std::string& line) {
  const std::string out = line + "\n";
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, out.data() + done, out.size() - done);
    if (n <= 0) std::_Exit(3);
    done += static_cast<std::size_t>(n);
  }
}

int run(const std::vector<std::string>& a) {
  using kvdex::LmdbKVStore;
  using kvdex::LmdbOptions;
  using kvdex::Value;
  const std::string& mode = a.at(0);
  if (mode == "put") {
    LmdbKVStore store(a.at(1));
    store.put_encoded(a.at(3), kvdex::EncodedValue::parse(a.at(4)), a.at(2));
    say("ok");
  } else if (mode == "get") {
    LmdbKVStore store(a.at(1), LmdbOptions{.read_only = true});
    std::optional<kvdex::EncodedValue> v = store.get_encoded(a.at(3), a.at(2));
    say(v ? std::string(v->text()) : "absent");
  } else if (mode == "fill") {
    LmdbKVStore store(a.at(1));
    const int count = std::stoi(a.at(4));
    const std::string pad(std::stoul(a.at(5)), 'f');
    std::vector<kvdex::KeyValue> pairs;
    for (int i = 0; i < count; ++i)
      pairs.emplace_back(a.at(3) + std::to_string(i), Value{{"i", i}, {"pad", pad}});
    store.put_all(pairs, a.at(2), std::stoi(a.at(6)));
    say("done");
  } else if (mode == "hold-reader") {
    LmdbKVStore store(a.at(1));
    store.scan(a.at(2), [](std::string_view, std::string_view) {
      say("ready");
      for (;;) ::pause();  // killed here, inside the read transaction
    });
    say("empty");
  } else if (mode == "writer") {
    LmdbKVStore store(a.at(1));
    const int id = std::stoi(a.at(2));
    const int rounds = std::stoi(a.at(3));
    const int keys = std::stoi(a.at(4));
    for (int r = 0; r < rounds; ++r) {
      kvdex::WriteBatch batch;
      const kvdex::EncodedValue value =
          kvdex::EncodedValue::encode(Value{{"writer", id}, {"round", r}});
      for (int k = 0; k < keys; ++k) batch.put("shared", "k" + std::to_string(k), value);
      batch.put("own", "w" + std::to_string(id) + "-" + std::to_string(r), value);
      store.write(batch);
    }
    say("done");
  } else if (mode == "crash-writer") {
    const int run_id = std::stoi(a.at(2));
    LmdbKVStore store(
        a.at(1), LmdbOptions{.map_size = 64 << 10,
                             .durability = a.at(3) == "full" ? kvdex::LmdbDurability::kFull
                                                             : kvdex::LmdbDurability::kNoMetaSync});
    for (int b = 0; b < 100000; ++b) {
      const kvdex::testing::CrashBatch cb = kvdex::testing::crash_batch(run_id, b);
      kvdex::WriteBatch batch;
      for (const auto& e : cb.puts)
        batch.put(e.collection, e.key, kvdex::EncodedValue::encode(e.value));
      batch.put(kvdex::testing::kMarkerCollection, cb.marker,
                kvdex::EncodedValue::encode(Value{{"run", run_id}, {"batch", b}}));
      if (cb.old_marker) batch.remove(kvdex::testing::kMarkerCollection, *cb.old_marker);
      store.write(batch);
      // A read after each commit keeps a reader slot, which a kill leaves stale.
      if (!store.get_encoded(cb.marker, kvdex::testing::kMarkerCollection)) return 4;
      say(std::to_string(b));
    }
    say("end");
  } else {
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lmdb test helper: %s\n", e.what());
    return 1;
  }
}
