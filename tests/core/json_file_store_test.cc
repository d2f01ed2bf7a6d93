#include "kvdex/json_file_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "kvdex/open.h"
#include "kvdex/simple_kvstore.h"
#include "test_util.h"

namespace kvdex {
namespace {

using testing::TempDir;

std::string saved_text(const std::string& path) {
  return SimpleKVStore::from_persist_path(path)->to_json_text();
}

TEST(JsonFileStore, CloseSavesAndThenRefusesEveryCall) {
  TempDir dir;
  const std::string path = dir.file("s.json");
  auto store = JsonFileStore::open(path);
  store->put("k", {{"v", 1}});
  store->close();
  EXPECT_TRUE(store->closed());
  EXPECT_EQ(saved_text(path), R"({"data": {"k": {"v": 1}}})");
  KVDEX_EXPECT_ERROR(store->put("k", {{"v", 2}}), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store->get("k"), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store->remove("k"), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store->collections(), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store->count(), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store->flush(), ErrorCode::kFailedPrecondition);
  try {
    store->get("k");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "store '" + path + "' is closed");
  }
  store->close();  // again: nothing to do
}

TEST(JsonFileStore, AFailedCloseThrowsAndKeepsTheWritesForARetry) {
  TempDir dir;
  const std::string path = dir.file("sub/s.json");
  auto store = JsonFileStore::open(path);
  store->put("k", {{"v", 1}});
  // The directory the file goes in cannot be created: a regular file is in the way
  // (a permission test would pass as root).
  testing::write_file_bytes(dir.file("sub"), "not a directory");
  try {
    store->close();
    ADD_FAILURE() << "close() reported a save that did not happen";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIOError);
    EXPECT_NE(std::string(e.what()).find(dir.file("sub")), std::string::npos) << e.what();
  }
  EXPECT_FALSE(store->closed());
  EXPECT_EQ(store->get("k"), Value({{"v", 1}}));
  std::filesystem::remove(dir.file("sub"));
  store->close();
  EXPECT_EQ(saved_text(path), R"({"data": {"k": {"v": 1}}})");
}

TEST(JsonFileStore, BaseKVStoreCloseFlushesEveryStore) {
  TempDir dir;
  std::unique_ptr<BaseKVStore> store = open("json:" + dir.file("s.json"));
  store->put("k", {{"v", 1}});
  store->close();
  EXPECT_EQ(saved_text(dir.file("s.json")), R"({"data": {"k": {"v": 1}}})");
  std::unique_ptr<BaseKVStore> memory = open("memory:");
  memory->close();  // the default: flush(), a no-op
}

TEST(JsonFileStore, FlushKeepsWhatAnotherStoreSavedMeanwhile) {
  TempDir dir;
  const std::string path = dir.file("s.json");
  auto a = JsonFileStore::open(path);
  auto b = JsonFileStore::open(path);
  a->put("from-a", {{"v", 1}});
  a->put("both", {{"v", "a"}});
  b->put("from-b", {{"v", 2}}, "other");
  b->put("both", {{"v", "b"}});
  a->flush();
  b->flush();  // reloads a's file, applies b's writes on top
  EXPECT_EQ(saved_text(path),
            R"({"data": {"from-a": {"v": 1}, "both": {"v": "b"}}, "other": {"from-b": {"v": 2}}})");
  EXPECT_EQ(b->get("from-a"), Value({{"v", 1}})) << "b adopted a's write";
  a->remove("from-a");
  a->flush();
  EXPECT_EQ(saved_text(path), R"({"data": {"both": {"v": "b"}}, "other": {"from-b": {"v": 2}}})");
  EXPECT_TRUE(std::filesystem::exists(path + ".lock"));
}

TEST(JsonFileStore, ManyStoresWritingOneFileKeepEveryWrite) {
  TempDir dir;
  const std::string path = dir.file("s.json");
  constexpr int kThreads = 4, kWrites = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        auto store = JsonFileStore::open(path);
        store->put("t" + std::to_string(t) + "-" + std::to_string(i), {{"v", i}});
        store->close();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(JsonFileStore::open(path)->count(), static_cast<std::uint64_t>(kThreads * kWrites));
}

TEST(JsonFileStore, APathWithANulByteIsRefused) {
  TempDir dir;
  const std::string path = dir.file("a") + std::string(1, '\0') + "b.json";
  KVDEX_EXPECT_ERROR(JsonFileStore::open(path), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(open("json:" + path), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(open(path), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(parse_store_uri(std::string("memory:\0x", 9)), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir.file("a")));
}

}  // namespace
}  // namespace kvdex
