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
// lock hold in memory; a MULTI/EXEC and a transaction for the planned Redis and
// PostgreSQL backends).
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

class WriteBatch {
 public:
  struct Op {
    std::size_t collection;  // index into collections()
    std::string key;
    std::optional<EncodedValue> value;  // nullopt means remove
  };

  void put(std::string_view collection, std::string key, EncodedValue value) {
    ops_.push_back(Op{collection_index(collection), std::move(key), std::move(value)});
  }

  void remove(std::string_view collection, std::string key) {
    ops_.push_back(Op{collection_index(collection), std::move(key), std::nullopt});
  }

  void reserve(std::size_t n) { ops_.reserve(n); }
  void clear() {
    ops_.clear();
    collections_.clear();
  }

  bool empty() const noexcept { return ops_.empty(); }
  std::size_t size() const noexcept { return ops_.size(); }
  std::span<const Op> ops() const noexcept { return ops_; }
  std::span<const std::string> collections() const noexcept { return collections_; }
  const std::string& collection_of(const Op& op) const { return collections_[op.collection]; }

 private:
  std::size_t collection_index(std::string_view collection) {
    // Batches name few collections (put_all names one), so a linear search wins.
    for (std::size_t i = 0; i < collections_.size(); ++i) {
      if (collections_[i] == collection) return i;
    }
    collections_.emplace_back(collection);
    return collections_.size() - 1;
  }

  std::vector<std::string> collections_;
  std::vector<Op> ops_;
};

}  // namespace kvdex

#endif  // KVDEX_WRITE_BATCH_H_
