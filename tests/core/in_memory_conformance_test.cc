// The conformance suite over the in-memory stores, plus what only they promise
// (LlamaIndex's MutableMappingKVStore details).
#include <map>
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

using InMemoryTypes =
    ::testing::Types<SimpleTraits, OrderedMapTraits, UnorderedMapTraits, SortedMapTraits>;
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

}  // namespace
}  // namespace kvdex::testing
