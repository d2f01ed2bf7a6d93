// The slot code against a real Redis Cluster (3 masters, 1 replica each, started by
// LocalRedisCluster): CLUSTER KEYSLOT agrees with key_hash_slot, the parsed CLUSTER SLOTS
// map routes every key to the node that accepts it, real MOVED/ASK replies parse to the
// right node, and the map read after a failover names the promoted replica.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "local_redis_cluster.h"
#include "redis/cluster_slot_map.h"
#include "redis/hash_slot.h"
#include "redis/sharded_layout.h"

namespace kvdex::redis {
namespace {

using testing::connect_to_redis;
using testing::LocalRedisCluster;
using testing::redis_command;
using testing::RedisContextPtr;
using testing::RedisReplyPtr;

ClusterNode node_at(int port) { return ClusterNode{"127.0.0.1", port}; }

ClusterSlotMap read_slot_map(int port) {
  RedisContextPtr context = connect_to_redis(port);
  EXPECT_NE(context, nullptr);
  RedisReplyPtr reply = redis_command(context.get(), {"CLUSTER", "SLOTS"});
  EXPECT_NE(reply, nullptr);
  return ClusterSlotMap::from_cluster_slots_reply(*reply, node_at(port));
}

std::string node_id(int port) { return testing::redis_command_text(port, {"CLUSTER", "MYID"}); }

// Keys that exercise every hash-tag rule and binary bytes, plus random ones.
std::vector<std::string> tricky_keys() {
  std::vector<std::string> keys = {"",
                                   "foo",
                                   "{",
                                   "}",
                                   "{}",
                                   "{}{}",
                                   "{a",
                                   "a}",
                                   "}{",
                                   "{a}",
                                   "{a}{b}",
                                   "x{}{y}",
                                   "x{{y}}",
                                   "{{}}",
                                   "{ }",
                                   "a{b}c{d}e",
                                   std::string("nul\0{tag}", 9),
                                   std::string("{\0}", 3),
                                   "docstore/data",
                                   "\r\n{\r\n}",
                                   "\xff\xfe{\xc3\xa9}",
                                   std::string(10240, '{') + "}"};
  std::mt19937 random(20261205);
  const std::string alphabet = "ab{}{}\r\n \x01\xff*\"";
  for (int i = 0; i < 3000; ++i) {
    std::string key;
    const int length = static_cast<int>(random() % 24);
    for (int j = 0; j < length; ++j) key.push_back(alphabet[random() % alphabet.size()]);
    keys.push_back(key);
    keys.push_back("key:" + std::to_string(random()));
  }
  return keys;
}

class ClusterLive : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new LocalRedisCluster({.masters = 3, .replicas_per_master = 1});
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static LocalRedisCluster* cluster_;
};
LocalRedisCluster* ClusterLive::cluster_ = nullptr;

TEST_F(ClusterLive, KeySlotMatchesClusterKeyslot) {
  RedisContextPtr context = connect_to_redis(cluster_->first_port());
  ASSERT_NE(context, nullptr);
  const std::vector<std::string> keys = tricky_keys();
  // Pipelined: every CLUSTER KEYSLOT appended, then the replies read in order.
  for (const std::string& key : keys) {
    const char* argv[] = {"CLUSTER", "KEYSLOT", key.data()};
    const size_t lengths[] = {7, 7, key.size()};
    ASSERT_EQ(redisAppendCommandArgv(context.get(), 3, argv, lengths), REDIS_OK);
  }
  for (const std::string& key : keys) {
    void* raw = nullptr;
    ASSERT_EQ(redisGetReply(context.get(), &raw), REDIS_OK);
    RedisReplyPtr reply(static_cast<redisReply*>(raw));
    ASSERT_EQ(reply->type, REDIS_REPLY_INTEGER) << testing::reply_text(reply.get());
    ASSERT_EQ(key_hash_slot(key), reply->integer) << "key bytes: " << key.substr(0, 60);
  }
}

TEST_F(ClusterLive, SlotMapRoutesEveryKeyToTheNodeThatAcceptsIt) {
  const ClusterSlotMap map = read_slot_map(cluster_->first_port());
  ASSERT_TRUE(map.covers_all_slots());
  ASSERT_EQ(map.masters().size(), 3u);
  EXPECT_EQ(map.known_nodes().size(), 6u);
  // Every node reports the same map.
  for (const int port : cluster_->ports()) {
    const ClusterSlotMap other = read_slot_map(port);
    for (int slot = 0; slot < kClusterSlotCount; slot += 97) {
      ASSERT_EQ(*other.master_for_slot(slot), *map.master_for_slot(slot)) << "slot " << slot;
    }
  }
  std::mt19937 random(7);
  for (int i = 0; i < 300; ++i) {
    const std::string key = "route:" + std::to_string(random()) + (i % 3 == 0 ? "{tag}" : "");
    const ClusterNode& owner = *map.master_for_key(key);
    for (const ClusterNode& master : map.masters()) {
      RedisContextPtr context = connect_to_redis(master.port);
      RedisReplyPtr reply = redis_command(context.get(), {"SET", key, "v"});
      ASSERT_NE(reply, nullptr);
      if (master == owner) {
        ASSERT_EQ(testing::reply_text(reply.get()), "OK") << master.address();
      } else {
        // A real MOVED names the slot and the owner the map names.
        ASSERT_EQ(reply->type, REDIS_REPLY_ERROR);
        const std::optional<ClusterRedirect> redirect =
            parse_cluster_redirect(testing::reply_text(reply.get()), master);
        ASSERT_TRUE(redirect) << testing::reply_text(reply.get());
        EXPECT_EQ(redirect->kind, ClusterRedirect::Kind::kMoved);
        EXPECT_EQ(redirect->slot, key_hash_slot(key));
        EXPECT_EQ(redirect->target, owner);
      }
    }
  }
}

TEST_F(ClusterLive, AskDuringASlotMigration) {
  const ClusterSlotMap map = read_slot_map(cluster_->first_port());
  const std::string key = "ask-me{migrating}";
  const int slot = key_hash_slot(key);
  const ClusterNode source = *map.master_for_slot(slot);
  ClusterNode target;
  for (const ClusterNode& master : map.masters()) {
    if (master != source) target = master;
  }
  const std::string source_id = node_id(source.port);
  const std::string target_id = node_id(target.port);
  const std::string slot_text = std::to_string(slot);
  ASSERT_EQ(testing::redis_command_text(target.port,
                                        {"CLUSTER", "SETSLOT", slot_text, "IMPORTING", source_id}),
            "OK");
  ASSERT_EQ(testing::redis_command_text(source.port,
                                        {"CLUSTER", "SETSLOT", slot_text, "MIGRATING", target_id}),
            "OK");

  // The key is not on the source: the source answers ASK naming the target.
  const std::string answer = testing::redis_command_text(source.port, {"GET", key});
  const std::optional<ClusterRedirect> redirect = parse_cluster_redirect(answer, source);
  ASSERT_TRUE(redirect) << answer;
  EXPECT_EQ(redirect->kind, ClusterRedirect::Kind::kAsk);
  EXPECT_EQ(redirect->slot, slot);
  EXPECT_EQ(redirect->target, target);
  // The target serves it after ASKING on the same connection, and only then.
  RedisContextPtr context = connect_to_redis(target.port);
  RedisReplyPtr moved = redis_command(context.get(), {"GET", key});
  EXPECT_TRUE(parse_cluster_redirect(testing::reply_text(moved.get()), target))
      << testing::reply_text(moved.get());
  EXPECT_EQ(testing::reply_text(redis_command(context.get(), {"ASKING"}).get()), "OK");
  EXPECT_EQ(redis_command(context.get(), {"GET", key})->type, REDIS_REPLY_NIL);

  ASSERT_EQ(testing::redis_command_text(source.port, {"CLUSTER", "SETSLOT", slot_text, "STABLE"}),
            "OK");
  ASSERT_EQ(testing::redis_command_text(target.port, {"CLUSTER", "SETSLOT", slot_text, "STABLE"}),
            "OK");
}

TEST_F(ClusterLive, ShardsOfACollectionSpreadOverEveryMaster) {
  const ClusterSlotMap map = read_slot_map(cluster_->first_port());
  for (const std::string collection : {"docstore/data", "index_store/data", "a{b}c"}) {
    std::set<ClusterNode> owners;
    for (int shard = 0; shard < 3; ++shard) {
      const std::string name = shard_hash_name(collection, shard, 3);
      owners.insert(*map.master_for_key(name));
      const std::string answer =
          testing::redis_command_text(cluster_->first_port(), {"CLUSTER", "KEYSLOT", name});
      EXPECT_EQ(answer, std::to_string(key_hash_slot(name)));
    }
    EXPECT_EQ(owners.size(), 3u) << collection;
  }
}

// Its own cluster: the failover changes the topology the other tests rely on.
TEST(ClusterFailover, MapReadAfterAFailoverNamesThePromotedReplica) {
  LocalRedisCluster cluster({.masters = 3, .replicas_per_master = 1});
  const ClusterSlotMap before = read_slot_map(cluster.first_port());
  const int slot = key_hash_slot("failover-key");
  const ClusterNode old_master = *before.master_for_slot(slot);
  std::vector<ClusterNode> replicas;
  for (const SlotRange& range : before.ranges()) {
    if (range.first_slot <= slot && slot <= range.last_slot) replicas = range.replicas;
  }
  ASSERT_EQ(replicas.size(), 1u);
  ASSERT_EQ(testing::redis_command_text(old_master.port, {"SET", "failover-key", "before"}), "OK");
  // WAIT: the write reached the replica before the master dies.
  ASSERT_EQ(testing::redis_command_text(old_master.port, {"WAIT", "1", "5000"}), "1");

  cluster.kill_node(old_master.port);
  int asked = 0;
  for (const int port : cluster.ports()) {
    if (port != old_master.port) asked = port;
  }
  cluster.wait_until_ready();
  const ClusterSlotMap after = read_slot_map(asked);
  ASSERT_NE(after.master_for_slot(slot), nullptr);
  EXPECT_EQ(*after.master_for_slot(slot), replicas[0]);
  EXPECT_TRUE(after.covers_all_slots());
  EXPECT_EQ(cluster.role_of(replicas[0].port), "master");
  EXPECT_EQ(testing::redis_command_text(replicas[0].port, {"GET", "failover-key"}), "before");
  // The dead master is gone from the map: no slot names it.
  for (const ClusterNode& master : after.masters()) EXPECT_NE(master, old_master);
}

}  // namespace
}  // namespace kvdex::redis
