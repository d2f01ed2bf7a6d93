// RedisKVStore — LlamaIndex's Redis layout from C++ (URI "redis://...").
//
//   auto store = kvdex::open("redis://127.0.0.1:6379/0?timeout_ms=2000&pool=8");
//   kvdex::RedisKVStore store({.host = "127.0.0.1", .port = 6379, .db = 0});
//   store.put_all(pairs, "docstore/data", /*batch_size=*/1000);  // one MULTI/EXEC a batch
//
// URI: redis://[user[:password]@]host[:port][/db][?option=value&...] (user and
// password percent-decoded; port 6379 and db 0 by default). Options: timeout_ms
// (connect and command timeout), connect_timeout_ms, command_timeout_ms, pool (sync
// connections), async_connections, retries, backoff_ms, scan_count, cluster (see
// below). rediss:// (TLS) is refused with Error(kNotSupported); an unknown option is
// Error(kInvalidArgument) naming it.
//
// Layout: LlamaIndex's RedisKVStore exactly (llama-index-storage-kvstore-redis), so a
// Python LlamaIndex app and a C++ service share one store: one Redis hash per
// collection, whose key is the collection string itself; field = key; value = the
// exact text Python's json.dumps writes (EncodedValue::text()). Values written by
// another client in another JSON spelling are read back canonicalized; a field that
// is not JSON object text is Error(kCorruption) naming the collection and key.
// Order: a Redis hash keeps no insertion order; get_all/scan return HSCAN's order.
//
// Commands: get = HGET, remove = HDEL, count = HLEN; write(batch) sends each run of
// consecutive puts (removes) of one collection as one HSET (HDEL) and wraps the batch
// in MULTI/EXEC when it needs more than one command, so a batch is applied whole or
// not at all (a batch over several collections first checks, under WATCH, that each
// is a hash or absent: Redis would apply the rest of an EXEC around a WRONGTYPE); put_all pipelines
// its batches (a window of up to 8 MiB of commands is in flight). get_all and scan read the hash in
// HSCAN pages of scan_count fields, so scan never holds a whole collection; if the hash is written
// during the scan, Redis may return a field twice (scan then visits it twice; get_all keeps one).
// collections(): the layout keeps no registry, so it lists every key of type hash in
// the selected database (SCAN ... TYPE hash), sorted, including hashes that other
// applications keep there. Give kvdex its own database (/db) to keep that list clean.
//
// Connections: synchronous calls take a connection from a bounded pool (`pool`, 8 by
// default; a caller waits when all are busy), opened lazily: connect, AUTH (user and
// password, or password only), SELECT db. Asynchronous calls (aget, aput_all, ...)
// are pipelined on `async_connections` (2) non-blocking hiredis connections per
// store, driven by a process-wide set of two event-loop threads (epoll); their
// Futures complete on those threads, from the reply callbacks. No thread per call.
//
// Failures: a server that cannot be reached or goes away is Error(kUnavailable)
// naming host:port. A connection that breaks is dropped and every idle one with it;
// the next call connects again (retries connection attempts `retries` times, waiting
// backoff_ms, doubled each time), so a store outlives a server restart. A synchronous
// call that failed on a connection that had been idle is retried once on a new one.
// Timeouts (connect, command) are Error(kDeadlineExceeded). Error replies map to codes:
// NOAUTH/WRONGPASS/NOPERM kPermissionDenied, OOM kResourceExhausted, WRONGTYPE (the
// collection name is a Redis key of another type) kFailedPrecondition, LOADING and
// MASTERDOWN kUnavailable, the rest kInternal with the server's text. A value, key or
// collection name longer than the server's proto-max-bulk-len (read with CONFIG GET
// when the first connection opens) is refused before anything of its batch is sent:
// Error(kInvalidArgument) naming the key and the limit.
// A write whose reply was lost with the connection may have been applied; it is
// reported as failed (never the reverse). A pipelined put_all that fails stops at the
// failing batch, but batches already in flight in the same window may have been
// applied (Redis executes what it has received).
//
// Redis Cluster and kvdex's sharded layout: cluster=1 or shards=N make kvdex::open
// return a kvdex::RedisClusterKVStore (kvdex/redis_cluster_kvstore.h); constructing a
// RedisKVStore with either is Error(kInvalidArgument).
//
// Thread safety: every method may be called from many threads at once. scan()'s
// callback must not call back into the store. Destroying the store waits for its
// pending asynchronous operations. A future's callback runs on an event-loop thread,
// which may be the one that must complete the store's other pending operations: it
// must not destroy the store while others are pending (the destructor would wait for
// work only that thread can do); hand the destruction to another thread.
#ifndef KVDEX_REDIS_KVSTORE_H_
#define KVDEX_REDIS_KVSTORE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvdex/kvstore.h"

namespace kvdex {

// Options of a RedisKVStore; designated initializers welcome.
struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;      // with a password: AUTH user password (Redis 6 ACL)
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECT db (0 to 2^31-1; the server's `databases` bounds it)
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{10000};
  int pool_size = 8;          // synchronous connections at most, 1 to 1024
  int async_connections = 2;  // connections of the asynchronous layer, 1 to 64
  int retries = 3;            // extra connection attempts after a failed one, 0 to 100
  std::chrono::milliseconds retry_backoff{50};  // first wait between attempts; doubles
  int scan_count = 1000;                        // HSCAN/SCAN COUNT hint, 1 to 1,000,000
  bool cluster = false;  // Redis Cluster: route by key slot (RedisClusterKVStore)
  // 0: LlamaIndex's layout. N (1..1024): kvdex's sharded layout, each collection this
  // store creates spread over N hashes (RedisClusterKVStore; docs/redis-cluster.md).
  int shards = 0;
  bool read_only = false;  // writes are Error(kNotSupported) (kvdex::open's read_only)
};

// Parses "redis://..." into options (see the file comment). Throws
// Error(kInvalidArgument) for a malformed URI or option, Error(kNotSupported) for
// rediss://.
RedisOptions parse_redis_uri(std::string_view uri);

class RedisKVStore final : public BaseKVStore {
 public:
  // Connects lazily: constructing never talks to the server, so it does not throw
  // for an unreachable one (the first call does). Throws Error(kInvalidArgument) for
  // options out of range and for cluster or shards (see above).
  explicit RedisKVStore(const RedisOptions& options = {});
  ~RedisKVStore() override;

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
  // Waits for pending asynchronous operations, closes every connection and ends the
  // store's use: every later call throws Error(kFailedPrecondition); close() again
  // does nothing. (Writes are acknowledged by the server: there is nothing to flush.)
  void close() override;

  Future<void> awrite(WriteBatch batch) override;
  Future<void> aput_all_encoded(std::vector<EncodedKeyValue> pairs,
                                std::string collection = std::string(kDefaultCollection),
                                int batch_size = kDefaultBatchSize) override;
  Future<std::optional<EncodedValue>> aget_encoded(
      std::string key, std::string collection = std::string(kDefaultCollection)) override;
  Future<std::vector<EncodedKeyValue>> aget_all_encoded(
      std::string collection = std::string(kDefaultCollection)) override;
  Future<bool> aremove(std::string key,
                       std::string collection = std::string(kDefaultCollection)) override;

  const RedisOptions& options() const noexcept;
  // "host:port", as error messages name the server.
  const std::string& address() const noexcept;

  // Connections this store has opened so far (sync pool and async layer), for tests
  // and monitoring.
  std::uint64_t connections_opened() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace kvdex

#endif  // KVDEX_REDIS_KVSTORE_H_
