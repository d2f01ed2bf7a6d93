// Several processes on one store: the test helper (lmdb_test_helper.cc) runs as a
// child process started with posix_spawn.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "kvdex/kvdex.h"
#include "kvdex/lmdb_kvstore.h"
#include "lmdb/child_process.h"
#include "test_util.h"

namespace kvdex::testing {
namespace {

std::string run_helper(const std::vector<std::string>& args) {
  ChildProcess child(args);
  std::optional<std::string> line = child.read_line();
  EXPECT_EQ(child.exit_code(), 0) << "helper " << args.at(0);
  return line.value_or("<no output>");
}

TEST(LmdbMultiProcess, OtherProcessesSeeCommittedData) {
  TempDir dir;
  const std::string path = dir.file("store");
  LmdbKVStore store(path);  // stays open in this process throughout
  store.put("k", {{"from", "parent"}}, "docstore/data");
  EXPECT_EQ(run_helper({"get", path, "docstore/data", "k"}), R"({"from": "parent"})");
  EXPECT_EQ(run_helper({"get", path, "docstore/data", "missing"}), "absent");

  // The child writes into an existing and a new collection; this process sees both.
  EXPECT_EQ(run_helper({"put", path, "docstore/data", "c1", R"({"from": "child"})"}), "ok");
  EXPECT_EQ(run_helper({"put", path, "made/by/child", "c2", R"({"n": 2})"}), "ok");
  EXPECT_EQ(store.get("c1", "docstore/data"), (Value{{"from", "child"}}));
  EXPECT_EQ(store.get("c2", "made/by/child"), (Value{{"n", 2}}));
  EXPECT_EQ(store.collections(), (std::vector<std::string>{"docstore/data", "made/by/child"}));

  // And the parent's later writes reach a new child.
  store.put("k", {{"from", "parent"}, {"again", true}}, "made/by/child");
  EXPECT_EQ(run_helper({"get", path, "made/by/child", "k"}),
            R"({"from": "parent", "again": true})");
  store.verify();
}

TEST(LmdbMultiProcess, MapGrownByAnotherProcessIsAdopted) {
  TempDir dir;
  const std::string path = dir.file("store");
  LmdbKVStore store(path, {.map_size = 64 << 10});
  store.put("before", {{"v", 1}}, "grow");
  const std::size_t before = store.stats().map_size;
  // The child writes about 4 MB: it grows the map far beyond this process's map.
  EXPECT_EQ(run_helper({"fill", path, "grow", "c", "400", "10000", "50"}), "done");
  std::optional<Value> v = store.get("c399", "grow");  // MDB_MAP_RESIZED, adopted
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ((*v)["i"], 399);
  EXPECT_EQ(store.count("grow"), 401u);
  const LmdbStats stats = store.stats();
  EXPECT_GT(stats.map_size, before);
  EXPECT_GE(stats.map_size, stats.used_bytes);
  EXPECT_GE(stats.map_resizes, 1u);
  store.put("after", {{"v", 2}}, "grow");
  store.verify();
}

// Two writer processes commit batches of the same keys; a reader here never sees a
// batch mixed with another, and every batch of both is committed.
TEST(LmdbMultiProcess, TwoWriterProcessesAreSerialized) {
  TempDir dir;
  const std::string path = dir.file("store");
  LmdbKVStore store(path);
  store.put("k0", {{"writer", -1}, {"round", -1}}, "shared");  // both writers find the collection
  constexpr int kRounds = 150;
  constexpr int kKeys = 8;
  ChildProcess a({"writer", path, "1", std::to_string(kRounds), std::to_string(kKeys)});
  ChildProcess b({"writer", path, "2", std::to_string(kRounds), std::to_string(kKeys)});
  std::atomic<bool> done{false};
  int torn = 0;
  int snapshots = 0;
  std::thread watcher([&] {
    while (!done) {
      std::vector<KeyValue> all = store.get_all("shared");
      ++snapshots;
      if (all.size() <= 1) continue;  // before the first batch
      if (all.size() != kKeys) ++torn;
      for (const auto& [key, value] : all) {
        if (value != all.front().second) ++torn;
      }
    }
  });
  EXPECT_EQ(a.read_line(std::chrono::seconds(120)), "done");
  EXPECT_EQ(b.read_line(std::chrono::seconds(120)), "done");
  done = true;
  watcher.join();
  EXPECT_EQ(a.exit_code(), 0);
  EXPECT_EQ(b.exit_code(), 0);
  EXPECT_EQ(torn, 0);
  EXPECT_GT(snapshots, 0);
  EXPECT_EQ(store.count("own"), 2u * kRounds);
  for (int r = 0; r < kRounds; ++r) {
    EXPECT_TRUE(store.get("w1-" + std::to_string(r), "own").has_value());
    EXPECT_TRUE(store.get("w2-" + std::to_string(r), "own").has_value());
  }
  std::vector<KeyValue> final_state = store.get_all("shared");
  ASSERT_EQ(final_state.size(), static_cast<std::size_t>(kKeys));
  EXPECT_EQ(final_state.front().second["round"], kRounds - 1);
  store.verify();
}

// A process killed inside a read transaction leaves its reader slot behind; the
// slot is cleared by an explicit check and by opening the store.
TEST(LmdbMultiProcess, StaleReadersOfKilledProcessesAreCleared) {
  TempDir dir;
  const std::string path = dir.file("store");
  {
    LmdbKVStore store(path, {.reader_check_interval = std::chrono::hours(1)});
    store.put("k", {{"v", 1}}, "c");
    ChildProcess child({"hold-reader", path, "c"});
    ASSERT_EQ(child.read_line(), "ready");
    child.kill();
    child.wait();
    EXPECT_EQ(store.clear_stale_readers(), 1u);
    EXPECT_EQ(store.clear_stale_readers(), 0u);
    EXPECT_EQ(store.stats().stale_readers_cleared, 1u);
  }
  {
    ChildProcess child({"hold-reader", path, "c"});
    ASSERT_EQ(child.read_line(), "ready");
    child.kill();
    child.wait();
  }
  // Nobody has the store open now; the next opener clears the dead slot. (LMDB
  // resets the lock file when the first process opens it, so keep one open.)
  ChildProcess keeper({"hold-reader", path, "c"});
  ASSERT_EQ(keeper.read_line(), "ready");
  {
    ChildProcess child({"hold-reader", path, "c"});
    ASSERT_EQ(child.read_line(), "ready");
    child.kill();
    child.wait();
  }
  LmdbKVStore store(path);
  EXPECT_EQ(store.stats().stale_readers_cleared, 1u) << "cleared at open";
  EXPECT_EQ(store.get("k", "c"), (Value{{"v", 1}}));
}

// LMDB forbids using an environment after fork(); a child that opens the store
// again gets its own environment, not the one inherited from the parent.
TEST(LmdbMultiProcess, ForkedChildOpensTheStoreAgain) {
  TempDir dir;
  const std::string path = dir.file("store");
  LmdbKVStore store(path);
  store.put("k", {{"v", 1}});
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 0;
    try {
      LmdbKVStore again(path);
      if (again.stats().collections_open != 0) code = 3;  // the parent's environment has one
      again.put("child", {{"v", 2}});
      if (again.get("k") != Value{{"v", 1}}) code = 1;
    } catch (...) {
      code = 2;
    }
    ::_exit(code);  // no destructors of the parent's objects in the child
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(store.get("child"), (Value{{"v", 2}}));
  store.put("after", {{"v", 3}});
  store.verify();
}

}  // namespace
}  // namespace kvdex::testing
