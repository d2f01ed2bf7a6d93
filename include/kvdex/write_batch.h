// WriteBatch — a list of puts and removes applied as one unit.
//
//   kvdex::WriteBatch batch;
//   batch.put("docstore/data", "node-1", kvdex::EncodedValue::encode(node));
//   batch.put("docstore/metadata", "node-1", kvdex::EncodedValue::encode(meta));
//   batch.remove("docstore/data", "old-node");
//   store.write(batch);   // all or nothing where the engine allows it
//
// Operations apply in the order they were added, so a later put of the same key
// wins. Every kvdex store applies a batch atomically: readers see none of it or all
// of it, and a failed write leaves the store as it was (one LMDB transaction, one
// lock hold in memory, a MULTI/EXEC in Redis, a transaction in PostgreSQL). One
// exception, opted into: Redis Cluster's sharded layout (?shards=N) spreads a
// collection over hash slots, and Redis transactions cannot span slots, so there
// each shard's part of a batch is atomic (docs/redis-cluster.md).
//
// Keys and collection names are text, as LlamaIndex's are (Python str): put() throws
// Error(kInvalidArgument), naming the name with its bad bytes shown as \xHH, if
// either is not UTF-8 (a lone surrogate in its 3-byte WTF-8 form is allowed, as
// EncodedValue allows it). remove() takes any bytes, so a name written by an older
// kvdex, or damaged on disk, can still be removed.
//
// Thread safety: a WriteBatch is a plain value; do not mutate one while another
// thread reads it.
#ifndef KVDEX_WRITE_BATCH_H_
#define KVDEX_WRITE_BATCH_H_

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvdex/value.h"

namespace kvdex {

namespace detail {
// Throws Error(kInvalidArgument) if `name` (a key or collection name, as `what` says)
// is not WTF-8. Only the non-ASCII bytes cost more than a word-wide test.
void check_name(std::string_view name, std::string_view what);
}  // namespace detail

class WriteBatch {
 public:
  struct Op {
    std::size_t collection;  // index into collections()
    std::string key;
    std::optional<EncodedValue> value;  // nullopt means remove
  };

  void put(std::string_view collection, std::string key, EncodedValue value) {
    detail::check_name(key, "key");
    ops_.push_back(Op{collection_index(collection, true), std::move(key), std::move(value)});
  }

  void remove(std::string_view collection, std::string key) {
    ops_.push_back(Op{collection_index(collection, false), std::move(key), std::nullopt});
  }

  void reserve(std::size_t n) { ops_.reserve(n); }
  void clear() {
    ops_.clear();
    collections_.clear();
    checked_.clear();
  }

  bool empty() const noexcept { return ops_.empty(); }
  std::size_t size() const noexcept { return ops_.size(); }
  std::span<const Op> ops() const noexcept { return ops_; }
  std::span<const std::string> collections() const noexcept { return collections_; }
  const std::string& collection_of(const Op& op) const { return collections_[op.collection]; }

 private:
  std::size_t collection_index(std::string_view collection, bool for_put) {
    // Batches name few collections (put_all names one), so a linear search wins.
    for (std::size_t i = 0; i < collections_.size(); ++i) {
      if (collections_[i] == collection) {
        if (for_put && !checked_[i]) {
          detail::check_name(collection, "collection name");
          checked_[i] = true;
        }
        return i;
      }
    }
    if (for_put) detail::check_name(collection, "collection name");
    collections_.emplace_back(collection);
    checked_.push_back(for_put);
    return collections_.size() - 1;
  }

  std::vector<std::string> collections_;
  std::vector<bool> checked_;  // collections_[i] passed check_name
  std::vector<Op> ops_;
};

}  // namespace kvdex

#endif  // KVDEX_WRITE_BATCH_H_
