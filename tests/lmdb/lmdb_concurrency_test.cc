// LmdbKVStore under many threads (labelled "concurrency": these also run under TSan).
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <thread>

#include "kvdex/kvdex.h"
#include "kvdex/lmdb_kvstore.h"
#include "test_util.h"

namespace kvdex::testing {
namespace {

Value padded(int i, std::size_t bytes) { return Value{{"i", i}, {"pad", std::string(bytes, 'x')}}; }

// Growing the map needs every read transaction of the process to end; readers that
// keep coming must neither starve the growth nor see anything torn.
TEST(LmdbConcurrency, ReadersKeepReadingWhileTheMapGrows) {
  TempDir dir;
  LmdbKVStore store(dir.file("store"),
                    {.map_size = 64 << 10, .durability = LmdbDurability::kNoMetaSync});
  constexpr int kBatches = 150;
  constexpr int kPerBatch = 8;
  std::atomic<int> committed{0};
  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::thread writer([&] {
    for (int b = 0; b < kBatches; ++b) {
      std::vector<KeyValue> pairs;
      for (int i = 0; i < kPerBatch; ++i)
        pairs.emplace_back("b" + std::to_string(b) + "/" + std::to_string(i), padded(b, 3000));
      store.put_all(pairs, "grow", kPerBatch);
      committed = b + 1;
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      int round = 0;
      while (!done) {
        const int n = committed;
        if (n == 0) continue;
        const int b = (round++ * 7 + r) % n;
        std::optional<Value> v = store.get("b" + std::to_string(b) + "/3", "grow");
        if (!v || (*v)["i"] != b) ++errors;
        if (round % 16 == 0) {
          // Whole batches only: the count is a multiple of the batch size.
          if (store.count("grow") % kPerBatch != 0) ++errors;
          if (store.get_all("grow").size() % kPerBatch != 0) ++errors;
        }
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(store.stats().map_resizes, 3u);
  EXPECT_EQ(store.count("grow"), static_cast<std::uint64_t>(kBatches * kPerBatch));
  store.verify();
}

// Collections are opened lazily, from readers and writers at once.
TEST(LmdbConcurrency, ThreadsCreateAndReadCollectionsConcurrently) {
  TempDir dir;
  LmdbKVStore store(dir.file("store"), {.durability = LmdbDurability::kNoMetaSync});
  constexpr int kThreads = 4;
  constexpr int kCollections = 25;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int c = 0; c < kCollections; ++c) {
        const std::string name =
            "t" + std::to_string(t) + "/c" + std::to_string(c) + "/" + std::string(c * 40, 'n');
        store.put("k", {{"t", t}, {"c", c}}, name);
        // Read what the other threads may just have created (or not yet).
        const std::string other = "t" + std::to_string((t + 1) % kThreads) + "/c" +
                                  std::to_string(c) + "/" + std::string(c * 40, 'n');
        std::optional<Value> v = store.get("k", other);
        if (v && (*v)["c"] != c) ++errors;
        if (store.get("k", name) != Value{{"t", t}, {"c", c}}) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  const std::vector<std::string> names = store.collections();
  ASSERT_EQ(names.size(), static_cast<std::size_t>(kThreads * kCollections));
  // Creation order holds within each thread.
  std::map<int, int> last_seen;
  for (const std::string& name : names) {
    const int t = name[1] - '0';
    const int c = std::stoi(name.substr(name.find("/c") + 2));
    EXPECT_GT(c, last_seen.count(t) ? last_seen[t] : -1);
    last_seen[t] = c;
  }
  store.verify();
}

// Stores on one directory come and go from many threads while others use it: the
// shared environment is closed only when the last one goes, and reopened cleanly.
TEST(LmdbConcurrency, StoresOnOneDirectoryOpenAndCloseConcurrently) {
  TempDir dir;
  const std::string path = dir.file("store");
  { LmdbKVStore(path).put("seed", {{"v", 0}}); }
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        LmdbKVStore store(path, {.durability = LmdbDurability::kNoMetaSync});
        store.put("t" + std::to_string(t) + "/" + std::to_string(i), {{"i", i}});
        if (store.get("seed") != Value{{"v", 0}}) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  LmdbKVStore store(path);
  EXPECT_EQ(store.count(), 101u);
}

// A reader inside a long scan does not hold up writers.
TEST(LmdbConcurrency, ReadersDoNotBlockWriters) {
  TempDir dir;
  LmdbKVStore store(dir.file("store"), {.map_size = 64 << 20});
  store.put("k", {{"v", 0}});
  std::promise<void> inside;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::thread reader([&] {
    bool first = true;
    store.scan("data", [&](std::string_view, std::string_view text) {
      EXPECT_EQ(text, R"({"v": 0})");  // the snapshot of when the scan began
      if (first) {
        first = false;
        inside.set_value();
        released.wait();
      }
    });
  });
  inside.get_future().wait();
  for (int i = 1; i <= 20; ++i)
    store.put("k", {{"v", i}});  // would hang if readers blocked writers
  EXPECT_EQ(store.get("k"), (Value{{"v", 20}}));
  release.set_value();
  reader.join();
}

TEST(LmdbConcurrency, ManyAsyncOperationsInFlight) {
  TempDir dir;
  LmdbKVStore store(dir.file("store"), {.durability = LmdbDurability::kNoMetaSync});
  std::vector<Future<void>> puts;
  for (int i = 0; i < 200; ++i)
    puts.push_back(store.aput("k" + std::to_string(i), {{"i", i}}, "async"));
  for (auto& f : puts) f.get();
  std::vector<Future<std::optional<Value>>> gets;
  for (int i = 0; i < 200; ++i) gets.push_back(store.aget("k" + std::to_string(i), "async"));
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(gets[static_cast<std::size_t>(i)].get(), (Value{{"i", i}}));
  std::vector<Future<void>> batches;
  for (int c = 0; c < 3; ++c) {
    std::vector<KeyValue> pairs;
    for (int i = 0; i < 100; ++i) pairs.emplace_back("p" + std::to_string(i), Value{{"c", c}});
    batches.push_back(store.aput_all(pairs, "docstore/" + std::to_string(c), 10));
  }
  for (auto& f : batches) f.get();
  for (int c = 0; c < 3; ++c) EXPECT_EQ(store.count("docstore/" + std::to_string(c)), 100u);
}

}  // namespace
}  // namespace kvdex::testing
