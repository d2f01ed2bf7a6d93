// Crash test: a writer process (lmdb_test_helper crash-writer) commits batches
// (crash_batches.h) into an LmdbKVStore and acknowledges each committed batch id on
// a pipe; it is killed with SIGKILL at a random moment, hundreds of times. After
// every kill the store must open, pass verify(), hold every acknowledged batch
// whole, and hold the batch after the last acknowledged one whole or not at all
// (it may have committed just before the kill). Each batch also moves the run's
// marker key (a put and a remove in one transaction), so exactly one marker per run
// names its last committed batch.
//
// Bounded in time: at most kIterations kills or kBudget, whichever comes first (a
// new store every kRunsPerStore kills, so stores are also created, and their map
// grown from 64 KiB, under fire). For every other store the checking process keeps
// the store open across the kills (so it also adopts the map the writers grew and
// clears the reader slots they leave behind); for the others it opens the store
// afresh after each kill, as a restarted application would.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "kvdex/kvdex.h"
#include "kvdex/lmdb_kvstore.h"
#include "lmdb/child_process.h"
#include "lmdb/crash_batches.h"
#include "test_util.h"

namespace kvdex::testing {
namespace {

constexpr int kIterations = 300;
constexpr int kRunsPerStore = 15;
constexpr auto kBudget = std::chrono::seconds(45);

struct Totals {
  int kills = 0;
  int acknowledged = 0;
  int unacknowledged_but_committed = 0;  // the batch the kill interrupted was committed
  int published_late = 0;                // ... and became visible only at the next write
  std::uint64_t stale_readers_cleared = 0;
};

struct RunState {
  int acknowledged = 0;
  int present = 0;  // batches seen at the last check
};

// Checks the store after a kill. `runs` holds every earlier run of this store; the
// current one is added.
//
// A writer killed between writing its meta page and publishing the new transaction
// id in lock.mdb leaves a batch that is committed on disk but not yet visible to
// readers of processes that kept the store open: LMDB publishes it when the next
// writer takes the (robust) write lock. So a run's unacknowledged batch may appear
// at a later check, whole; nothing else may change.
void check_store(LmdbKVStore& store, int run, int acknowledged, std::map<int, RunState>& runs,
                 Totals& totals) {
  ASSERT_NO_THROW(store.verify());
  runs[run].acknowledged = acknowledged;
  runs[run].present = acknowledged;

  // run -> batch -> j values seen
  std::map<int, std::map<int, std::set<int>>> seen;
  for (const std::string& collection : store.collections()) {
    if (collection == kMarkerCollection) continue;
    store.scan(collection, [&](std::string_view key, std::string_view text) {
      const Value value = EncodedValue::parse(text).decode();
      const int r = value.at("run").get<int>();
      const int b = value.at("batch").get<int>();
      const int j = value.at("j").get<int>();
      const CrashBatch expected = crash_batch(r, b);
      ASSERT_LT(static_cast<std::size_t>(j), expected.puts.size());
      const CrashEntry& entry = expected.puts[static_cast<std::size_t>(j)];
      EXPECT_EQ(entry.collection, collection);
      EXPECT_EQ(entry.key, key);
      EXPECT_EQ(entry.value, value);
      EXPECT_TRUE(seen[r][b].insert(j).second);
    });
  }
  for (auto& [r, state] : runs) {
    const int present = seen.contains(r) ? static_cast<int>(seen[r].size()) : 0;
    // Every acknowledged batch, plus perhaps the one the kill interrupted.
    EXPECT_TRUE(present == state.acknowledged || present == state.acknowledged + 1)
        << "run " << r << ": " << state.acknowledged << " acknowledged, " << present << " present";
    EXPECT_GE(present, state.present) << "run " << r << " lost a batch";
    if (present == state.acknowledged + 1) {
      if (r == run)
        ++totals.unacknowledged_but_committed;
      else if (state.present == state.acknowledged)
        ++totals.published_late;
    }
    state.present = present;
  }
  for (const auto& [r, batches] : seen) {
    ASSERT_TRUE(runs.contains(r)) << "data of unknown run " << r;
    int expected_batch = 0;
    for (const auto& [b, js] : batches) {
      EXPECT_EQ(b, expected_batch++) << "run " << r << ": batches must be a prefix";
      EXPECT_EQ(js.size(), crash_batch(r, b).puts.size())
          << "run " << r << " batch " << b << " is partial";
    }
  }
  // Markers: one per run that committed anything, naming its last batch.
  std::map<int, std::vector<std::string>> markers;
  store.scan(kMarkerCollection, [&](std::string_view key, std::string_view text) {
    markers[EncodedValue::parse(text).decode().at("run").get<int>()].emplace_back(key);
  });
  for (const auto& [r, state] : runs) {
    const int count = state.present;
    if (count == 0) {
      EXPECT_FALSE(markers.contains(r)) << "run " << r;
    } else {
      EXPECT_EQ(markers[r], std::vector<std::string>{crash_marker(r, count - 1)}) << "run " << r;
    }
  }
}

TEST(LmdbCrash, KilledWritersNeverExposeHalfABatch) {
  TempDir dir;
  const std::uint64_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> delay_us(0, 30000);
  const auto start = std::chrono::steady_clock::now();
  Totals totals;
  std::map<int, RunState> runs;
  std::string path;
  std::unique_ptr<LmdbKVStore> held;  // the store kept open across kills, if any
  int iteration = 0;
  for (; iteration < kIterations && std::chrono::steady_clock::now() - start < kBudget;
       ++iteration) {
    if (iteration % kRunsPerStore == 0) {
      path = dir.file("store" + std::to_string(iteration / kRunsPerStore));
      runs.clear();
      held.reset();
      if ((iteration / kRunsPerStore) % 2 == 1)
        held = std::make_unique<LmdbKVStore>(path, LmdbOptions{.map_size = 64 << 10});
    }
    const int run = iteration;
    ChildProcess child(
        {"crash-writer", path, std::to_string(run), run % 2 == 0 ? "full" : "nometasync"});
    // One kill in ten right away (during start-up or open), the others anywhere in
    // the 30 ms after the first commit: counted from the first acknowledgement, not
    // from the spawn, so that a slow start (sanitizers, a loaded machine) does not
    // turn every kill into a kill during open.
    std::vector<std::string> lines;
    if (rng() % 10 != 0) {
      if (std::optional<std::string> first = child.read_line()) lines.push_back(*first);
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    }
    child.kill();
    const int status = child.wait();
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer exited by itself, status " << status;
    ++totals.kills;
    for (std::string& line : child.read_remaining_lines()) lines.push_back(std::move(line));
    int acknowledged = 0;
    for (const std::string& line : lines) {
      ASSERT_EQ(line, std::to_string(acknowledged)) << "acknowledgements come in order";
      ++acknowledged;
    }
    totals.acknowledged += acknowledged;
    if (held) {
      totals.stale_readers_cleared += held->clear_stale_readers();
      check_store(*held, run, acknowledged, runs, totals);
    } else {
      LmdbKVStore store(path);
      check_store(store, run, acknowledged, runs, totals);
    }
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) {
      FAIL() << "after kill #" << totals.kills << " (run " << run << ", store " << path << ")";
    }
  }
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  std::cout << "crash test: " << totals.kills << " kills in " << elapsed.count() << " ms, "
            << totals.acknowledged << " acknowledged batches, "
            << totals.unacknowledged_but_committed << " committed-but-unacknowledged batches ("
            << totals.published_late << " published at the next write), "
            << totals.stale_readers_cleared << " stale reader slots cleared\n";
  // 300 on a quiet machine; a loaded one (sanitizers, parallel jobs) gets fewer.
  EXPECT_GE(totals.kills, 50) << "too few kills within the time budget";
  EXPECT_GT(totals.acknowledged, totals.kills) << "kills should land after commits too";
  EXPECT_GT(totals.stale_readers_cleared, 0u) << "killed writers leave reader slots behind";
}

}  // namespace
}  // namespace kvdex::testing
