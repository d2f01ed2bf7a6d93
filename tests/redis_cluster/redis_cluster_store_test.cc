// RedisClusterKVStore against real servers: the shared conformance suite on a 3-master
// Redis Cluster in LlamaIndex's layout and in the sharded layout, and on one Redis in
// the sharded layout; layout refusals; shard placement; a slot migrated under a live
// store (ASK, then MOVED); a master killed and its replica promoted under a live store.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <thread>

#include "conformance/kvstore_conformance.h"
#include "kvdex/open.h"
#include "kvdex/redis_cluster_kvstore.h"
#include "local_redis_cluster.h"
#include "redis/cluster_slot_map.h"
#include "redis/hash_slot.h"
#include "redis/redis_test_server.h"
#include "redis/sharded_layout.h"
#include "test_util.h"

namespace kvdex::testing {
namespace {

LocalRedisCluster& shared_cluster() {
  static LocalRedisCluster* cluster = [] {
    auto* made = new LocalRedisCluster({.masters = 3});
    std::atexit([] { delete &shared_cluster(); });
    return made;
  }();
  return *cluster;
}

RedisTestServer& shared_single_server() {
  static RedisTestServer* server = [] {
    auto* made = new RedisTestServer();
    std::atexit([] { shared_single_server().kill(); });
    return made;
  }();
  return *server;
}

void flush_cluster() {
  for (const int port : shared_cluster().ports()) {
    ASSERT_EQ(redis_command_text(port, {"FLUSHALL"}), "OK") << port;
  }
}

std::unique_ptr<BaseKVStore> open_cluster(const std::string& options) {
  flush_cluster();
  return open(shared_cluster().seed_uri() + "?cluster=1" + options);
}

struct ClusterPlainTraits {
  static constexpr bool kInsertionOrdered = false;
  std::unique_ptr<BaseKVStore> make() { return open_cluster(""); }
};
struct ClusterShardedTraits {
  static constexpr bool kInsertionOrdered = false;
  static constexpr bool kBatchesIsolatedFromReaders = false;
  std::unique_ptr<BaseKVStore> make() { return open_cluster("&shards=3"); }
};
// More shards than masters, tiny pools and pages: waiting for connections, pipelining,
// many HSCAN pages per shard.
struct ClusterShardedSmallTraits {
  static constexpr bool kInsertionOrdered = false;
  static constexpr bool kBatchesIsolatedFromReaders = false;
  std::unique_ptr<BaseKVStore> make() {
    return open_cluster("&shards=7&pool=2&async_connections=1&scan_count=3");
  }
};
struct SingleNodeShardedTraits {
  static constexpr bool kInsertionOrdered = false;
  static constexpr bool kBatchesIsolatedFromReaders = false;
  std::unique_ptr<BaseKVStore> make() {
    shared_single_server().command({"FLUSHALL"});
    return open(shared_single_server().uri("?shards=4"));
  }
};

using ClusterTypes = ::testing::Types<ClusterPlainTraits, ClusterShardedTraits,
                                      ClusterShardedSmallTraits, SingleNodeShardedTraits>;
INSTANTIATE_TYPED_TEST_SUITE_P(RedisCluster, KVStoreConformance, ClusterTypes);

Value doc(int i) { return Value{{"id_", "doc-" + std::to_string(i)}, {"n", i}}; }

std::vector<KeyValue> docs(int count, int first = 0) {
  std::vector<KeyValue> pairs;
  for (int i = first; i < first + count; ++i)
    pairs.emplace_back("doc-" + std::to_string(i), doc(i));
  return pairs;
}

std::string error_text(const std::function<void()>& call, ErrorCode expected) {
  try {
    call();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), expected) << error.what();
    return error.what();
  }
  ADD_FAILURE() << "expected kvdex::Error(" << error_code_name(expected) << ")";
  return "";
}

TEST(RedisClusterStore, OpenPicksTheClusterStoreAndPlainLayoutIsLlamaIndexs) {
  auto store = open_cluster("");
  ASSERT_NE(dynamic_cast<RedisClusterKVStore*>(store.get()), nullptr);
  store->put_all(docs(50), "docstore/data");
  // LlamaIndex's layout: one hash named by the collection, on the master of its slot.
  const int slot = redis::key_hash_slot("docstore/data");
  const int owner = shared_cluster().master_port_for_slot(slot, shared_cluster().first_port());
  EXPECT_EQ(redis_command_text(owner, {"HLEN", "docstore/data"}), "50");
  EXPECT_EQ(redis_command_text(owner, {"HGET", "docstore/data", "doc-7"}),
            R"({"id_": "doc-7", "n": 7})");
  EXPECT_EQ(store->get_all("docstore/data").size(), 50u);
  EXPECT_EQ(static_cast<RedisClusterKVStore*>(store.get())->masters().size(), 3u);
}

TEST(RedisClusterStore, ShardedLayoutSpreadsACollectionOverEveryMaster) {
  auto store = open_cluster("&shards=3");
  store->put_all(docs(3000), "docstore/data", 500);
  EXPECT_EQ(store->count("docstore/data"), 3000u);
  // The marker string at the collection's key, one shard hash per master.
  const int marker_owner = shared_cluster().master_port_for_slot(
      redis::key_hash_slot("docstore/data"), shared_cluster().first_port());
  EXPECT_EQ(redis_command_text(marker_owner, {"GET", "docstore/data"}),
            "kvdex-sharded-collection v1 shards=3");
  std::set<int> owners;
  std::uint64_t total = 0;
  for (int shard = 0; shard < 3; ++shard) {
    const std::string hash = redis::shard_hash_name("docstore/data", shard, 3);
    const int owner = shared_cluster().master_port_for_slot(redis::key_hash_slot(hash),
                                                            shared_cluster().first_port());
    owners.insert(owner);
    const long long entries = std::stoll(redis_command_text(owner, {"HLEN", hash}));
    EXPECT_GT(entries, 800) << hash;
    total += static_cast<std::uint64_t>(entries);
  }
  EXPECT_EQ(owners.size(), 3u);
  EXPECT_EQ(total, 3000u);
  const std::vector<KeyValue> all = store->get_all("docstore/data");
  ASSERT_EQ(all.size(), 3000u);
  std::map<std::string, Value> by_key(all.begin(), all.end());
  EXPECT_EQ(by_key["doc-2999"], doc(2999));
  EXPECT_EQ(store->collections(), std::vector<std::string>{"docstore/data"});
}

TEST(RedisClusterStore, ShardCountIsFixedAtCreation) {
  auto creator = open_cluster("&shards=3");
  creator->put_all(docs(100), "c");
  // A store opened with another shard count reads and writes the collection with its
  // recorded 3 shards.
  auto other = open(shared_cluster().seed_uri() + "?cluster=1&shards=5");
  EXPECT_EQ(other->count("c"), 100u);
  other->put("doc-100", doc(100), "c");
  EXPECT_EQ(creator->get("doc-100", "c"), doc(100));
  EXPECT_EQ(creator->count("c"), 101u);
  // A new collection gets the opening store's count.
  other->put("k", {{"v", 1}}, "d");
  const int owner = shared_cluster().master_port_for_slot(redis::key_hash_slot("d"),
                                                          shared_cluster().first_port());
  EXPECT_EQ(redis_command_text(owner, {"GET", "d"}), "kvdex-sharded-collection v1 shards=5");
}

TEST(RedisClusterStore, EachLayoutRefusesTheOther) {
  auto plain = open_cluster("");
  auto sharded = open(shared_cluster().seed_uri() + "?cluster=1&shards=3");
  plain->put("k", {{"v", 1}}, "llama/c");
  sharded->put("k", {{"v", 2}}, "kvdex/c");

  std::string text =
      error_text([&] { sharded->get("k", "llama/c"); }, ErrorCode::kFailedPrecondition);
  EXPECT_NE(text.find("LlamaIndex's Redis layout"), std::string::npos) << text;
  text = error_text(
      [&] {
        sharded->put("k2", {{"v", 1}}, "llama/c");
      },
      ErrorCode::kFailedPrecondition);
  text = error_text([&] { plain->get("k", "kvdex/c"); }, ErrorCode::kFailedPrecondition);
  EXPECT_NE(text.find("sharded layout (3 shards)"), std::string::npos) << text;
  error_text([&] { plain->put("k", {{"v", 3}}, "kvdex/c"); }, ErrorCode::kFailedPrecondition);
  error_text([&] { plain->get_all("kvdex/c"); }, ErrorCode::kFailedPrecondition);
  // Nothing changed in either.
  EXPECT_EQ(plain->get("k", "llama/c"), (Value{{"v", 1}}));
  EXPECT_EQ(sharded->get("k", "kvdex/c"), (Value{{"v", 2}}));
  // LlamaIndex's own commands on the sharded collection fail loudly (WRONGTYPE), never
  // see an empty collection.
  const int owner = shared_cluster().master_port_for_slot(redis::key_hash_slot("kvdex/c"),
                                                          shared_cluster().first_port());
  EXPECT_EQ(redis_command_text(owner, {"HGETALL", "kvdex/c"}).rfind("WRONGTYPE", 0), 0u);
  // Each lists only its own layout's collections.
  EXPECT_EQ(plain->collections(), std::vector<std::string>{"llama/c"});
  EXPECT_EQ(sharded->collections(), std::vector<std::string>{"kvdex/c"});
  // A plain single-node RedisKVStore refuses the sharded collection too.
  RedisOptions options = parse_redis_uri(shared_cluster().seed_uri());
  options.port = owner;
  RedisKVStore single(options);
  text = error_text([&] { single.get("k", "kvdex/c"); }, ErrorCode::kFailedPrecondition);
  EXPECT_NE(text.find("sharded layout"), std::string::npos) << text;
}

TEST(RedisClusterStore, ConstructingAPlainRedisKVStoreWithClusterIsRefused) {
  KVDEX_EXPECT_ERROR(RedisKVStore(parse_redis_uri("redis://127.0.0.1:1?cluster=1")),
                     ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(open("redis://127.0.0.1:1?shards=0x"), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(open("redis://127.0.0.1:1?shards=1025"), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(open("redis://127.0.0.1:1/2?cluster=1"), ErrorCode::kInvalidArgument);
}

TEST(RedisClusterStore, AStoreOnANonClusterServerSaysSo) {
  auto store = open(shared_single_server().uri("?cluster=1"));
  const std::string text = error_text([&] { store->get("k"); }, ErrorCode::kFailedPrecondition);
  EXPECT_NE(text.find(shared_single_server().address()), std::string::npos) << text;
}

// Moves `slot` from its master to another with CLUSTER SETSLOT and MIGRATE, the way
// redis-cli --cluster reshard does; `between` runs while the slot is half migrated.
void migrate_slot(int slot, int* to_port, const std::function<void()>& between) {
  LocalRedisCluster& cluster = shared_cluster();
  const int from = cluster.master_port_for_slot(slot, cluster.first_port());
  int to = 0;
  for (const int port : cluster.ports()) {
    if (port != from) to = port;
  }
  *to_port = to;
  const std::string from_id = redis_command_text(from, {"CLUSTER", "MYID"});
  const std::string to_id = redis_command_text(to, {"CLUSTER", "MYID"});
  const std::string s = std::to_string(slot);
  ASSERT_EQ(redis_command_text(to, {"CLUSTER", "SETSLOT", s, "IMPORTING", from_id}), "OK");
  ASSERT_EQ(redis_command_text(from, {"CLUSTER", "SETSLOT", s, "MIGRATING", to_id}), "OK");
  RedisContextPtr context = connect_to_redis(from);
  RedisReplyPtr keys = redis_command(context.get(), {"CLUSTER", "GETKEYSINSLOT", s, "1000"});
  for (size_t i = 0; i < keys->elements; ++i) {
    const std::string key(keys->element[i]->str, keys->element[i]->len);
    ASSERT_EQ(reply_text(redis_command(context.get(), {"MIGRATE", "127.0.0.1", std::to_string(to),
                                                       key, "0", "5000"})
                             .get()),
              "OK");
  }
  between();
  for (const int port : cluster.ports()) {
    ASSERT_EQ(redis_command_text(port, {"CLUSTER", "SETSLOT", s, "NODE", to_id}), "OK");
  }
  cluster.wait_until_ready();
}

TEST(RedisClusterStore, CallsKeepWorkingAcrossASlotMigration) {
  auto opened = open_cluster("");
  auto& store = static_cast<RedisClusterKVStore&>(*opened);
  store.put_all(docs(200), "docstore/data");
  const std::uint64_t refreshes_before = store.slot_map_refreshes();
  const int slot = redis::key_hash_slot("docstore/data");
  int to = 0;
  migrate_slot(slot, &to, [&] {
    // Half migrated: the hash is on the target, the source still owns the slot and
    // answers ASK. Every call is answered by the target after ASKING.
    EXPECT_EQ(store.get("doc-3", "docstore/data"), doc(3));
    store.put("doc-mid", doc(1000), "docstore/data");
    EXPECT_TRUE(store.remove("doc-4", "docstore/data"));
    store.put_all(docs(5, 300), "docstore/data", 2);
    EXPECT_EQ(store.count("docstore/data"), 205u);
    EXPECT_EQ(store.get_all("docstore/data").size(), 205u);
    std::size_t scanned = 0;
    store.scan("docstore/data", [&](std::string_view, std::string_view) { ++scanned; });
    EXPECT_EQ(scanned, 205u);
    // Nothing was written on the source, and the map was not changed by ASK.
    EXPECT_EQ(redis_command_text(to, {"ASKING"}), "OK");
    EXPECT_EQ(store.slot_map_refreshes(), refreshes_before);
  });
  EXPECT_EQ(shared_cluster().master_port_for_slot(slot, shared_cluster().first_port()), to);
  // The store's map still names the old master: MOVED, map refreshed, call answered.
  EXPECT_EQ(store.get("doc-150", "docstore/data"), doc(150));
  EXPECT_EQ(store.get("doc-mid", "docstore/data"), doc(1000));
  EXPECT_FALSE(store.get("doc-4", "docstore/data").has_value());
  store.put("doc-200", doc(200), "docstore/data");
  EXPECT_EQ(store.count("docstore/data"), 206u);
  EXPECT_EQ(store.aget("doc-199", "docstore/data").get(), doc(199));
  EXPECT_GT(store.slot_map_refreshes(), refreshes_before);
  EXPECT_EQ(redis_command_text(to, {"HLEN", "docstore/data"}), "206");
}

TEST(RedisClusterStore, ShardedCollectionSurvivesAShardMigration) {
  auto store = open_cluster("&shards=3");
  store->put_all(docs(600), "big");
  const std::string hash = redis::shard_hash_name("big", 1, 3);
  int to = 0;
  migrate_slot(redis::key_hash_slot(hash), &to, [&] {
    EXPECT_EQ(store->get_all("big").size(), 600u);  // one shard answered after ASKING
    store->put_all(docs(30, 600), "big", 7);
    EXPECT_EQ(store->count("big"), 630u);
  });
  EXPECT_EQ(store->get_all("big").size(), 630u);
  store->put_all(docs(70, 630), "big");
  EXPECT_EQ(store->count("big"), 700u);
  EXPECT_EQ(store->aget_all("big").get().size(), 700u);
}

// Its own cluster with replicas: the failover changes the topology.
TEST(RedisClusterFailover, CallsWorkAfterTheReplicaOfAKilledMasterIsPromoted) {
  LocalRedisCluster cluster({.masters = 3, .replicas_per_master = 1});
  auto opened = open(cluster.uri());
  auto& store = static_cast<RedisClusterKVStore&>(*opened);
  store.put_all(docs(300), "docstore/data");
  EXPECT_EQ(store.aget("doc-1", "docstore/data").get(), doc(1));  // async connections open
  const int slot = redis::key_hash_slot("docstore/data");
  const int old_master = cluster.master_port_for_slot(slot, cluster.first_port());
  ASSERT_EQ(redis_command_text(old_master, {"WAIT", "1", "5000"}), "1");
  cluster.kill_node(old_master);
  // Before the failover, a call fails naming the dead master.
  try {
    store.get("doc-1", "docstore/data");
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kUnavailable) << error.what();
    EXPECT_NE(std::string(error.what()).find(std::to_string(old_master)), std::string::npos)
        << error.what();
  }
  cluster.wait_until_ready();
  const int new_master = cluster.master_port_for_slot(
      slot, cluster.ports().back() == old_master ? cluster.first_port() : cluster.ports().back());
  ASSERT_NE(new_master, old_master);
  // The same store: the map is read again, the promoted replica serves the collection.
  EXPECT_EQ(store.get("doc-1", "docstore/data"), doc(1));
  EXPECT_EQ(store.aget("doc-2", "docstore/data").get(), doc(2));
  store.put_all(docs(50, 300), "docstore/data");
  EXPECT_EQ(store.get_all("docstore/data").size(), 350u);
  EXPECT_EQ(redis_command_text(new_master, {"HLEN", "docstore/data"}), "350");
}

}  // namespace
}  // namespace kvdex::testing
