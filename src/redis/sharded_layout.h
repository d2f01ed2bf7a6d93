// kvdex's sharded Redis layout: one collection spread over N hashes, so that on a Redis
// Cluster one large collection uses every master instead of living on the one node that
// serves its hash's slot. LlamaIndex's layout (one hash named by the collection) stays
// the default; this one is opt-in (`?shards=N`) and LlamaIndex cannot read it.
//
// Layout of a sharded collection C with N shards (docs/redis-cluster.md is the
// authority; this is its code):
//   * key C holds a Redis *string*, the marker "kvdex-sharded-collection v1 shards=N".
//     It records N, fixed when the collection is created (SET C marker NX), and makes the
//     collection unreadable as LlamaIndex's layout: LlamaIndex's HGET/HGETALL on C fail
//     with WRONGTYPE instead of silently seeing an empty collection, and a kvdex store
//     opened without ?shards reports the sharded layout by name.
//   * entry (key, value) lives in shard s = FNV-1a-64(key bytes) mod N, in the hash named
//     shard_hash_name(C, s, N): field = key, value = json.dumps text, as in LlamaIndex's
//     layout.
//   * shard hash names start with a hash tag "{kvdex-shard:...}" chosen so that shard s
//     hashes to a slot in [s*16384/N, (s+1)*16384/N): the shards spread evenly over the
//     slot space, hence over masters that own equal slot ranges.
//
// Thread safety: pure functions; call them from any thread.
#ifndef KVDEX_SRC_REDIS_SHARDED_LAYOUT_H_
#define KVDEX_SRC_REDIS_SHARDED_LAYOUT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvdex::redis {

// Shard counts a store accepts (?shards=N).
inline constexpr int kMinShards = 1;
inline constexpr int kMaxShards = 1024;

// The prefix of every shard hash name, so listings can tell shards from collections.
inline constexpr std::string_view kShardHashPrefix = "{kvdex-shard:";

// The marker string stored at the collection's own key.
std::string sharded_marker_value(int shards);

// What a string found at a collection's key says: the shard count if it is kvdex's
// marker, nullopt if it is some other string. Throws Error(kCorruption) naming the
// collection when it starts like a marker but its shard count is unreadable or outside
// [kMinShards, kMaxShards].
std::optional<int> parse_sharded_marker(std::string_view value, std::string_view collection);

// FNV-1a 64-bit of the bytes: the key-to-shard hash (stable across platforms and
// languages, unlike std::hash).
std::uint64_t fnv1a_64(std::string_view bytes) noexcept;

// The shard (0..shards-1) holding `key`.
int shard_of_key(std::string_view key, int shards) noexcept;

// The name of shard `shard` (0..shards-1) of `collection`:
//   "{kvdex-shard:" + H + ":" + s + ":" + c + "}" + collection
// H = FNV-1a-64(collection) as 16 lower-case hex digits (spreads different collections'
// shards over different slots), s = shard, c = the smallest integer >= 0 for which the
// tag's slot lies in [s*16384/N, (s+1)*16384/N) (c = 0 if none below 2^20, which CRC16
// makes practically impossible). The collection suffix keeps names unique and readable.
// Costs about N CRC16s; stores compute each collection's names once.
std::string shard_hash_name(std::string_view collection, int shard, int shards);

}  // namespace kvdex::redis

#endif  // KVDEX_SRC_REDIS_SHARDED_LAYOUT_H_
