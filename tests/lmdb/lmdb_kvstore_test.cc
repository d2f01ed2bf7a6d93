// LmdbKVStore beyond the conformance suite: persistence, layout limits, growth,
// options, errors and the constant-time open.
#include "kvdex/lmdb_kvstore.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "kvdex/kvdex.h"
#include "lmdb/key_codec.h"
#include "lmdb/lmdb_error.h"
#include "test_util.h"

namespace kvdex::testing {
namespace {

Value padded(int i, std::size_t bytes) { return Value{{"i", i}, {"pad", std::string(bytes, 'x')}}; }

// Format 4's on-disk pieces, for tests that write a store with raw LMDB.
std::string u64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8)
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}
// The LMDB key of `key` (inline form) in collection `id`, in "kvdex:data".
std::string data_key(std::uint64_t id, const std::string& key) { return u64(id) + key; }
// A collection's counters record in the catalogue, and its key.
std::string counters(std::uint64_t next_seq, std::uint64_t count) {
  return u64(next_seq) + u64(count);
}
std::string counters_key(std::uint64_t id) { return "s" + u64(id); }

// Collection names that must all work, including ones that look like the store's
// internal database names.
std::vector<std::string> unusual_collection_names() {
  return {"docstore/data",
          "",
          "/",
          "a/b/c",
          "\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac",
          std::string(5000, 'x'),
          std::string(5000, 'x') + "2",
          std::string("nul\0in", 6),
          "kvdex:catalogue",
          "kvdex:c:1",
          "kvdex:data",
          std::string(511, 'z'),
          "data"};
}

TEST(LmdbKVStore, PersistsAcrossReopen) {
  TempDir dir;
  const std::string path = dir.file("store");
  const std::vector<std::string> names = unusual_collection_names();
  {
    LmdbKVStore store(path);
    for (std::size_t i = 0; i < names.size(); ++i) {
      store.put("k" + std::to_string(i), {{"c", i}}, names[i]);
      store.put(std::string(3000, 'L') + std::to_string(i), {{"long", i}}, names[i]);
    }
    store.put("", {{"empty", true}});
  }
  LmdbKVStore store(path);
  EXPECT_EQ(store.collections(), names) << "creation order is kept";
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(store.get("k" + std::to_string(i), names[i]), (Value{{"c", i}})) << i;
    EXPECT_EQ(store.get(std::string(3000, 'L') + std::to_string(i), names[i]),
              (Value{{"long", i}}));
  }
  EXPECT_EQ(store.get(""), (Value{{"empty", true}}));
  EXPECT_EQ(store.count("data"), 3u);
  store.verify();
}

TEST(LmdbKVStore, CloseFlushesAndRefusesEveryLaterCall) {
  TempDir dir;
  const std::string path = dir.file("store");
  LmdbKVStore store(path, LmdbOptions{.durability = LmdbDurability::kNoMetaSync});
  store.put("k", {{"v", 1}}, "c");
  Future<void> pending = store.aput("k2", {{"v", 2}}, "c");
  store.close();
  EXPECT_TRUE(pending.ready()) << "close() waits for pending operations";
  EXPECT_NO_THROW(pending.get());
  KVDEX_EXPECT_ERROR(store.put("k3", {{"v", 3}}, "c"), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store.get("k", "c"), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store.get_all("c"), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store.remove("k", "c"), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store.collections(), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store.count("c"), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store.flush(), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store.verify(), ErrorCode::kFailedPrecondition);
  KVDEX_EXPECT_ERROR(store.aget("k", "c").get(), ErrorCode::kFailedPrecondition);
  EXPECT_NO_THROW(store.close()) << "closing twice does nothing";
  LmdbKVStore again(path);
  EXPECT_EQ(again.get("k", "c"), (Value{{"v", 1}}));
  EXPECT_EQ(again.get("k2", "c"), (Value{{"v", 2}}));
}

TEST(LmdbKVStore, CollectionsAreListedInCreationOrderAndReadsCreateNothing) {
  TempDir dir;
  LmdbKVStore store(dir.file("store"));
  EXPECT_TRUE(store.collections().empty());
  EXPECT_FALSE(store.get("k", "read/only").has_value());
  EXPECT_FALSE(store.remove("k", "deleted/from"));
  EXPECT_TRUE(store.get_all("listed").empty());
  EXPECT_EQ(store.count("counted"), 0u);
  for (const char* name : {"zeta", "alpha", "mid", "alpha"}) store.put("k", {{"v", 1}}, name);
  WriteBatch batch;
  batch.remove("removed/only", "k");  // a remove alone creates nothing
  batch.put("batch/b", "k", EncodedValue::encode({{"v", 2}}));
  batch.put("batch/a", "k", EncodedValue::encode({{"v", 3}}));
  store.write(batch);
  EXPECT_EQ(store.collections(),
            (std::vector<std::string>{"zeta", "alpha", "mid", "batch/b", "batch/a"}));
}

std::vector<std::string> keys_of(LmdbKVStore& store, std::string_view collection) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : store.get_all_encoded(collection)) keys.push_back(key);
  std::vector<std::string> scanned;
  store.scan(collection,
             [&](std::string_view key, std::string_view) { scanned.emplace_back(key); });
  EXPECT_EQ(scanned, keys) << "scan and get_all agree";
  return keys;
}

// Insertion order, as Python's dict: a new key goes to the end, an overwrite keeps
// its place, delete + re-insert moves the key to the end; across reopen, and when it
// all happens inside one batch.
TEST(LmdbKVStore, GetAllIsInInsertionOrderAcrossReopen) {
  TempDir dir;
  const std::string path = dir.file("store");
  {
    LmdbKVStore store(path);
    for (const char* key : {"b", "a", "c", "aa"}) store.put(key, {{"k", key}});
    EXPECT_EQ(keys_of(store, "data"), (std::vector<std::string>{"b", "a", "c", "aa"}));
  }
  {
    LmdbKVStore store(path);
    store.put("a", {{"k", "overwritten"}});
    EXPECT_TRUE(store.remove("b"));
    store.put("b", {{"k", "back"}});
    store.put("0", {{"k", "new"}});
    EXPECT_EQ(keys_of(store, "data"), (std::vector<std::string>{"a", "c", "aa", "b", "0"}));
    // Removing the last entry and inserting another reuses its sequence number.
    EXPECT_TRUE(store.remove("0"));
    store.put("z", {{"k", "z"}});
    WriteBatch batch;  // one transaction: put, remove, put again, overwrite
    batch.put("data", "new1", EncodedValue::encode({{"v", 1}}));
    batch.put("data", "new2", EncodedValue::encode({{"v", 2}}));
    batch.remove("data", "new1");
    batch.put("data", "new1", EncodedValue::encode({{"v", 3}}));
    batch.put("data", "c", EncodedValue::encode({{"v", 4}}));
    batch.remove("data", "aa");
    batch.put("other", "o", EncodedValue::encode({{"v", 5}}));
    store.write(batch);
    store.verify();
  }
  LmdbKVStore store(path);
  const std::vector<std::string> expected = {"a", "c", "b", "z", "new2", "new1"};
  EXPECT_EQ(keys_of(store, "data"), expected);
  std::vector<KeyValue> all = store.get_all();
  ASSERT_EQ(all.size(), expected.size());
  EXPECT_EQ(all[0].second, (Value{{"k", "overwritten"}}));
  EXPECT_EQ(all[1].second, (Value{{"v", 4}}));
  EXPECT_EQ(all[5].second, (Value{{"v", 3}}));
  EXPECT_EQ(store.count("data"), expected.size());
  EXPECT_EQ(keys_of(store, "other"), (std::vector<std::string>{"o"}));
  // Emptied and filled again, a collection starts over at the end.
  for (const std::string& key : expected) EXPECT_TRUE(store.remove(key));
  EXPECT_TRUE(keys_of(store, "data").empty());
  store.put("again", {{"v", 1}});
  store.put("a", {{"v", 2}});
  EXPECT_EQ(keys_of(store, "data"), (std::vector<std::string>{"again", "a"}));
  store.verify();
}

// Random batches of puts, overwrites and removes (several of the same key in one
// transaction, removes of the newest entry followed by appends, page splits and
// merges in both databases) leave LMDB in the order of a Python dict, here
// SimpleKVStore fed the same batches.
TEST(LmdbKVStore, RandomBatchesKeepDictOrder) {
  TempDir dir;
  LmdbKVStore store(dir.file("store"), {.durability = LmdbDurability::kNoMetaSync});
  SimpleKVStore model;
  std::mt19937 rng(20261126);
  auto key_of = [](unsigned k) {
    return k % 10 == 0 ? std::string(500, 'L') + std::to_string(k) : "key" + std::to_string(k);
  };
  int next_value = 0;
  for (int round = 0; round < 60; ++round) {
    WriteBatch batch;
    const unsigned ops = 1 + rng() % 150;
    for (unsigned i = 0; i < ops; ++i) {
      const unsigned k = rng() % (round < 30 ? 400 : 60);  // later rounds churn few keys
      const std::string collection = rng() % 8 == 0 ? "other" : "data";
      if (rng() % 3 == 0) {
        batch.remove(collection, key_of(k));
      } else {
        batch.put(
            collection, key_of(k),
            EncodedValue::encode({{"v", next_value++}, {"pad", std::string(rng() % 300, 'p')}}));
      }
    }
    store.write(batch);
    model.write(batch);
    if (round % 10 == 9) {
      for (const char* collection : {"data", "other"}) {
        const std::vector<EncodedKeyValue> got = store.get_all_encoded(collection);
        const std::vector<EncodedKeyValue> want = model.get_all_encoded(collection);
        ASSERT_EQ(got.size(), want.size()) << "round " << round;
        for (std::size_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(got[i].first, want[i].first) << "round " << round << " #" << i;
          ASSERT_EQ(got[i].second.text(), want[i].second.text());
        }
        EXPECT_EQ(store.count(collection), want.size());
      }
      store.verify();
    }
  }
}

// Keys over 480 bytes (stored under a hashed LMDB key, far from their byte order)
// and the empty key keep their insertion order among short keys.
TEST(LmdbKVStore, LongKeysKeepTheirOrder) {
  TempDir dir;
  const std::string path = dir.file("store");
  const std::string long_a = std::string(481, 'b') + "a";
  const std::string long_b = std::string(481, 'b') + "b";  // same 480-byte head as long_a
  const std::string huge = std::string(100000, 'a');
  std::vector<std::string> expected = {long_b, "m", "", huge, std::string(480, 'b'), long_a, "a"};
  {
    LmdbKVStore store(path);
    std::vector<KeyValue> pairs;
    for (std::size_t i = 0; i < expected.size(); ++i)
      pairs.emplace_back(expected[i], Value{{"i", i}});
    store.put_all(pairs, "long", 3);
    EXPECT_EQ(keys_of(store, "long"), expected);
  }
  LmdbKVStore store(path);
  EXPECT_EQ(keys_of(store, "long"), expected);
  store.put(long_b, {{"over", "written"}}, "long");  // keeps its place (first)
  EXPECT_TRUE(store.remove(huge, "long"));
  store.put(huge, {{"re", "inserted"}}, "long");  // moves to the end
  EXPECT_TRUE(store.remove("", "long"));
  expected = {long_b, "m", std::string(480, 'b'), long_a, "a", huge};
  EXPECT_EQ(keys_of(store, "long"), expected);
  EXPECT_EQ(store.get(long_b, "long"), (Value{{"over", "written"}}));
  EXPECT_EQ(store.get_all("long").back().second, (Value{{"re", "inserted"}}));
  store.verify();
}

// A LlamaIndex persist file copied into LMDB comes back in the file's order, and
// persisting what LMDB returns gives the file byte for byte (what `kvdex copy` does).
TEST(LmdbKVStore, LlamaIndexFileComesBackInItsOrder) {
  const std::string file =
      std::string(KVDEX_SOURCE_DIR) + "/tests/golden/canonical/llamaindex_like.json";
  std::unique_ptr<SimpleKVStore> source = SimpleKVStore::from_persist_path(file);
  TempDir dir;
  {
    LmdbKVStore store(dir.file("store"));
    for (const std::string& collection : source->collections()) {
      store.put_all_encoded(source->get_all_encoded(collection), collection, 7);
    }
  }
  LmdbKVStore store(dir.file("store"));
  EXPECT_EQ(store.collections(), source->collections());
  SimpleKVStore copy;
  for (const std::string& collection : store.collections()) {
    const std::vector<EncodedKeyValue> expected = source->get_all_encoded(collection);
    const std::vector<EncodedKeyValue> got = store.get_all_encoded(collection);
    ASSERT_EQ(got.size(), expected.size()) << collection;
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].first, expected[i].first) << collection << " #" << i;
      EXPECT_EQ(got[i].second.text(), expected[i].second.text()) << collection << " #" << i;
      keys.push_back(got[i].first);
    }
    if (keys.size() > 2) {
      EXPECT_FALSE(std::is_sorted(keys.begin(), keys.end())) << "the file is not in key order";
    }
    copy.put_all_encoded(got, collection, 1000);
  }
  EXPECT_EQ(copy.to_json_text(), read_file_bytes(file));
  store.verify();
}

TEST(LmdbKVStore, LongKeysWorkAtEveryLength) {
  TempDir dir;
  LmdbKVStore store(dir.file("store"));
  std::vector<std::string> keys;
  for (std::size_t n : {1u, 479u, 480u, 481u, 500u, 511u, 512u, 4096u, 1u << 20}) {
    keys.push_back(std::string(n, 'k'));
    keys.push_back(std::string(n, 'k') + "!");  // shares a prefix with the previous one
  }
  for (std::size_t i = 0; i < keys.size(); ++i) store.put(keys[i], {{"i", i}}, "long");
  EXPECT_EQ(store.count("long"), keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i)
    EXPECT_EQ(store.get(keys[i], "long"), (Value{{"i", i}}));
  std::set<std::string> scanned;
  store.scan("long", [&](std::string_view key, std::string_view) { scanned.emplace(key); });
  EXPECT_EQ(scanned, std::set<std::string>(keys.begin(), keys.end()));
  for (std::size_t i = 0; i < keys.size(); i += 2) EXPECT_TRUE(store.remove(keys[i], "long"));
  for (std::size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(store.get(keys[i], "long").has_value(), i % 2 == 1) << "key of " << keys[i].size();
  }
  store.put(keys[1], {{"over", "written"}}, "long");
  EXPECT_EQ(store.get(keys[1], "long"), (Value{{"over", "written"}}));
  EXPECT_EQ(store.count("long"), keys.size() / 2);
  store.verify();
}

TEST(LmdbKVStore, OpensThroughUris) {
  TempDir dir;
  const std::vector<std::string> schemes = registered_schemes();
  EXPECT_NE(std::find(schemes.begin(), schemes.end(), "lmdb"), schemes.end());
  {
    std::unique_ptr<BaseKVStore> store = kvdex::open("lmdb:" + dir.file("store"));
    ASSERT_NE(dynamic_cast<LmdbKVStore*>(store.get()), nullptr);
    store->put("k", {{"v", 1}});
  }
  std::unique_ptr<BaseKVStore> bare = kvdex::open(dir.file("store"));  // a bare path is lmdb:
  ASSERT_NE(dynamic_cast<LmdbKVStore*>(bare.get()), nullptr);
  EXPECT_EQ(bare->get("k"), (Value{{"v", 1}}));
  bare.reset();
  std::unique_ptr<BaseKVStore> ro = kvdex::open("lmdb:" + dir.file("store"), {.read_only = true});
  EXPECT_EQ(ro->get("k"), (Value{{"v", 1}}));
  KVDEX_EXPECT_ERROR(ro->put("k", {{"v", 2}}), ErrorCode::kNotSupported);
  KVDEX_EXPECT_ERROR(kvdex::open("lmdb:" + dir.file("missing"), {.create_if_missing = false}),
                     ErrorCode::kNotFound);
}

TEST(LmdbKVStore, MissingStoresAreNotFoundUnlessCreated) {
  TempDir dir;
  KVDEX_EXPECT_ERROR(LmdbKVStore(dir.file("a"), {.create_if_missing = false}),
                     ErrorCode::kNotFound);
  KVDEX_EXPECT_ERROR(LmdbKVStore(dir.file("b"), {.read_only = true}), ErrorCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir.file("a")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("b")));
  std::filesystem::create_directories(dir.file("empty-dir"));
  KVDEX_EXPECT_ERROR(LmdbKVStore(dir.file("empty-dir"), {.create_if_missing = false}),
                     ErrorCode::kNotFound);
  LmdbKVStore created(dir.file("deep/er/store"));  // parents are created
  EXPECT_TRUE(std::filesystem::exists(dir.file("deep/er/store/data.mdb")));
}

TEST(LmdbKVStore, ReadOnlyStoreReadsAndRefusesWrites) {
  TempDir dir;
  { LmdbKVStore(dir.file("store")).put("k", {{"v", 1}}, "c"); }
  LmdbKVStore store(dir.file("store"), {.read_only = true});
  EXPECT_EQ(store.get("k", "c"), (Value{{"v", 1}}));
  EXPECT_EQ(store.collections(), (std::vector<std::string>{"c"}));
  KVDEX_EXPECT_ERROR(store.put("k", {{"v", 2}}, "c"), ErrorCode::kNotSupported);
  KVDEX_EXPECT_ERROR(store.remove("k", "c"), ErrorCode::kNotSupported);
  KVDEX_EXPECT_ERROR(store.write(WriteBatch{}), ErrorCode::kNotSupported);
  store.flush();  // nothing to sync
  store.verify();
  // The environment is open read-only in this process: a writable store cannot share it.
  try {
    LmdbKVStore writable(dir.file("store"));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(std::string(e.what()).find("read-only"), std::string::npos) << e.what();
  }
}

TEST(LmdbKVStore, ErrorsNameThePath) {
  TempDir dir;
  write_file_bytes(dir.file("a-file"), "not a directory");
  try {
    LmdbKVStore store(dir.file("a-file"));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(dir.file("a-file")), std::string::npos) << e.what();
  }
  std::filesystem::create_directories(dir.file("garbage"));
  write_file_bytes(dir.file("garbage/data.mdb"), std::string(16384, 'g'));
  try {
    LmdbKVStore store(dir.file("garbage"));
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir.file("garbage")), std::string::npos) << e.what();
  }
  KVDEX_EXPECT_ERROR(LmdbKVStore(""), ErrorCode::kInvalidArgument);
}

// A full reader table is a limit reached, not a server gone: with one slot, a read
// started inside a scan (which holds the slot) finds none free.
TEST(LmdbKVStore, FullReaderTableIsResourceExhausted) {
  TempDir dir;
  LmdbKVStore store(dir.file("store"), {.max_readers = 1});
  store.put("k", {{"v", 1}}, "c");
  bool visited = false;
  store.scan("c", [&](std::string_view, std::string_view) {
    visited = true;
    try {
      store.get("k", "c");
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted) << e.what();
      EXPECT_NE(std::string(e.what()).find("max_readers"), std::string::npos) << e.what();
    }
  });
  EXPECT_TRUE(visited);
  EXPECT_EQ(store.get("k", "c"), (Value{{"v", 1}}));  // the slot is free again
}

// The operating system's refusal reaches the caller as such, in its own words. Root
// may open anything, so the test needs another user.
TEST(LmdbKVStore, UnwritableFilesArePermissionDenied) {
  if (::geteuid() == 0) GTEST_SKIP() << "root is never refused";
  TempDir dir;
  const std::string path = dir.file("store");
  { LmdbKVStore(path).put("k", {{"v", 1}}); }
  std::filesystem::permissions(path + "/data.mdb", std::filesystem::perms::owner_read);
  try {
    LmdbKVStore store(path);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied) << e.what();
    EXPECT_NE(std::string(e.what()).find(std::strerror(EACCES)), std::string::npos) << e.what();
  }
}

// Every LMDB code and errno value the translation singles out, with its exact code.
// Most cannot be provoked on demand (a full disk, a transaction of 2^17 dirty pages).
TEST(LmdbErrors, EachFailureGetsTheCodeThatSaysWhatHappened) {
  const detail::LmdbErrorContext context{"/some/store", {}, false};
  auto code_of = [&](int rc) {
    try {
      detail::throw_lmdb_error(rc, "op", context);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("lmdb store '/some/store': op: "), std::string::npos)
          << e.what();
      return e.code();
    }
    return ErrorCode::kInternal;  // throw_lmdb_error is [[noreturn]]
  };
  EXPECT_EQ(code_of(MDB_DBS_FULL), ErrorCode::kInternal);  // kvdex opens two databases
  EXPECT_EQ(code_of(MDB_TXN_FULL), ErrorCode::kResourceExhausted);
  EXPECT_EQ(code_of(MDB_READERS_FULL), ErrorCode::kResourceExhausted);
  EXPECT_EQ(code_of(MDB_MAP_FULL), ErrorCode::kResourceExhausted);
  EXPECT_THROW(detail::throw_lmdb_error(MDB_MAP_FULL, "op", context), detail::LmdbMapFull);
  EXPECT_EQ(code_of(MDB_BAD_VALSIZE), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code_of(MDB_NOTFOUND), ErrorCode::kNotFound);
  EXPECT_EQ(code_of(MDB_CORRUPTED), ErrorCode::kCorruption);
  EXPECT_EQ(code_of(MDB_VERSION_MISMATCH), ErrorCode::kNotSupported);
  EXPECT_EQ(code_of(MDB_PANIC), ErrorCode::kIOError);
  EXPECT_EQ(code_of(MDB_BAD_TXN), ErrorCode::kInternal);
  EXPECT_EQ(code_of(EINVAL), ErrorCode::kInternal);
  EXPECT_EQ(code_of(ENOSPC), ErrorCode::kResourceExhausted);
  EXPECT_EQ(code_of(EACCES), ErrorCode::kPermissionDenied);
  EXPECT_EQ(code_of(ENOENT), ErrorCode::kNotFound);
  EXPECT_EQ(code_of(EIO), ErrorCode::kIOError);
  for (const int errnum : {ENOSPC, EACCES, EIO}) {
    try {
      detail::throw_lmdb_error(errnum, "commit", context);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("commit: ") + std::strerror(errnum)),
                std::string::npos)
          << e.what();
    }
  }
}

// Opens `path` with raw LMDB (no kvdex store may have it open in this process).
class RawEnv {
 public:
  explicit RawEnv(const std::string& path) {
    EXPECT_EQ(mdb_env_create(&env_), 0);
    EXPECT_EQ(mdb_env_set_maxdbs(env_, 8), 0);
    EXPECT_EQ(mdb_env_open(env_, path.c_str(), 0, 0644), 0);
    EXPECT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn_), 0);
  }
  ~RawEnv() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    mdb_env_close(env_);
  }
  void put(const char* db, std::string key, std::string value) {
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn_, db, db ? 0 : 0, &dbi), 0);
    MDB_val k{key.size(), key.data()};
    MDB_val d{value.size(), value.data()};
    ASSERT_EQ(mdb_put(txn_, dbi, &k, &d, 0), 0);
  }
  MDB_txn* txn() const { return txn_; }
  void del(const char* db, std::string key) {
    MDB_dbi dbi;
    ASSERT_EQ(mdb_dbi_open(txn_, db, 0, &dbi), 0);
    MDB_val k{key.size(), key.data()};
    ASSERT_EQ(mdb_del(txn_, dbi, &k, nullptr), 0);
  }
  // Every (key, data) of a named database, in LMDB order.
  std::vector<std::pair<std::string, std::string>> dump(const char* db) {
    std::vector<std::pair<std::string, std::string>> out;
    MDB_dbi dbi;
    EXPECT_EQ(mdb_dbi_open(txn_, db, 0, &dbi), 0);
    MDB_cursor* cursor = nullptr;
    EXPECT_EQ(mdb_cursor_open(txn_, dbi, &cursor), 0);
    MDB_val k;
    MDB_val d;
    for (int rc = mdb_cursor_get(cursor, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cursor, &k, &d, MDB_NEXT)) {
      out.emplace_back(std::string(static_cast<const char*>(k.mv_data), k.mv_size),
                       std::string(static_cast<const char*>(d.mv_data), d.mv_size));
    }
    mdb_cursor_close(cursor);
    return out;
  }
  void commit() {
    EXPECT_EQ(mdb_txn_commit(txn_), 0);
    txn_ = nullptr;
  }

 private:
  MDB_env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
};

TEST(LmdbKVStore, ForeignLmdbEnvironmentIsNotSupported) {
  TempDir dir;
  {
    RawEnv raw(dir.path());
    raw.put(nullptr, "someone", "else's data");
    raw.commit();
  }
  KVDEX_EXPECT_ERROR(LmdbKVStore(dir.path()), ErrorCode::kNotSupported);
}

TEST(LmdbKVStore, OtherFormatsAreNotSupported) {
  // "1" is the format before insertion order, "2" the one with an order database per
  // collection, "3" the one with a database per collection, "99" a newer one.
  for (const char* version : {"1", "2", "3", "99"}) {
    TempDir dir;
    { LmdbKVStore store(dir.path()); }
    {
      RawEnv raw(dir.path());
      raw.put("kvdex:catalogue", "mformat", version);
      raw.commit();
    }
    try {
      LmdbKVStore store(dir.path());
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kNotSupported);
      EXPECT_NE(std::string(e.what()).find("format '" + std::string(version) + "'"),
                std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("reads format 4"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("kvdex copy " + dir.path() + " json:"),
                std::string::npos)
          << "names the conversion: " << e.what();
    }
  }
}

TEST(LmdbKVStore, CorruptValuesAreCorruptionNamingPathAndCollection) {
  TempDir dir;
  {
    LmdbKVStore store(dir.path());
    store.put("good", {{"v", 1}}, "docstore/data");
    store.put("bad", {{"v", 2}}, "docstore/data");
    store.verify();
  }
  {
    RawEnv raw(dir.path());
    raw.put("kvdex:data", data_key(1, "bad"),
            std::string("\0\0\0\0\0\0\0\x01", 8) + "this is not JSON");
    raw.commit();
  }
  LmdbKVStore store(dir.path());
  EXPECT_EQ(store.get("good", "docstore/data"), (Value{{"v", 1}}));
  try {
    store.get("bad", "docstore/data");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find(dir.path()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("docstore/data"), std::string::npos) << e.what();
  }
  KVDEX_EXPECT_ERROR(store.verify(), ErrorCode::kCorruption);
}

TEST(LmdbKVStore, VerifyDetectsCatalogueDisagreement) {
  TempDir dir;
  { LmdbKVStore(dir.path()).put("k", {{"v", 1}}, "c"); }
  {
    RawEnv raw(dir.path());
    raw.put("kvdex:catalogue", std::string("o\0\0\0\0\0\0\0\x07", 9), "ghost");
    raw.commit();
  }
  LmdbKVStore store(dir.path());
  KVDEX_EXPECT_ERROR(store.verify(), ErrorCode::kCorruption);
}

// Insertion order lives in the records' sequence numbers: verify() checks that they
// are distinct and below the collection's next one (its catalogue record); reads that
// meet two records with one number report corruption, since the order is then lost.
TEST(LmdbKVStore, VerifyDetectsSequenceNumberDisagreement) {
  auto seq = [](int n) { return std::string(7, '\0') + static_cast<char>(n); };
  const std::string seq_record = counters_key(1);
  auto make = [](const std::string& path) {
    LmdbKVStore store(path);
    for (const char* key : {"k0", "k1", "k2"}) store.put(key, {{"v", key}}, "c");
    store.verify();
  };
  {  // the catalogue records the next sequence number
    TempDir dir;
    make(dir.path());
    RawEnv raw(dir.path());
    bool found = false;
    for (const auto& [k, v] : raw.dump("kvdex:catalogue")) {
      if (k == seq_record) {
        found = true;
        EXPECT_EQ(v, counters(3, 3));
      }
    }
    EXPECT_TRUE(found) << "no sequence record for collection 1";
  }
  {  // two records share a number: their relative order is lost
    TempDir dir;
    make(dir.path());
    {
      RawEnv raw(dir.path());
      raw.put("kvdex:data", data_key(1, "k1"), seq(0) + R"({"v": "k1"})");
      raw.commit();
    }
    LmdbKVStore store(dir.path());
    try {
      store.verify();
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      EXPECT_NE(std::string(e.what()).find("two records share sequence number 0"),
                std::string::npos)
          << e.what();
    }
    KVDEX_EXPECT_ERROR(store.get_all("c"), ErrorCode::kCorruption);
    EXPECT_EQ(store.get("k1", "c"), (Value{{"v", "k1"}})) << "lookups do not need the order";
  }
  {  // a record numbered at or above the next number: a later insert would reuse it
    TempDir dir;
    make(dir.path());
    {
      RawEnv raw(dir.path());
      raw.put("kvdex:catalogue", seq_record, counters(2, 3));
      raw.commit();
    }
    LmdbKVStore store(dir.path());
    try {
      store.verify();
      ADD_FAILURE() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      EXPECT_NE(std::string(e.what()).find("'k2' has sequence number 2"), std::string::npos)
          << e.what();
    }
  }
  {  // a malformed sequence record is refused by writes and by verify()
    TempDir dir;
    make(dir.path());
    {
      RawEnv raw(dir.path());
      raw.put("kvdex:catalogue", seq_record, "xyz");
      raw.commit();
    }
    LmdbKVStore store(dir.path());
    KVDEX_EXPECT_ERROR(store.verify(), ErrorCode::kCorruption);
    KVDEX_EXPECT_ERROR(store.put("k3", {{"v", 3}}, "c"), ErrorCode::kCorruption);
    store.put("k0", {{"v", 0}}, "c");  // an overwrite needs no new number
    EXPECT_EQ(store.get("k0", "c"), (Value{{"v", 0}}));
  }
  {  // a sequence record of a collection the catalogue does not list
    TempDir dir;
    make(dir.path());
    {
      RawEnv raw(dir.path());
      raw.put("kvdex:catalogue", counters_key(9), counters(1, 0));
      raw.commit();
    }
    LmdbKVStore store(dir.path());
    KVDEX_EXPECT_ERROR(store.verify(), ErrorCode::kCorruption);
  }
}

// Insertion order survives every shape of key order: keys inserted in key order,
// against it, and at random, with removals and overwrites in between (the read side
// puts records in sequence-number order by placement, or by sorting when the numbers
// are sparse after many removals).
TEST(LmdbKVStore, GetAllReturnsInsertionOrderForAnyKeyOrder) {
  TempDir dir;
  LmdbKVStore store(dir.path());
  std::vector<std::string> expected;
  auto put = [&](const std::string& key, const std::string& collection) {
    store.put(key, {{"k", key}}, collection);
  };
  auto keys_of = [&](const std::string& collection) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : store.get_all(collection)) {
      EXPECT_EQ(v, (Value{{"k", k}}));
      keys.push_back(k);
    }
    return keys;
  };
  {  // ascending keys: nothing moves
    std::vector<std::string> keys;
    for (int i = 0; i < 300; ++i) keys.push_back("a" + std::to_string(1000 + i));
    for (const auto& k : keys) put(k, "ascending");
    EXPECT_EQ(keys_of("ascending"), keys);
  }
  {  // descending keys, some removed, some overwritten (keeping their place)
    std::vector<std::string> keys;
    for (int i = 300; i > 0; --i) keys.push_back("d" + std::to_string(1000 + i));
    for (const auto& k : keys) put(k, "descending");
    std::vector<std::string> kept;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i % 3 == 0) {
        EXPECT_TRUE(store.remove(keys[i], "descending"));
      } else {
        kept.push_back(keys[i]);
      }
    }
    for (std::size_t i = 0; i < kept.size(); i += 7) put(kept[i], "descending");
    EXPECT_EQ(keys_of("descending"), kept);
  }
  {  // random keys; then most removed, so the numbers become sparse (sort path)
    std::mt19937_64 rng(7);
    std::vector<std::string> keys;
    for (int i = 0; i < 3000; ++i) keys.push_back(std::to_string(rng()));
    for (const auto& k : keys) put(k, "random");
    EXPECT_EQ(keys_of("random"), keys);
    std::vector<std::string> kept;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i % 40 == 0) {
        kept.push_back(keys[i]);
      } else {
        store.remove(keys[i], "random");
      }
    }
    EXPECT_EQ(keys_of("random"), kept);
    put("late", "random");
    kept.push_back("late");
    EXPECT_EQ(keys_of("random"), kept);
  }
  store.verify();
}

TEST(LmdbKVStore, MapGrowsFromATinyInitialSize) {
  TempDir dir;
  const std::string path = dir.file("store");
  std::size_t total = 0;
  {
    LmdbKVStore store(path, {.map_size = 64 << 10});
    const std::size_t initial = store.stats().map_size;
    EXPECT_LT(initial, std::size_t{1} << 20);
    // A single value several times the initial map, then many batches.
    store.put("huge", padded(-1, 3 << 20), "big");
    total += 3 << 20;
    for (int b = 0; b < 20; ++b) {
      std::vector<KeyValue> pairs;
      for (int i = 0; i < 50; ++i)
        pairs.emplace_back("k" + std::to_string(b * 50 + i), padded(i, 2000));
      store.put_all(pairs, "many", 50);
      total += 50 * 2000;
    }
    const LmdbStats stats = store.stats();
    EXPECT_GT(stats.map_resizes, 0u);
    EXPECT_GE(stats.map_size, total);
    EXPECT_GE(stats.map_size, stats.used_bytes);
    EXPECT_EQ(store.count("many"), 1000u);
  }
  // Reopened with the same tiny option, the store keeps (and reads) its grown map.
  LmdbKVStore store(path, {.map_size = 64 << 10});
  EXPECT_GE(store.stats().map_size, total);
  EXPECT_EQ(store.get("huge", "big"), padded(-1, 3 << 20));
  EXPECT_EQ(store.get("k999", "many"), padded(49, 2000));
  store.put("after", {{"v", 1}}, "many");
  store.verify();
}

TEST(LmdbKVStore, PutAllCommitsOneTransactionPerBatch) {
  TempDir dir;
  LmdbKVStore store(dir.file("store"));
  store.put("first", {{"v", 0}});  // creates the collection
  std::vector<KeyValue> pairs;
  for (int i = 0; i < 10; ++i) pairs.emplace_back("k" + std::to_string(i), Value{{"i", i}});
  const std::uint64_t before = store.stats().last_txn_id;
  store.put_all(pairs, "data", 3);  // 3 + 3 + 3 + 1
  EXPECT_EQ(store.stats().last_txn_id, before + 4);
  store.put_all(pairs, "data", 100);
  EXPECT_EQ(store.stats().last_txn_id, before + 5);
  EXPECT_FALSE(store.remove("absent"));  // a remove that changes nothing commits nothing new
  EXPECT_FALSE(store.remove("absent", "no/such/collection"));
  EXPECT_EQ(store.stats().last_txn_id, before + 5);
}

TEST(LmdbKVStore, AFailingBatchLeavesNothingBehind) {
  TempDir dir;
  const std::string path = dir.file("store");
  { LmdbKVStore(path).put("k0", {{"v", 0}}, "three"); }
  {  // collection "three" cannot number a new key: its counters record is malformed
    RawEnv raw(path);
    raw.put("kvdex:catalogue", counters_key(1), "xyz");
    raw.commit();
  }
  LmdbKVStore store(path);
  WriteBatch batch;
  batch.put("one", "k", EncodedValue::encode({{"v", 1}}));
  batch.put("two", "k", EncodedValue::encode({{"v", 2}}));
  batch.put("three", "k", EncodedValue::encode({{"v", 3}}));  // fails
  try {
    store.write(batch);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    EXPECT_NE(std::string(e.what()).find("three"), std::string::npos) << e.what();
  }
  EXPECT_EQ(store.collections(), (std::vector<std::string>{"three"}));
  EXPECT_FALSE(store.get("k", "one").has_value());
  store.put("k", {{"v", 1}}, "one");
  store.put("k", {{"v", 2}}, "two");
  EXPECT_EQ(store.collections(), (std::vector<std::string>{"three", "one", "two"}));
}

// Opening does no work proportional to the store's size. Observable two ways:
//   - stats(): opening reads no catalogue entry and opens no collection, however
//     many there are (the counters are the same for a store of 1 and of 300
//     collections);
//   - black box: a store of 300 collections takes over 100 times the space of one.
TEST(LmdbKVStore, OpeningDoesConstantWork) {
  TempDir dir;
  auto fill = [](const std::string& path, int collections, int keys) {
    LmdbKVStore store(path, {.durability = LmdbDurability::kNoMetaSync});
    for (int c = 0; c < collections; ++c) {
      std::vector<KeyValue> pairs;
      for (int i = 0; i < keys; ++i) pairs.emplace_back("k" + std::to_string(i), padded(i, 100));
      store.put_all(pairs, "c" + std::to_string(c), keys);
    }
  };
  fill(dir.file("small"), 1, 1);
  fill(dir.file("large"), 300, 100);

  LmdbKVStore small(dir.file("small"));
  LmdbKVStore large(dir.file("large"));
  for (LmdbKVStore* store : {&small, &large}) {
    const LmdbStats stats = store->stats();
    EXPECT_EQ(stats.catalogue_lookups, 0u);
    EXPECT_EQ(stats.collections_open, 0u);
  }
  EXPECT_GT(large.stats().used_bytes, 100 * small.stats().used_bytes);
  // Using one collection costs a catalogue lookup or two, once.
  EXPECT_EQ(large.get("k7", "c123"), padded(7, 100));
  const std::uint64_t lookups = large.stats().catalogue_lookups;
  EXPECT_GE(lookups, 1u);
  EXPECT_LE(lookups, 2u);
  EXPECT_EQ(large.get("k8", "c123"), padded(8, 100));
  EXPECT_EQ(large.stats().catalogue_lookups, lookups);
  EXPECT_EQ(large.stats().collections_open, 1u);
  EXPECT_EQ(large.collections().size(), 300u);  // listing reads the catalogue, opens nothing
  EXPECT_EQ(large.stats().collections_open, 1u);
}

TEST(LmdbKVStore, DurabilityModes) {
  TempDir dir;
  const std::string path = dir.file("store");
  {
    LmdbKVStore fast(path, {.durability = LmdbDurability::kNoMetaSync});
    EXPECT_EQ(fast.stats().durability, LmdbDurability::kNoMetaSync);
    fast.put("k", {{"v", 1}});
    fast.flush();
    {
      // A second store on the same directory asking for full durability upgrades the
      // shared environment; a weaker request never downgrades it.
      LmdbKVStore full(path, {.durability = LmdbDurability::kFull});
      EXPECT_EQ(full.stats().durability, LmdbDurability::kFull);
      EXPECT_EQ(fast.stats().durability, LmdbDurability::kFull);
      LmdbKVStore weak(path, {.durability = LmdbDurability::kNoMetaSync});
      EXPECT_EQ(weak.stats().durability, LmdbDurability::kFull);
    }
    fast.put("k2", {{"v", 2}});
  }
  LmdbKVStore store(path);
  EXPECT_EQ(store.stats().durability, LmdbDurability::kFull);
  EXPECT_EQ(store.get("k"), (Value{{"v", 1}}));
  EXPECT_EQ(store.get("k2"), (Value{{"v", 2}}));
  store.flush();
}

TEST(LmdbKVStore, OneDirectoryOpenedTwiceSharesOneEnvironment) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("store"));
  std::filesystem::create_directory_symlink(dir.file("store"), dir.file("link"));
  LmdbKVStore a(dir.file("store"));
  LmdbKVStore b(dir.file("link"));  // another spelling of the same directory
  LmdbKVStore c(dir.file("store/."));
  a.put("k", {{"v", 1}}, "shared");
  EXPECT_EQ(b.get("k", "shared"), (Value{{"v", 1}}));
  EXPECT_EQ(c.get("k", "shared"), (Value{{"v", 1}}));
  EXPECT_EQ(b.stats().collections_open, 1u) << "one environment, one handle cache";
  { LmdbKVStore d(dir.file("store")); }  // closing one store leaves the others working
  b.put("k2", {{"v", 2}}, "shared");
  EXPECT_EQ(a.get("k2", "shared"), (Value{{"v", 2}}));
}

// The on-disk layout (format 3), read with raw LMDB: a record is the entry's
// sequence number (u64 big-endian) followed by exactly its EncodedValue text.
// Sequences count per collection; the catalogue holds each collection's next one;
// there is no other database.
TEST(LmdbKVStore, ValuesAreStoredAsTheirCanonicalText) {
  TempDir dir;
  const std::string text =
      R"({"a": 1.0, "b": "\u00e9", "c": NaN, "big": 123456789012345678901234567890})";
  const std::string long_key(600, 'L');
  {
    LmdbKVStore store(dir.path());
    store.put("first", {{"v", 0}});
    store.put_encoded("k", EncodedValue::parse(text));
    store.put(long_key, {{"v", 2}});
    store.put("k", {{"v", 1}}, "second");
    store.put_encoded("k", EncodedValue::parse(text));  // an overwrite keeps sequence 1
  }
  auto seq = [](int n) { return std::string(7, '\0') + static_cast<char>(n); };
  RawEnv raw(dir.path());
  const auto records = raw.dump("kvdex:data");
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].first.size(), 8 + detail::kHashedKeySuffix) << "the long key, hashed";
  EXPECT_EQ(records[0].first.substr(0, 8), u64(1));
  EXPECT_EQ(records[1], (std::pair{data_key(1, "first"), seq(0) + R"({"v": 0})"}));
  EXPECT_EQ(records[2], (std::pair{data_key(1, "k"), seq(1) + text}));
  EXPECT_EQ(records[3], (std::pair{data_key(2, "k"), seq(0) + R"({"v": 1})"}));
  std::map<std::string, std::string> catalogue;
  for (auto& [k, v] : raw.dump("kvdex:catalogue")) catalogue.emplace(k, v);
  EXPECT_EQ(catalogue.at("mformat"), "4");
  EXPECT_EQ(catalogue.at(counters_key(1)), counters(3, 3));
  EXPECT_EQ(catalogue.at(counters_key(2)), counters(1, 1));
  std::vector<std::string> databases;
  for (auto& [k, v] : raw.dump(nullptr)) databases.push_back(k);
  EXPECT_EQ(databases, (std::vector<std::string>{"kvdex:catalogue", "kvdex:data"}));
}

TEST(LmdbKVStore, ClearStaleReadersFindsNoneInAHealthyStore) {
  TempDir dir;
  LmdbKVStore store(dir.path());
  store.put("k", {{"v", 1}});
  EXPECT_EQ(store.clear_stale_readers(), 0u);
  EXPECT_EQ(store.stats().stale_readers_cleared, 0u);
}

TEST(LmdbKVStore, APathWithANulByteIsRefused) {
  TempDir dir;
  const std::string path = dir.file("a") + std::string(1, '\0') + "b";
  KVDEX_EXPECT_ERROR(LmdbKVStore(path, LmdbOptions{}), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(open("lmdb:" + path), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir.file("a"))) << "'a' was not opened instead";
}

}  // namespace
}  // namespace kvdex::testing
