// The conformance suite every kvdex store runs (the shape of tensorstore's
// kvstore/test_util): one set of typed tests over the BaseKVStore contract.
//
// A backend's test file provides a Traits type:
//
//   struct MyTraits {
//     std::unique_ptr<kvdex::BaseKVStore> make();   // a fresh, empty store
//     static constexpr bool kInsertionOrdered = ...; // get_all keeps insertion order
//   };
//   using MyTypes = ::testing::Types<MyTraits>;
//   INSTANTIATE_TYPED_TEST_SUITE_P(My, KVStoreConformance, MyTypes);
//
// A Traits object lives for one test, so its destructor may clean up (temp dirs,
// server keys).
//
// Optional traits for stores bound by their engine (PostgreSQL), each true when
// absent:
//   static constexpr bool kKeepsValueText = ...;  // get returns the text put, key order
//     included (false: an equal value in the engine's key order, as jsonb's: keys
//     sorted by length, then bytes)
//   static constexpr bool kStoresNonFiniteNumbers = ...;  // NaN/Infinity (false:
//     such a put is kInvalidArgument)
//   static constexpr bool kNamesMayHoldNul = ...;  // keys/collections with NUL bytes
//     (false: such a put is kInvalidArgument)
#ifndef KVDEX_TESTS_CONFORMANCE_KVSTORE_CONFORMANCE_H_
#define KVDEX_TESTS_CONFORMANCE_KVSTORE_CONFORMANCE_H_

#include <gtest/gtest.h>

#include <atomic>
#include <coroutine>
#include <future>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kvdex/kvdex.h"
#include "test_util.h"

namespace kvdex::testing {

// A minimal coroutine that runs eagerly and publishes its result to a std::promise.
struct FireAndForget {
  struct promise_type {
    FireAndForget get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

// co_awaits each async twin in turn (GCC 12 wants the arguments built outside
// the co_await expressions).
inline FireAndForget put_get_remove_coroutine(BaseKVStore& store, std::promise<std::string>& out) {
  Value value{{"v", "co"}};
  co_await store.aput(std::string("c"), std::move(value));
  std::optional<Value> got = co_await store.aget(std::string("c"));
  const bool removed = co_await store.aremove(std::string("c"));
  out.set_value((*got)["v"].get<std::string>() + (removed ? "+removed" : ""));
}

inline Value node_value(int i) {
  return Value{{"__data__",
                {{"id_", "node-" + std::to_string(i)},
                 {"text", "text " + std::to_string(i)},
                 {"metadata", {{"n", i}, {"f", i / 4.0}, {"ok", i % 2 == 0}}},
                 {"embedding", nullptr}}},
               {"__type__", "1"}};
}

// Traits may set `static constexpr bool kBatchesIsolatedFromReaders = false` for a
// store whose batches are atomic per part only (documented by that store); default true.
template <class Traits>
constexpr bool batches_isolated_from_readers() {
  if constexpr (requires { Traits::kBatchesIsolatedFromReaders; }) {
    return Traits::kBatchesIsolatedFromReaders;
  } else {
    return true;
  }
}

template <class Traits>
constexpr bool keeps_value_text() {
  if constexpr (requires { Traits::kKeepsValueText; }) {
    return Traits::kKeepsValueText;
  } else {
    return true;
  }
}
template <class Traits>
constexpr bool stores_non_finite_numbers() {
  if constexpr (requires { Traits::kStoresNonFiniteNumbers; }) {
    return Traits::kStoresNonFiniteNumbers;
  } else {
    return true;
  }
}
template <class Traits>
constexpr bool names_may_hold_nul() {
  if constexpr (requires { Traits::kNamesMayHoldNul; }) {
    return Traits::kNamesMayHoldNul;
  } else {
    return true;
  }
}

// Values compared as JSON: with their key order where the store keeps it, else
// regardless of it.
inline nlohmann::json unordered(const Value& value) { return nlohmann::json::parse(value.dump()); }
template <bool kOrdered>
::testing::AssertionResult same_value(const std::optional<Value>& got, const Value& want) {
  if (!got) return ::testing::AssertionFailure() << "got nothing, want " << want.dump();
  const bool equal = kOrdered ? *got == want : unordered(*got) == unordered(want);
  if (equal) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got->dump() << ", want " << want.dump();
}
#define KVDEX_EXPECT_SAME_VALUE(got, want) \
  EXPECT_TRUE(same_value<keeps_value_text<TypeParam>()>((got), (want)))

template <class Traits>
class KVStoreConformance : public ::testing::Test {
 protected:
  void SetUp() override { store_ = traits_.make(); }
  void TearDown() override { store_.reset(); }

  BaseKVStore& store() { return *store_; }

  Traits traits_;
  std::unique_ptr<BaseKVStore> store_;
};

TYPED_TEST_SUITE_P(KVStoreConformance);

TYPED_TEST_P(KVStoreConformance, PutThenGetReturnsEqualValue) {
  const Value value = {{"s", "x"},
                       {"i", -42},
                       {"u", 18446744073709551615ULL},
                       {"f", 0.1},
                       {"b", true},
                       {"n", nullptr},
                       {"a", {1, "two", 3.5}},
                       {"o", {{"k", {{"deep", Value::array()}}}}},
                       {"empty", Value::object()}};
  this->store().put("k1", value);
  std::optional<Value> got = this->store().get("k1");
  ASSERT_TRUE(got.has_value());
  KVDEX_EXPECT_SAME_VALUE(*got, value);
  if constexpr (keeps_value_text<TypeParam>()) {
    EXPECT_EQ(got->dump(), value.dump()) << "key order must be kept";
  }
}

TYPED_TEST_P(KVStoreConformance, GetOfMissingKeyOrCollectionIsNullopt) {
  EXPECT_FALSE(this->store().get("absent").has_value());
  EXPECT_FALSE(this->store().get("absent", "no/such/collection").has_value());
  this->store().put("k", {{"v", 1}});
  EXPECT_FALSE(this->store().get("K").has_value());
}

TYPED_TEST_P(KVStoreConformance, DefaultCollectionIsData) {
  EXPECT_EQ(kDefaultCollection, "data");
  EXPECT_EQ(kDefaultBatchSize, 1);
  this->store().put("k", {{"v", 1}});
  KVDEX_EXPECT_SAME_VALUE(this->store().get("k", "data"), (Value{{"v", 1}}));
  this->store().put("k2", {{"v", 2}}, "data");
  KVDEX_EXPECT_SAME_VALUE(this->store().get("k2"), (Value{{"v", 2}}));
}

TYPED_TEST_P(KVStoreConformance, PutOverwrites) {
  this->store().put("k", {{"v", 1}});
  this->store().put("k", {{"v", 2}, {"w", 3}});
  KVDEX_EXPECT_SAME_VALUE(this->store().get("k"), (Value{{"v", 2}, {"w", 3}}));
  EXPECT_EQ(this->store().get_all().size(), 1u);
}

TYPED_TEST_P(KVStoreConformance, PutRejectsNonObjectsAndChangesNothing) {
  this->store().put("k", {{"v", 1}});
  for (const Value& bad :
       {Value::array({1, 2}), Value(1), Value("s"), Value(nullptr), Value(1.5), Value(true)}) {
    KVDEX_EXPECT_ERROR(this->store().put("k", bad), ErrorCode::kInvalidArgument);
    KVDEX_EXPECT_ERROR(this->store().put("new", bad), ErrorCode::kInvalidArgument);
  }
  KVDEX_EXPECT_SAME_VALUE(this->store().get("k"), (Value{{"v", 1}}));
  EXPECT_FALSE(this->store().get("new").has_value());
}

TYPED_TEST_P(KVStoreConformance, GetReturnsAnIndependentCopy) {
  Value value = {{"list", {1, 2}}, {"inner", {{"a", 1}}}};
  this->store().put("k", value);
  value["list"].push_back(3);  // the caller's object changes after put
  std::optional<Value> first = this->store().get("k");
  ASSERT_TRUE(first);
  (*first)["inner"]["a"] = 99;  // and the copy it got back changes
  (*first)["added"] = true;
  KVDEX_EXPECT_SAME_VALUE(this->store().get("k"), (Value{{"list", {1, 2}}, {"inner", {{"a", 1}}}}));
}

TYPED_TEST_P(KVStoreConformance, CollectionsAreIndependent) {
  this->store().put("k", {{"c", "a"}}, "docstore/data");
  this->store().put("k", {{"c", "b"}}, "docstore/metadata");
  KVDEX_EXPECT_SAME_VALUE(this->store().get("k", "docstore/data"), (Value{{"c", "a"}}));
  KVDEX_EXPECT_SAME_VALUE(this->store().get("k", "docstore/metadata"), (Value{{"c", "b"}}));
  EXPECT_FALSE(this->store().get("k").has_value());
  EXPECT_TRUE(this->store().remove("k", "docstore/data"));
  KVDEX_EXPECT_SAME_VALUE(this->store().get("k", "docstore/metadata"), (Value{{"c", "b"}}));
  std::vector<std::string> names = this->store().collections();
  EXPECT_NE(std::find(names.begin(), names.end(), "docstore/metadata"), names.end());
}

TYPED_TEST_P(KVStoreConformance, RemoveReportsWhetherTheKeyWasThere) {
  EXPECT_FALSE(this->store().remove("k"));
  this->store().put("k", {{"v", 1}});
  EXPECT_TRUE(this->store().remove("k"));
  EXPECT_FALSE(this->store().get("k").has_value());
  EXPECT_FALSE(this->store().remove("k"));
  EXPECT_FALSE(this->store().remove("k", "never/used"));
}

TYPED_TEST_P(KVStoreConformance, GetAllReturnsEveryEntry) {
  EXPECT_TRUE(this->store().get_all("unknown").empty());
  for (int i : {5, 3, 9, 1, 7}) this->store().put("key" + std::to_string(i), node_value(i), "c");
  this->store().remove("key9", "c");
  this->store().put("key9", node_value(90), "c");  // re-inserted: goes to the end
  this->store().put("key3", node_value(30), "c");  // overwritten: keeps its place
  std::vector<KeyValue> all = this->store().get_all("c");
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(this->store().count("c"), 5u);
  EXPECT_EQ(this->store().count("never/seen"), 0u);
  std::map<std::string, Value> by_key(all.begin(), all.end());
  KVDEX_EXPECT_SAME_VALUE(by_key.at("key3"), node_value(30));
  KVDEX_EXPECT_SAME_VALUE(by_key.at("key9"), node_value(90));
  KVDEX_EXPECT_SAME_VALUE(by_key.at("key1"), node_value(1));
  if constexpr (TypeParam::kInsertionOrdered) {
    std::vector<std::string> keys;
    for (const auto& kv : all) keys.push_back(kv.first);
    EXPECT_EQ(keys, (std::vector<std::string>{"key5", "key3", "key1", "key7", "key9"}));
  }
}

TYPED_TEST_P(KVStoreConformance, PutAllAcceptsEveryBatchSize) {
  for (int batch_size : {1, 2, 3, 7, 10, 11, 1000}) {
    const std::string collection = "batch" + std::to_string(batch_size);
    std::vector<KeyValue> pairs;
    for (int i = 0; i < 10; ++i) pairs.emplace_back("k" + std::to_string(i), node_value(i));
    this->store().put_all(pairs, collection, batch_size);
    std::vector<KeyValue> all = this->store().get_all(collection);
    ASSERT_EQ(all.size(), 10u) << "batch_size " << batch_size;
    for (int i = 0; i < 10; ++i) {
      KVDEX_EXPECT_SAME_VALUE(this->store().get("k" + std::to_string(i), collection),
                              node_value(i));
    }
  }
  this->store().put_all({}, "empty", 5);
  EXPECT_TRUE(this->store().get_all("empty").empty());
}

TYPED_TEST_P(KVStoreConformance, PutAllRejectsBatchSizeBelowOne) {
  std::vector<KeyValue> pairs = {{"a", {{"v", 1}}}};
  KVDEX_EXPECT_ERROR(this->store().put_all(pairs, "data", 0), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(this->store().put_all(pairs, "data", -5), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(this->store().aput_all(pairs, "data", 0), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(this->store().get("a").has_value());
}

TYPED_TEST_P(KVStoreConformance, PutAllWithABadValueWritesNothing) {
  std::vector<KeyValue> pairs;
  for (int i = 0; i < 20; ++i) pairs.emplace_back("k" + std::to_string(i), node_value(i));
  pairs[13].second = Value::array({1});
  KVDEX_EXPECT_ERROR(this->store().put_all(pairs, "data", 4), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(this->store().get_all().empty());
}

TYPED_TEST_P(KVStoreConformance, PutAllLaterDuplicateWins) {
  std::vector<KeyValue> pairs = {{"a", {{"v", 1}}}, {"b", {{"v", 2}}}, {"a", {{"v", 3}}}};
  this->store().put_all(pairs, "data", 2);
  KVDEX_EXPECT_SAME_VALUE(this->store().get("a"), (Value{{"v", 3}}));
  EXPECT_EQ(this->store().get_all().size(), 2u);
}

TYPED_TEST_P(KVStoreConformance, WriteBatchSpansCollectionsAndRemoves) {
  this->store().put("old", {{"v", 0}}, "docstore/data");
  WriteBatch batch;
  batch.put("docstore/data", "n1", EncodedValue::encode(node_value(1)));
  batch.put("docstore/metadata", "n1", EncodedValue::encode({{"doc_hash", "abc"}}));
  batch.remove("docstore/data", "old");
  batch.put("docstore/data", "n1", EncodedValue::encode(node_value(2)));
  this->store().write(batch);
  KVDEX_EXPECT_SAME_VALUE(this->store().get("n1", "docstore/data"), node_value(2));
  KVDEX_EXPECT_SAME_VALUE(this->store().get("n1", "docstore/metadata"),
                          (Value{{"doc_hash", "abc"}}));
  EXPECT_FALSE(this->store().get("old", "docstore/data").has_value());
}

TYPED_TEST_P(KVStoreConformance, EncodedApiKeepsPythonText) {
  constexpr bool kNonFinite = stores_non_finite_numbers<TypeParam>();
  const std::string text =
      kNonFinite
          ? R"({"big": 123456789012345678901234567890, "f": 1e-05, "nan": NaN, "s": "\u00e9\ud83d\ude00"})"
          : R"({"big": 123456789012345678901234567890, "f": 1e-05, "s": "\u00e9\ud83d\ude00"})";
  // What a store in jsonb's key order (by length, then bytes) gives back.
  const std::string engine_order =
      R"({"f": 1e-05, "s": "\u00e9\ud83d\ude00", "big": 123456789012345678901234567890})";
  const std::string& expected = keeps_value_text<TypeParam>() ? text : engine_order;
  if constexpr (!kNonFinite) {
    KVDEX_EXPECT_ERROR(this->store().put_encoded("nan", EncodedValue::parse(R"({"x": NaN})")),
                       ErrorCode::kInvalidArgument);
    KVDEX_EXPECT_ERROR(this->store().put("inf", {{"x", std::numeric_limits<double>::infinity()}}),
                       ErrorCode::kInvalidArgument);
    EXPECT_FALSE(this->store().get_encoded("nan").has_value());
  }
  this->store().put_encoded("k", EncodedValue::parse(text));
  std::optional<EncodedValue> got = this->store().get_encoded("k");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->text(), expected);
  KVDEX_EXPECT_ERROR(this->store().get("k"), ErrorCode::kOutOfRange);
  std::vector<EncodedKeyValue> all = this->store().get_all_encoded();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].second.text(), expected);
  this->store().put("typed", {{"x", 1.0}, {"y", "é"}});
  EXPECT_EQ(this->store().get_encoded("typed")->text(), R"({"x": 1.0, "y": "\u00e9"})");
}

TYPED_TEST_P(KVStoreConformance, ScanVisitsEveryEntry) {
  for (int i = 0; i < 50; ++i) this->store().put("k" + std::to_string(i), {{"i", i}}, "s");
  std::map<std::string, std::string> seen;
  this->store().scan("s", [&](std::string_view key, std::string_view text) {
    seen.emplace(std::string(key), std::string(text));
  });
  ASSERT_EQ(seen.size(), 50u);
  EXPECT_EQ(seen.at("k7"), R"({"i": 7})");
  std::size_t unknown = 0;
  this->store().scan("unknown", [&](std::string_view, std::string_view) { ++unknown; });
  EXPECT_EQ(unknown, 0u);
}

TYPED_TEST_P(KVStoreConformance, KeysAndCollectionsMayBeAnyString) {
  const std::vector<std::string> keys = {"",
                                         " ",
                                         "with/slash",
                                         "é ü 日本",
                                         "\xF0\x9F\x98\x80",
                                         std::string(600, 'x'),
                                         std::string(2000, 'y') + "1",
                                         std::string(2000, 'y') + "2",
                                         "tab\tnew\nline",
                                         std::string("nul\0inside", 10)};
  // A store that cannot hold NUL bytes in names refuses them clearly.
  auto storable = [](const std::string& key) {
    return names_may_hold_nul<TypeParam>() || key.find('\0') == std::string::npos;
  };
  std::size_t refused = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (!storable(keys[i])) {
      KVDEX_EXPECT_ERROR(this->store().put(keys[i], {{"i", i}}, "coll é/" + std::to_string(i % 3)),
                         ErrorCode::kInvalidArgument);
      KVDEX_EXPECT_ERROR(this->store().put("k", {{"i", i}}, std::string("nul\0coll", 8)),
                         ErrorCode::kInvalidArgument);
      EXPECT_FALSE(this->store().get(keys[i], "coll é/" + std::to_string(i % 3)).has_value());
      EXPECT_FALSE(this->store().remove(keys[i], "coll é/" + std::to_string(i % 3)));
      ++refused;
      continue;
    }
    this->store().put(keys[i], {{"i", i}}, "coll é/" + std::to_string(i % 3));
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (!storable(keys[i])) continue;
    EXPECT_EQ(this->store().get(keys[i], "coll é/" + std::to_string(i % 3)), (Value{{"i", i}}))
        << "key #" << i;
  }
  std::size_t total = 0;
  for (int c = 0; c < 3; ++c) {
    for (const auto& [key, value] : this->store().get_all("coll é/" + std::to_string(c))) {
      EXPECT_EQ(key, keys[value["i"].template get<std::size_t>()]);
      ++total;
    }
  }
  EXPECT_EQ(total, keys.size() - refused);
  // Keys #6 and #7 share a 2000-byte prefix and live in collections 0 and 1.
  EXPECT_TRUE(this->store().remove(std::string(2000, 'y') + "1", "coll é/0"));
  EXPECT_FALSE(this->store().get(std::string(2000, 'y') + "1", "coll é/0").has_value());
  KVDEX_EXPECT_SAME_VALUE(this->store().get(std::string(2000, 'y') + "2", "coll é/1"),
                          (Value{{"i", 7}}));
}

TYPED_TEST_P(KVStoreConformance, AsyncTwinsComplete) {
  this->store().aput("a", {{"v", 1}}).get();
  KVDEX_EXPECT_SAME_VALUE(this->store().aget("a").get(), (Value{{"v", 1}}));
  EXPECT_FALSE(this->store().aget("missing").get().has_value());
  std::vector<KeyValue> pairs;
  for (int i = 0; i < 25; ++i) pairs.emplace_back("p" + std::to_string(i), node_value(i));
  this->store().aput_all(pairs, "async", 10).get();
  EXPECT_EQ(this->store().aget_all("async").get().size(), 25u);
  EXPECT_TRUE(this->store().aremove("a").get());
  EXPECT_FALSE(this->store().aremove("a").get());
  KVDEX_EXPECT_ERROR(this->store().aput("bad", Value::array()), ErrorCode::kInvalidArgument);
}

TYPED_TEST_P(KVStoreConformance, AsyncCompletionCallbackRuns) {
  this->store().put("k", {{"v", 7}});
  Future<std::optional<Value>> future = this->store().aget("k");
  std::promise<Value> seen;
  future.on_ready([&seen, future]() mutable { seen.set_value(*future.get()); });
  KVDEX_EXPECT_SAME_VALUE(seen.get_future().get(), (Value{{"v", 7}}));
}

TYPED_TEST_P(KVStoreConformance, AsyncCanBeCoAwaited) {
  std::promise<std::string> result;
  put_get_remove_coroutine(this->store(), result);
  EXPECT_EQ(result.get_future().get(), "co+removed");
}

TYPED_TEST_P(KVStoreConformance, DestroyingTheStoreWithOperationsInFlightIsSafe) {
  // The destructor waits for the operations still using the store; their futures
  // outlive it and complete. ASan and TSan runs catch any use after free.
  constexpr int kOperations = 1000;
  this->store().put("seed", {{"v", 0}});
  std::vector<Future<void>> writes;
  std::vector<Future<std::optional<Value>>> reads;
  std::vector<Future<bool>> removes;
  for (int i = 0; i < kOperations; ++i) {
    const std::string key = "k" + std::to_string(i);
    switch (i % 5) {
      case 0:
        writes.push_back(
            this->store().aput_all({{key, {{"i", i}}}, {key + "b", {{"i", i}}}}, "inflight", 1));
        break;
      case 1:
        removes.push_back(this->store().aremove("seed"));
        break;
      case 2:
        reads.push_back(this->store().aget("seed"));
        break;
      default:
        writes.push_back(this->store().aput(key, {{"i", i}}, "inflight"));
        break;
    }
  }
  this->store_.reset();
  for (Future<void>& f : writes) EXPECT_NO_THROW(f.get());
  for (Future<std::optional<Value>>& f : reads) {
    std::optional<Value> value = f.get();
    if (value) {
      EXPECT_EQ(*value, (Value{{"v", 0}}));
    }
  }
  int removed = 0;
  for (Future<bool>& f : removes) removed += f.get() ? 1 : 0;
  EXPECT_EQ(removed, 1) << "the key existed once, every remove ran before the store went";
}

TYPED_TEST_P(KVStoreConformance, ConcurrentBatchesAreNeverSeenHalfApplied) {
  constexpr int kKeys = 16;
  constexpr int kRounds = 200;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<long> reads{0};
  {
    std::vector<KeyValue> initial;
    for (int k = 0; k < kKeys; ++k)
      initial.emplace_back("k" + std::to_string(k), Value{{"round", 0}});
    this->store().put_all(initial, "atomic", kKeys);
  }
  std::thread writer([&] {
    for (int round = 1; round <= kRounds; ++round) {
      std::vector<KeyValue> pairs;
      for (int k = 0; k < kKeys; ++k)
        pairs.emplace_back("k" + std::to_string(k), Value{{"round", round}});
      this->store().put_all(pairs, "atomic", kKeys);
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      do {
        std::vector<KeyValue> all = this->store().get_all("atomic");
        int first = -1;
        for (const auto& [key, value] : all) {
          const int round = value["round"].template get<int>();
          if (first < 0) first = round;
          if (round != first) ++torn;
        }
        if (all.size() != kKeys) ++torn;
        ++reads;
      } while (!done);
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  if constexpr (batches_isolated_from_readers<TypeParam>()) {
    EXPECT_EQ(torn.load(), 0);
  } else {
    // Batches spread over independent transactions (Redis Cluster's sharded layout):
    // readers may see a batch part applied, but every batch ends applied whole.
    for (const auto& [key, value] : this->store().get_all("atomic"))
      EXPECT_EQ(value["round"].template get<int>(), kRounds) << key;
  }
  EXPECT_GT(reads.load(), 0);
}

TYPED_TEST_P(KVStoreConformance, ConcurrentMixedOperationsKeepEveryThreadsWrites) {
  constexpr int kThreads = 4;
  constexpr int kOps = 150;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string collection = t % 2 == 0 ? "shared" : "other";
      for (int i = 0; i < kOps; ++i) {
        const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        this->store().put(key, {{"t", t}, {"i", i}}, collection);
        if (i % 3 == 0) {
          EXPECT_TRUE(this->store().remove(key, collection));
        }
        if (i % 10 == 0) {
          std::vector<KeyValue> batch;
          for (int j = 0; j < 5; ++j)
            batch.emplace_back(key + "/b" + std::to_string(j), Value{{"j", j}});
          this->store().put_all(batch, collection, 2);
        }
        if (i % 25 == 0) (void)this->store().get_all(collection);
        std::optional<Value> back = this->store().get(key, collection);
        EXPECT_EQ(back.has_value(), i % 3 != 0);
        if (i % 40 == 0) this->store().aput(key + "/async", {{"a", i}}, collection).get();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    const std::string collection = t % 2 == 0 ? "shared" : "other";
    for (int i = 0; i < kOps; ++i) {
      const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
      EXPECT_EQ(this->store().get(key, collection).has_value(), i % 3 != 0) << key;
      if (i % 10 == 0) {
        KVDEX_EXPECT_SAME_VALUE(this->store().get(key + "/b4", collection), (Value{{"j", 4}}));
      }
    }
  }
}

REGISTER_TYPED_TEST_SUITE_P(
    KVStoreConformance, PutThenGetReturnsEqualValue, GetOfMissingKeyOrCollectionIsNullopt,
    DefaultCollectionIsData, PutOverwrites, PutRejectsNonObjectsAndChangesNothing,
    GetReturnsAnIndependentCopy, CollectionsAreIndependent, RemoveReportsWhetherTheKeyWasThere,
    GetAllReturnsEveryEntry, PutAllAcceptsEveryBatchSize, PutAllRejectsBatchSizeBelowOne,
    PutAllWithABadValueWritesNothing, PutAllLaterDuplicateWins,
    WriteBatchSpansCollectionsAndRemoves, EncodedApiKeepsPythonText, ScanVisitsEveryEntry,
    KeysAndCollectionsMayBeAnyString, AsyncTwinsComplete, AsyncCompletionCallbackRuns,
    AsyncCanBeCoAwaited, DestroyingTheStoreWithOperationsInFlightIsSafe,
    ConcurrentBatchesAreNeverSeenHalfApplied, ConcurrentMixedOperationsKeepEveryThreadsWrites);

}  // namespace kvdex::testing

#endif  // KVDEX_TESTS_CONFORMANCE_KVSTORE_CONFORMANCE_H_
