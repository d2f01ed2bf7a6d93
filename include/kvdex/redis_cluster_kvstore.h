// RedisClusterKVStore — kvdex's Redis store on a Redis Cluster, and kvdex's sharded
// layout (on a cluster or on one Redis). kvdex::open picks it for a redis:// URI with
// ?cluster=1 or ?shards=N; the URI's host:port is the seed node.
//
//   auto store = kvdex::open("redis://127.0.0.1:7000?cluster=1");            // LlamaIndex's layout
//   auto big = kvdex::open("redis://127.0.0.1:7000?cluster=1&shards=12");   // sharded layout
//
// Routing (cluster=1): the slot map is read with CLUSTER SLOTS from the seed (then from
// any node it names) on first use; every command goes to the master serving its Redis
// key's slot (CRC16-XMODEM mod 16384, hash tags). A MOVED reply updates the map and the
// command is sent again to the node it names; an ASK reply (a slot being migrated, the
// key already on the target) is answered by sending the same operation to the target
// after ASKING (a batch as ASKING, MULTI, ..., EXEC), without changing the map. At most
// 16 redirections per call; then the last one is thrown (Error(kInternal) naming the
// MOVED/ASK reply). A node that cannot be reached makes the store re-read the map
// from the other nodes; if the slot has a new master (a replica was promoted), the call
// is sent there, else it fails with Error(kUnavailable) naming host:port, and the next
// call tries again. Each node is a RedisKVStore (its own pool and async connections),
// so everything redis_kvstore.h says about connections, timeouts and error codes holds
// per node. Without cluster=1, every command goes to the one server of the URI.
//
// Layouts. shards=0 (default): LlamaIndex's layout, one hash per collection, so a
// collection lives on the one node serving its name's slot; LlamaIndex reads and writes
// it as its own. shards=N: kvdex's sharded layout (src/redis/sharded_layout.h and
// docs/redis-cluster.md): a collection this store creates is spread over N hashes
// placed on evenly spaced slots, recorded with a marker string at the collection's own
// key; N is fixed at creation (an existing collection keeps its own N whatever this
// store's shards option says). LlamaIndex cannot read it. A store opened with shards=0
// refuses a sharded collection, and one opened with shards=N refuses a collection in
// LlamaIndex's layout: Error(kFailedPrecondition) naming the collection and the layout.
//
// Atomicity. Redis transactions stay within one hash slot, so: a write() batch is
// applied as one MULTI/EXEC per slot it touches (per collection in LlamaIndex's layout,
// per shard in the sharded layout); put_all's batches are atomic per collection in
// LlamaIndex's layout (as on one Redis) but in the sharded layout each shard's pairs
// are written in batches of at most batch_size, each atomic on its shard, the shards
// concurrently. A failing call may thus leave some slots' parts applied and others
// not; it is reported failed, and writing the same pairs again is safe. Readers may
// see a sharded batch part applied.
//
// Reading: get_all reads the shards concurrently (each an HSCAN on its node's async
// connections); scan visits them one after another, a page at a time; count sums HLEN.
// collections() lists, over every master, the collections of the store's layout:
// LlamaIndex-layout hashes (shard hashes left out) for shards=0, sharded collections
// that hold at least one entry for shards=N.
//
// Thread safety: every method may be called from many threads at once; the slot map is
// swapped under a lock. Destroying the store waits for its pending operations.
#ifndef KVDEX_REDIS_CLUSTER_KVSTORE_H_
#define KVDEX_REDIS_CLUSTER_KVSTORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvdex/kvstore.h"
#include "kvdex/redis_kvstore.h"

namespace kvdex {

class RedisClusterKVStore final : public BaseKVStore {
 public:
  // Connects lazily (the first call reads the slot map). Throws Error(kInvalidArgument)
  // for options out of range.
  explicit RedisClusterKVStore(const RedisOptions& options);
  ~RedisClusterKVStore() override;

  void write(const WriteBatch& batch) override;
  void put_all_encoded(std::span<const EncodedKeyValue> pairs,
                       std::string_view collection = kDefaultCollection,
                       int batch_size = kDefaultBatchSize) override;
  std::optional<EncodedValue> get_encoded(
      std::string_view key, std::string_view collection = kDefaultCollection) override;
  std::vector<EncodedKeyValue> get_all_encoded(
      std::string_view collection = kDefaultCollection) override;
  void scan(std::string_view collection, const ScanVisitor& visit) override;
  bool remove(std::string_view key, std::string_view collection = kDefaultCollection) override;
  std::uint64_t count(std::string_view collection = kDefaultCollection) override;
  std::vector<std::string> collections() override;

  Future<void> aput_all_encoded(std::vector<EncodedKeyValue> pairs,
                                std::string collection = std::string(kDefaultCollection),
                                int batch_size = kDefaultBatchSize) override;
  Future<std::optional<EncodedValue>> aget_encoded(
      std::string key, std::string collection = std::string(kDefaultCollection)) override;
  Future<std::vector<EncodedKeyValue>> aget_all_encoded(
      std::string collection = std::string(kDefaultCollection)) override;

  const RedisOptions& options() const noexcept;
  // "host:port" of every master in the current slot map (reads it if not read yet).
  std::vector<std::string> masters();
  // How many times the slot map was read (for tests and monitoring).
  std::uint64_t slot_map_refreshes() const noexcept;
  // Connections opened so far, every node's together.
  std::uint64_t connections_opened() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace kvdex

#endif  // KVDEX_REDIS_CLUSTER_KVSTORE_H_
