// The conformance suite over the in-memory stores, plus what only they promise
// (LlamaIndex's MutableMappingKVStore details).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "conformance/kvstore_conformance.h"

namespace kvdex::testing {
namespace {

struct SimpleTraits {
  static constexpr bool kInsertionOrdered = true;
  std::unique_ptr<BaseKVStore> make() { return std::make_unique<SimpleKVStore>(); }
};

using UnorderedMapping = std::unordered_map<std::string, EncodedValue>;
struct UnorderedMapTraits {
  static constexpr bool kInsertionOrdered = false;
  std::unique_ptr<BaseKVStore> make() {
    return std::make_unique<MutableMappingKVStore<UnorderedMapping>>();
  }
};

using SortedMapping = std::map<std::string, EncodedValue>;
struct SortedMapTraits {
  static constexpr bool kInsertionOrdered = false;
  std::unique_ptr<BaseKVStore> make() {
    return std::make_unique<MutableMappingKVStore<SortedMapping>>();
  }
};

struct OrderedMapTraits {
  static constexpr bool kInsertionOrdered = true;
  std::unique_ptr<BaseKVStore> make() {
    return std::make_unique<MutableMappingKVStore<InsertionOrderedMap<EncodedValue>>>();
  }
};

// The json: store: a SimpleKVStore bound to a file in a fresh directory.
struct JsonFileTraits {
  static constexpr bool kInsertionOrdered = true;
  TempDir dir;
  std::unique_ptr<BaseKVStore> make() { return JsonFileStore::open(dir.file("store.json")); }
};

using InMemoryTypes = ::testing::Types<SimpleTraits, OrderedMapTraits, UnorderedMapTraits,
                                       SortedMapTraits, JsonFileTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(InMemory, KVStoreConformance, InMemoryTypes);

static_assert(KeyValueMapping<InsertionOrderedMap<EncodedValue>>);
static_assert(KeyValueMapping<UnorderedMapping>);
static_assert(KeyValueMapping<SortedMapping>);
static_assert(!KeyValueMapping<std::map<std::string, std::string>>);

TEST(MutableMappingKVStore, ReadsAndDeletesCreateTheCollectionAsLlamaIndexDoes) {
  SimpleKVStore store;
  EXPECT_TRUE(store.collections().empty());
  EXPECT_FALSE(store.get("k", "read/only").has_value());
  EXPECT_FALSE(store.remove("k", "deleted/from"));
  EXPECT_TRUE(store.get_all("listed").empty());
  store.put("k", {{"v", 1}});
  EXPECT_EQ(store.collections(),
            (std::vector<std::string>{"read/only", "deleted/from", "listed", "data"}));
  EXPECT_EQ(store.to_json_text(),
            R"({"read/only": {}, "deleted/from": {}, "listed": {}, "data": {"k": {"v": 1}}})");
}

TEST(MutableMappingKVStore, UsesTheMappingFactoryForEachCollection) {
  int made = 0;
  MutableMappingKVStore<SortedMapping> store([&] {
    ++made;
    return SortedMapping{};
  });
  store.put("b", {{"v", 2}});
  store.put("a", {{"v", 1}});
  store.put("x", {{"v", 3}}, "other");
  EXPECT_EQ(made, 2);
  std::vector<KeyValue> all = store.get_all();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, "a");  // std::map order
}

TEST(MutableMappingKVStore, PersistIsNotSupportedOnTheGenericStore) {
  MutableMappingKVStore<UnorderedMapping> store;
  KVDEX_EXPECT_ERROR(store.persist("/tmp/never-written.json"), ErrorCode::kNotSupported);
}

TEST(MutableMappingKVStore, SnapshotIsConsistentAndOrdered) {
  SimpleKVStore store;
  store.put("z", {{"v", 1}}, "c1");
  store.put("a", {{"v", 2}}, "c1");
  store.put("m", {{"v", 3}}, "c0");
  StoreSnapshot snap = store.snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].first, "c1");
  EXPECT_EQ(snap[0].second[0].first, "z");
  EXPECT_EQ(snap[0].second[1].first, "a");
  store.put("z", {{"v", 9}}, "c1");
  EXPECT_EQ(snap[0].second[0].second.text(), R"({"v": 1})") << "a snapshot does not change";
}

// A store whose writes wait at a gate, to hold an asynchronous operation in flight.
class GatedStore final : public SimpleKVStore {
 public:
  ~GatedStore() override { wait_for_pending_operations(); }
  void write(const WriteBatch& batch) override {
    {
      std::unique_lock lock(mu_);
      entered_ = true;
      changed_.notify_all();
      changed_.wait(lock, [&] { return open_; });
    }
    SimpleKVStore::write(batch);
  }
  void wait_until_entered() {
    std::unique_lock lock(mu_);
    changed_.wait(lock, [&] { return entered_; });
  }
  void open_gate() {
    std::lock_guard lock(mu_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool entered_ = false;
  bool open_ = false;
};

TEST(AsyncLifetime, DestructorWaitsForTheOperationUsingTheStore) {
  auto store = std::make_unique<GatedStore>();
  GatedStore* raw = store.get();
  Future<void> put = store->aput("k", {{"v", 1}});
  raw->wait_until_entered();
  std::atomic<bool> destroyed{false};
  std::thread destroyer([&] {
    store.reset();
    destroyed = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(destroyed) << "the store was destroyed while its write was running";
  EXPECT_FALSE(put.ready());
  raw->open_gate();
  destroyer.join();
  EXPECT_TRUE(destroyed);
  EXPECT_NO_THROW(put.get());
}

TEST(AsyncLifetime, ACallbackMayDestroyTheStore) {
  // The operation stops counting as pending before its future completes, so the
  // last owner may let go of the store from the future's callback.
  auto store = std::make_shared<SimpleKVStore>();
  store->put("k", {{"v", 1}});
  std::promise<bool> done;
  Future<std::optional<Value>> get = store->aget("k");
  get.on_ready([&done, get, owner = std::move(store)]() mutable {
    const bool found = get.get().has_value();
    owner.reset();  // destroys the store on the executor thread
    done.set_value(found);
  });
  EXPECT_TRUE(done.get_future().get());
}

}  // namespace
}  // namespace kvdex::testing
