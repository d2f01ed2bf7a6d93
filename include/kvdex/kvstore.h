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
// Semantics (LlamaIndex's BaseKVStore, made precise):
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
// Asynchronous twins: every operation has one, named with an `a` prefix as in
// LlamaIndex (aput, aput_all, aget, aget_all, aremove; aget_encoded, ...). Each
// returns a Future (see future.h) and never blocks the caller on I/O. Values are
// validated on the caller's thread, so a bad value throws at the call, not later.
//
// Writing a backend. Required: write, get_encoded, remove, scan, collections.
// Optional, where the engine does better than the default: get_all_encoded, count,
// flush, put_all_encoded (a server backend pipelines the batches), and the
// asynchronous layer, which is the five virtuals awrite,
// aput_all_encoded, aget_encoded, aget_all_encoded and aremove. The typed twins
// (aput, aput_all, aget, aget_all) and aput_encoded are built on those five and are
// not virtual, so a backend overrides each operation in one place. The defaults run
// the synchronous operation on executor(); a backend with an asynchronous engine
// (RedisKVStore on hiredis, PostgresKVStore on libpq) completes the futures from its
// own I/O threads.
//
// Lifetime of asynchronous operations: destroying a store waits for its pending
// operations. An operation started by a default a* implementation uses the store
// until its work is done, and the store's destructor blocks until every such
// operation has stopped using it; the futures themselves outlive the store and stay
// valid (they are completed, with a value or an error, never abandoned). A Future's
// callbacks run after the operation stopped using the store, so a callback may
// destroy the store. Backends that complete futures on their own event-loop threads
// (Redis, PostgreSQL) narrow this: such a callback may destroy the store only when no
// other operation of it is pending (see their headers).
//
// The wait must come first in the destructor of the most-derived class: each base
// destructor switches the object's vtable to its own, so a pending operation still
// calling a virtual (write, get_encoded, ...) after that would reach the base's
// version, or race with the switch. Every kvdex store class calls
// wait_for_pending_operations() first in its destructor; so must every class that
// derives from a store (a backend, or a subclass of SimpleKVStore), even one with no
// state of its own. A backend with its own engine holds a PendingOperation for each
// operation it starts and releases it when the operation no longer touches the store.
//
// Thread safety: every kvdex store is safe for concurrent use by many threads
// without external locking, and no reader ever sees a put, remove or batch half
// applied. Callbacks passed to scan() must not call back into the same store.
//
// Errors: kvdex::Error (error.h) only, with the most specific code of its table: bad
// arguments are kInvalidArgument, failing I/O kIOError (a full disk
// kResourceExhausted), unreachable servers kUnavailable, malformed stored data
// kCorruption. An asynchronous operation reports its error through its Future.
#ifndef KVDEX_KVSTORE_H_
#define KVDEX_KVSTORE_H_

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
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
  BaseKVStore();
  BaseKVStore(const BaseKVStore&) = delete;
  BaseKVStore& operator=(const BaseKVStore&) = delete;
  // Waits for pending asynchronous operations (see the file comment).
  virtual ~BaseKVStore();

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
  virtual Future<bool> aremove(std::string key,
                               std::string collection = std::string(kDefaultCollection));

  // ---- Encoded API ---------------------------------------------------------------

  // Applies every operation of `batch`, atomically.
  virtual void write(const WriteBatch& batch) = 0;

  virtual std::optional<EncodedValue> get_encoded(
      std::string_view key, std::string_view collection = kDefaultCollection) = 0;

  // Every entry of `collection`, in the store's order. The default collects scan().
  virtual std::vector<EncodedKeyValue> get_all_encoded(
      std::string_view collection = kDefaultCollection);

  // Streams every entry of `collection` to `visit` without materializing the whole
  // collection where the engine allows (an LMDB cursor, HSCAN pages in Redis,
  // single-row mode in PostgreSQL).
  // Use it to export stores larger than memory.
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

  // Ends the use of the store, reporting what a destructor cannot: close() flushes
  // and throws if that fails (the store then stays open, its writes kept, so close()
  // may be retried). A store with state to release refuses every later call with
  // Error(kFailedPrecondition) (JsonFileStore; the Python classes do so for every
  // store); close() again does nothing. Default: flush(). A store destroyed
  // without close() still flushes, but a failure there is lost: call close()
  // whenever a write must not be lost silently.
  virtual void close() { flush(); }

  void put_encoded(std::string_view key, EncodedValue value,
                   std::string_view collection = kDefaultCollection);
  // Default: write() per batch, in order. Virtual so that a server backend can
  // pipeline the batches (each still applied atomically, in order).
  virtual void put_all_encoded(std::span<const EncodedKeyValue> pairs,
                               std::string_view collection = kDefaultCollection,
                               int batch_size = kDefaultBatchSize);

  // The asynchronous encoded layer: what a backend with an asynchronous engine
  // overrides (see the file comment).
  virtual Future<void> awrite(WriteBatch batch);
  // Batches are committed in order; the first failure completes the future with
  // its error and the batches after it are not written. batch_size < 1 throws
  // Error(kInvalidArgument) at the call.
  virtual Future<void> aput_all_encoded(std::vector<EncodedKeyValue> pairs,
                                        std::string collection = std::string(kDefaultCollection),
                                        int batch_size = kDefaultBatchSize);
  virtual Future<std::optional<EncodedValue>> aget_encoded(
      std::string key, std::string collection = std::string(kDefaultCollection));
  virtual Future<std::vector<EncodedKeyValue>> aget_all_encoded(
      std::string collection = std::string(kDefaultCollection));

  Future<void> aput_encoded(std::string key, EncodedValue value,
                            std::string collection = std::string(kDefaultCollection));

  // Where the default *_async implementations run. Default: default_executor().
  virtual Executor& executor();

 protected:
  class PendingOperations;

  // Marks one asynchronous operation as using the store: the store's destructor
  // waits until every PendingOperation has been released (or destroyed). Move-only.
  class PendingOperation {
   public:
    PendingOperation() = default;
    PendingOperation(PendingOperation&& other) noexcept;
    PendingOperation& operator=(PendingOperation&& other) noexcept;
    PendingOperation(const PendingOperation&) = delete;
    PendingOperation& operator=(const PendingOperation&) = delete;
    ~PendingOperation() { release(); }

    // Ends the operation's use of the store; later calls do nothing.
    void release() noexcept;

   private:
    friend class BaseKVStore;
    explicit PendingOperation(std::shared_ptr<PendingOperations> pending) noexcept
        : pending_(std::move(pending)) {}
    std::shared_ptr<PendingOperations> pending_;
  };

  PendingOperation begin_pending_operation();

  // Blocks until every pending operation has been released. The destructor of every
  // class deriving from BaseKVStore calls it first, before any base destructor runs
  // (see the file comment).
  void wait_for_pending_operations() noexcept;

  // Runs `operation` (which may use *this) on executor() as one pending operation,
  // returning its result or exception as a Future. The operation stops counting as
  // pending before the future completes, so the future's callbacks may destroy the
  // store.
  template <class Fn>
  auto run_pending(Fn operation) -> Future<std::invoke_result_t<Fn&>>;

  // Splits pairs into WriteBatches of batch_size (validated here).
  static std::vector<WriteBatch> make_batches(std::span<const EncodedKeyValue> pairs,
                                              std::string_view collection, int batch_size);

 private:
  std::shared_ptr<PendingOperations> pending_;
};

template <class Fn>
auto BaseKVStore::run_pending(Fn operation) -> Future<std::invoke_result_t<Fn&>> {
  using R = std::invoke_result_t<Fn&>;
  auto promise = std::make_shared<Promise<R>>();
  Future<R> future = promise->future();
  // Executor tasks are std::function, which must be copyable: share the token.
  auto token = std::make_shared<PendingOperation>(begin_pending_operation());
  executor().submit([promise, token, operation = std::move(operation)]() mutable {
    std::exception_ptr error;
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> result;
    try {
      if constexpr (std::is_void_v<R>) {
        operation();
        result.emplace(true);
      } else {
        result.emplace(operation());
      }
    } catch (...) {
      error = std::current_exception();
    }
    token->release();  // *this is not used past this point
    if (error) {
      promise->set_error(std::move(error));
    } else if constexpr (std::is_void_v<R>) {
      promise->set_value();
    } else {
      promise->set_value(std::move(*result));
    }
  });
  return future;
}

// Throws Error(kInvalidArgument) unless batch_size >= 1.
void check_batch_size(int batch_size);

}  // namespace kvdex

#endif  // KVDEX_KVSTORE_H_
