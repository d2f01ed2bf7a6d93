// BaseKVStore — the contract of LlamaIndex's BaseKVStore in C++.
//
// A store maps (collection, key) to a JSON object. Collections are named by strings
// (LlamaIndex uses "data", "docstore/data", "docstore/metadata", "index_store/data",
// ...). Every operation takes the collection last, defaulting to "data".
//
//   auto store = std::make_unique<kvdex::SimpleKVStore>();
//   store->put("node-1", {{"text", "hello"}});
//   std::optional<kvdex::Value> v = store->get("node-1");       // nullopt if absent
//   bool was_there = store->remove("node-1");                   // Python: delete
//   store->put_all(pairs, "docstore/data", /*batch_size=*/1000);
//   kvdex::Value later = co_await store->aget("node-1");        // or .get()
//
// Two layers:
//   - the typed API (put, get, ...) takes and returns kvdex::Value and is the same
//     for every store;
//   - the encoded API (write, get_encoded, ...) moves EncodedValue, the canonical
//     JSON text every store keeps. Backends implement it; the Python package and
//     the CLI use it to skip building a Value they would only convert again.
//
// Semantics (DESIGN.md section 2):
//   - put stores a copy; a value that is not a JSON object is Error(kInvalidArgument).
//   - get returns an independent copy, or std::nullopt; absence is never an error.
//   - get_all returns every key -> value of a collection (in insertion order for the
//     in-memory stores); an unknown collection gives an empty result.
//   - remove returns whether the key was there.
//   - put_all writes in batches of batch_size pairs; each batch is applied
//     atomically (see WriteBatch). Every kvdex store supports every batch_size >= 1;
//     batch_size < 1 is Error(kInvalidArgument). All values are validated before
//     anything is written, so a put_all rejected for a bad value changes nothing.
//   - a call that throws leaves what was stored before it unchanged (for put_all:
//     the batches committed before the failing one stay committed).
//
// Asynchronous twins: aput, aput_all, aget, aget_all, aremove return a Future (see
// future.h) and never block the caller on I/O. A backend with an asynchronous engine
// overrides the *_async virtuals; the defaults run the synchronous operation on
// executor().
//
// Thread safety: every kvdex store is safe for concurrent use by many threads
// without external locking, and no reader ever sees a put, remove or batch half
// applied. Callbacks passed to scan() must not call back into the same store.
//
// Errors: kvdex::Error (error.h) only. Bad arguments are kInvalidArgument, failing
// I/O kIOError, unreachable servers kUnavailable, malformed stored data kCorruption.
#ifndef KVDEX_KVSTORE_H_
#define KVDEX_KVSTORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kvdex/future.h"
#include "kvdex/value.h"
#include "kvdex/write_batch.h"

namespace kvdex {

inline constexpr std::string_view kDefaultCollection = "data";
inline constexpr int kDefaultBatchSize = 1;

using KeyValue = std::pair<std::string, Value>;
using EncodedKeyValue = std::pair<std::string, EncodedValue>;

// Called once per entry by scan(); the views are valid only during the call.
using ScanVisitor = std::function<void(std::string_view key, std::string_view value_text)>;

class BaseKVStore {
 public:
  BaseKVStore() = default;
  BaseKVStore(const BaseKVStore&) = delete;
  BaseKVStore& operator=(const BaseKVStore&) = delete;
  virtual ~BaseKVStore() = default;

  // ---- Typed API -----------------------------------------------------------------

  void put(std::string_view key, const Value& value,
           std::string_view collection = kDefaultCollection);
  void put_all(std::span<const KeyValue> pairs, std::string_view collection = kDefaultCollection,
               int batch_size = kDefaultBatchSize);
  std::optional<Value> get(std::string_view key, std::string_view collection = kDefaultCollection);
  std::vector<KeyValue> get_all(std::string_view collection = kDefaultCollection);
  // LlamaIndex's delete (a C++ keyword).
  virtual bool remove(std::string_view key, std::string_view collection = kDefaultCollection) = 0;

  Future<void> aput(std::string key, Value value,
                    std::string collection = std::string(kDefaultCollection));
  Future<void> aput_all(std::vector<KeyValue> pairs,
                        std::string collection = std::string(kDefaultCollection),
                        int batch_size = kDefaultBatchSize);
  Future<std::optional<Value>> aget(std::string key,
                                    std::string collection = std::string(kDefaultCollection));
  Future<std::vector<KeyValue>> aget_all(std::string collection = std::string(kDefaultCollection));
  Future<bool> aremove(std::string key, std::string collection = std::string(kDefaultCollection));

  // ---- Encoded API ---------------------------------------------------------------

  // Applies every operation of `batch`, atomically.
  virtual void write(const WriteBatch& batch) = 0;

  virtual std::optional<EncodedValue> get_encoded(
      std::string_view key, std::string_view collection = kDefaultCollection) = 0;

  // Every entry of `collection`, in the store's order. The default collects scan().
  virtual std::vector<EncodedKeyValue> get_all_encoded(
      std::string_view collection = kDefaultCollection);

  // Streams every entry of `collection` to `visit` without materializing the whole
  // collection where the engine allows (LMDB cursor, Redis HSCAN). Use it to export
  // stores larger than memory.
  virtual void scan(std::string_view collection, const ScanVisitor& visit) = 0;

  // The names of the collections the store holds, in creation order where the
  // engine keeps one.
  virtual std::vector<std::string> collections() = 0;

  // The number of entries in `collection` (0 for an unknown one; never creates it).
  // The default counts through scan(); stores that know their size override it.
  virtual std::uint64_t count(std::string_view collection = kDefaultCollection);

  // Makes everything written so far durable where that is not already so (a store
  // bound to a JSON file rewrites it; LMDB in a no-sync mode syncs). Default: no-op.
  virtual void flush() {}

  void put_encoded(std::string_view key, EncodedValue value,
                   std::string_view collection = kDefaultCollection);
  void put_all_encoded(std::span<const EncodedKeyValue> pairs,
                       std::string_view collection = kDefaultCollection,
                       int batch_size = kDefaultBatchSize);

  virtual Future<void> write_async(WriteBatch batch);
  // Batches are committed in order; the first failure completes the future with
  // its error and the batches after it are not written.
  virtual Future<void> put_all_encoded_async(std::vector<EncodedKeyValue> pairs,
                                             std::string collection, int batch_size);
  virtual Future<std::optional<EncodedValue>> get_encoded_async(std::string key,
                                                                std::string collection);
  virtual Future<std::vector<EncodedKeyValue>> get_all_encoded_async(std::string collection);
  virtual Future<bool> remove_async(std::string key, std::string collection);

  // Where the default *_async implementations run. Default: default_executor().
  virtual Executor& executor();

 protected:
  // Splits pairs into WriteBatches of batch_size (validated here).
  static std::vector<WriteBatch> make_batches(std::span<const EncodedKeyValue> pairs,
                                              std::string_view collection, int batch_size);
};

// Throws Error(kInvalidArgument) unless batch_size >= 1.
void check_batch_size(int batch_size);

}  // namespace kvdex

#endif  // KVDEX_KVSTORE_H_
