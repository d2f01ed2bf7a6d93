// In-memory stores: BaseInMemoryKVStore and MutableMappingKVStore<Mapping>.
//
// BaseInMemoryKVStore adds LlamaIndex's persist(): the whole store written to one
// JSON file. Each concrete class also offers a static from_persist_path().
//
// MutableMappingKVStore<Mapping> keeps one Mapping (created by a factory) per
// collection, as LlamaIndex's MutableMappingKVStore does, with its details:
//   - get, get_all and remove of an unknown collection create it (empty), so it
//     appears in collections() and in a persisted file;
//   - values are stored as EncodedValue (a copy is a reference-count increment), so
//     get returns an independent copy and the caller can never mutate what is stored;
//   - collections keep creation order; keys keep the Mapping's order (insertion
//     order for InsertionOrderedMap, unspecified for std::unordered_map).
//   - persist() is NotSupported here, as in LlamaIndex ("use SimpleKVStore").
//
// Thread safety: all operations may run concurrently from many threads. One
// reader/writer lock guards the store: reads share it, a put, remove or whole batch
// holds it exclusively, so no reader sees a batch half applied. get_all and scan
// copy the collection's entries under the lock (reference counts, not text) and do
// everything else outside it.
//
// Errors: Error(kInvalidArgument) for values that are not objects (typed API) and
// for batch_size < 1; Error(kNotSupported) from persist().
#ifndef KVDEX_IN_MEMORY_H_
#define KVDEX_IN_MEMORY_H_

#include <concepts>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvdex/error.h"
#include "kvdex/filesystem.h"
#include "kvdex/insertion_ordered_map.h"
#include "kvdex/kvstore.h"
#include "kvdex/thread_annotations.h"

namespace kvdex {

class BaseInMemoryKVStore : public BaseKVStore {
 public:
  // Writes the whole store as one JSON file {collection: {key: value}}, atomically
  // (see write_file_atomically), creating parent directories. `fs` defaults to the
  // local file system.
  virtual void persist(const std::string& persist_path, FileSystem* fs = nullptr) = 0;
};

// What a collection's mapping must offer: string keys, EncodedValue values, lookup,
// insert-or-overwrite, erase, size and iteration over (key, value) pairs.
// InsertionOrderedMap<EncodedValue> and std::unordered_map<std::string, EncodedValue>
// (or std::map) both satisfy it.
template <class M>
concept KeyValueMapping = std::same_as<typename M::key_type, std::string> &&
    std::same_as<typename M::mapped_type, EncodedValue> && std::move_constructible<M> &&
    requires(M& m, const M& cm, const std::string& key, EncodedValue value) {
  { cm.find(key) == cm.end() } -> std::convertible_to<bool>;
  { cm.find(key)->second } -> std::convertible_to<const EncodedValue&>;
  m.insert_or_assign(key, std::move(value));
  { m.erase(key) } -> std::convertible_to<std::size_t>;
  { cm.size() } -> std::convertible_to<std::size_t>;
  { cm.begin()->first } -> std::convertible_to<const std::string&>;
  { cm.begin()->second } -> std::convertible_to<const EncodedValue&>;
};

// All collections of an in-memory store, as persisted: in order, each with its
// entries in order.
using StoreSnapshot = std::vector<std::pair<std::string, std::vector<EncodedKeyValue>>>;

template <KeyValueMapping Mapping>
class MutableMappingKVStore : public BaseInMemoryKVStore {
 public:
  using MappingFactory = std::function<Mapping()>;

  explicit MutableMappingKVStore(MappingFactory mapping_factory = [] { return Mapping(); })
      : mapping_factory_(std::move(mapping_factory)) {}

  ~MutableMappingKVStore() override { wait_for_pending_operations(); }

  void write(const WriteBatch& batch) override {
    WriterLock lock(mu_);
    Mapping* mapping = nullptr;
    std::size_t mapping_collection = static_cast<std::size_t>(-1);
    for (const WriteBatch::Op& op : batch.ops()) {
      if (op.collection != mapping_collection) {
        mapping = &collection_locked(batch.collection_of(op));
        mapping_collection = op.collection;
      }
      if (op.value) {
        mapping->insert_or_assign(op.key, *op.value);
      } else {
        mapping->erase(op.key);
      }
    }
  }

  std::optional<EncodedValue> get_encoded(
      std::string_view key, std::string_view collection = kDefaultCollection) override {
    {
      ReaderLock lock(mu_);
      if (const std::unique_ptr<Mapping>* mapping = collections_.get(collection)) {
        return lookup(**mapping, key);
      }
    }
    WriterLock lock(mu_);
    return lookup(collection_locked(collection), key);
  }

  bool remove(std::string_view key, std::string_view collection = kDefaultCollection) override {
    WriterLock lock(mu_);
    Mapping& mapping = collection_locked(collection);
    if constexpr (requires { mapping.erase(key); }) {
      return mapping.erase(key) != 0;
    } else {
      return mapping.erase(std::string(key)) != 0;
    }
  }

  std::vector<EncodedKeyValue> get_all_encoded(
      std::string_view collection = kDefaultCollection) override {
    {
      ReaderLock lock(mu_);
      if (const std::unique_ptr<Mapping>* mapping = collections_.get(collection)) {
        return copy_entries(**mapping);
      }
    }
    WriterLock lock(mu_);
    return copy_entries(collection_locked(collection));
  }

  void scan(std::string_view collection, const ScanVisitor& visit) override {
    for (const auto& [key, value] : get_all_encoded(collection)) visit(key, value.text());
  }

  std::vector<std::string> collections() override {
    ReaderLock lock(mu_);
    std::vector<std::string> names;
    names.reserve(collections_.size());
    for (const auto& entry : collections_) names.push_back(entry.first);
    return names;
  }

  std::uint64_t count(std::string_view collection = kDefaultCollection) override {
    ReaderLock lock(mu_);
    const std::unique_ptr<Mapping>* mapping = collections_.get(collection);
    return mapping ? (*mapping)->size() : 0;
  }

  void persist(const std::string&, FileSystem* = nullptr) override {
    throw Error(
        ErrorCode::kNotSupported,
        "Use subclasses of MutableMappingKVStore (such as SimpleKVStore) to call this method");
  }

  // Replaces this store's contents with `other`'s (of the same mapping type),
  // leaving `other` empty; readers see the old contents or the new, never a mix.
  // JsonFileStore uses it to adopt a file that another process rewrote.
  void take_contents(MutableMappingKVStore& other) {
    InsertionOrderedMap<std::unique_ptr<Mapping>> taken;
    {
      WriterLock lock(other.mu_);
      taken = std::move(other.collections_);
      other.collections_ = InsertionOrderedMap<std::unique_ptr<Mapping>>();
    }
    replace_contents(std::move(taken));
  }

  // Every collection and its entries, consistent as of one instant.
  StoreSnapshot snapshot() const {
    ReaderLock lock(mu_);
    StoreSnapshot out;
    out.reserve(collections_.size());
    for (const auto& [name, mapping] : collections_) out.emplace_back(name, copy_entries(*mapping));
    return out;
  }

 protected:
  // Replaces the whole contents (used by loaders).
  void replace_contents(InsertionOrderedMap<std::unique_ptr<Mapping>> collections) {
    WriterLock lock(mu_);
    collections_ = std::move(collections);
  }

 private:
  static std::optional<EncodedValue> lookup(const Mapping& mapping, std::string_view key) {
    auto it = [&] {
      if constexpr (requires { mapping.find(key); }) {
        return mapping.find(key);
      } else {
        return mapping.find(std::string(key));
      }
    }();
    if (it == mapping.end()) return std::nullopt;
    return it->second;
  }

  static std::vector<EncodedKeyValue> copy_entries(const Mapping& mapping) {
    std::vector<EncodedKeyValue> out;
    out.reserve(mapping.size());
    for (const auto& [key, value] : mapping) out.emplace_back(key, value);
    return out;
  }

  // The collection's mapping, created if missing.
  Mapping& collection_locked(std::string_view collection) KVDEX_REQUIRES(mu_) {
    if (const std::unique_ptr<Mapping>* mapping = collections_.get(collection)) return **mapping;
    collections_.insert_or_assign(collection, std::make_unique<Mapping>(mapping_factory_()));
    return **collections_.get(collection);
  }

  mutable SharedMutex mu_;
  MappingFactory mapping_factory_;
  InsertionOrderedMap<std::unique_ptr<Mapping>> collections_ KVDEX_GUARDED_BY(mu_);
};

}  // namespace kvdex

#endif  // KVDEX_IN_MEMORY_H_
