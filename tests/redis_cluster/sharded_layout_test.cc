// The sharded layout's names, marker and key placement.
#include "redis/sharded_layout.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "redis/hash_slot.h"
#include "test_util.h"

namespace kvdex::redis {
namespace {

TEST(ShardedLayout, MarkerRoundTripsAndOtherStringsAreNotMarkers) {
  EXPECT_EQ(sharded_marker_value(8), "kvdex-sharded-collection v1 shards=8");
  for (const int shards : {1, 3, 16, 1024}) {
    EXPECT_EQ(parse_sharded_marker(sharded_marker_value(shards), "c"), shards);
  }
  EXPECT_FALSE(parse_sharded_marker("hello", "c"));
  EXPECT_FALSE(parse_sharded_marker("", "c"));
  EXPECT_FALSE(parse_sharded_marker("{\"a\": 1}", "c"));
}

TEST(ShardedLayout, DamagedMarkerIsCorruptionNamingTheCollection) {
  for (const char* value :
       {"kvdex-sharded-collection v1 shards=", "kvdex-sharded-collection v1 shards=0",
        "kvdex-sharded-collection v1 shards=1025", "kvdex-sharded-collection v1 shards=3x",
        "kvdex-sharded-collection v2 shards=3"}) {
    try {
      parse_sharded_marker(value, "docstore/data");
      ADD_FAILURE() << "accepted " << value;
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kCorruption);
      EXPECT_NE(std::string(error.what()).find("docstore/data"), std::string::npos);
    }
  }
}

TEST(ShardedLayout, Fnv1aKnownValues) {
  // The FNV-1a 64 test vectors (offset basis for "", 0xaf63dc4c8601ec8c for "a").
  EXPECT_EQ(fnv1a_64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a_64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a_64("foobar"), 0x85944171f73967e8ULL);
}

TEST(ShardedLayout, KeysSpreadOverEveryShard) {
  constexpr int kShards = 7;
  std::map<int, int> per_shard;
  for (int i = 0; i < 7000; ++i) {
    const int shard = shard_of_key("doc-" + std::to_string(i), kShards);
    ASSERT_GE(shard, 0);
    ASSERT_LT(shard, kShards);
    ++per_shard[shard];
  }
  ASSERT_EQ(per_shard.size(), static_cast<size_t>(kShards));
  for (const auto& [shard, count] : per_shard) {
    EXPECT_GT(count, 800) << "shard " << shard;
    EXPECT_LT(count, 1200) << "shard " << shard;
  }
  EXPECT_EQ(shard_of_key("anything", 1), 0);
}

TEST(ShardedLayout, ShardNamesLandInEvenlySpacedSlotRanges) {
  for (const std::string collection : {"docstore/data", "a{b}c", "{x}", "", "\xff\r\n*"}) {
    for (const int shards : {1, 2, 3, 5, 16, 100}) {
      std::set<std::string> names;
      for (int shard = 0; shard < shards; ++shard) {
        const std::string name = shard_hash_name(collection, shard, shards);
        EXPECT_TRUE(name.starts_with(kShardHashPrefix)) << name;
        EXPECT_TRUE(name.ends_with(collection)) << name;
        // The collection's own braces never decide the slot: the name's tag is ours.
        const std::string_view tag = hash_tag_of(name);
        EXPECT_TRUE(tag.starts_with("kvdex-shard:")) << name;
        const int slot = key_hash_slot(name);
        EXPECT_GE(slot, shard * kClusterSlotCount / shards) << name;
        EXPECT_LT(slot, (shard + 1) * kClusterSlotCount / shards) << name;
        names.insert(name);
        // Deterministic: any reader computes the same name.
        EXPECT_EQ(shard_hash_name(collection, shard, shards), name);
      }
      EXPECT_EQ(names.size(), static_cast<size_t>(shards));
    }
  }
  EXPECT_NE(shard_hash_name("a", 0, 3), shard_hash_name("b", 0, 3));
  EXPECT_EQ(shard_hash_name("docstore/data", 0, 1).rfind("{kvdex-shard:", 0), 0u);
}

}  // namespace
}  // namespace kvdex::redis
