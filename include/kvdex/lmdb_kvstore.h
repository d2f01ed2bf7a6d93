// LmdbKVStore — the durable embedded store, on LMDB (URI "lmdb:PATH").
//
//   kvdex::LmdbKVStore store("/var/lib/app/store");               // a directory
//   kvdex::LmdbKVStore fast("/tmp/cache", {.durability = kvdex::LmdbDurability::kNoMetaSync});
//   store.put_all(pairs, "docstore/data", /*batch_size=*/1000);   // one transaction a batch
//   std::optional<kvdex::Value> v = store.get("node-1", "docstore/data");
//
// PATH is a directory holding LMDB's data.mdb and lock.mdb (created, with its parents,
// when create_if_missing is set). Layout, in short (docs/lmdb.md has the details;
// on-disk format 4):
//   - one LMDB database, "kvdex:data", holds every collection: the LMDB key is the
//     collection's 64-bit id followed by the key, the record the entry's 64-bit
//     sequence number (its place in insertion order), then the value's EncodedValue
//     text, byte for byte; a catalogue database maps collection names (any string, of
//     any length) to ids, lists them in creation order and holds each collection's
//     next sequence number and key count. So any number of collections works;
//   - keys of 1 to 480 bytes are LMDB keys as they are; longer keys (and the empty
//     key) are stored under their first 480 bytes plus a 64-bit hash and a collision
//     counter, with the full key inside the record. So there is no key length limit.
// Order: get_all and scan return entries in insertion order, as a Python dict (and
// LlamaIndex's SimpleKVStore) does: a new key goes to the end, overwriting a key
// keeps its place, removing and re-inserting a key moves it to the end. So a
// LlamaIndex persist file copied into the store and back is byte-identical.
// Costs: get is one B-tree lookup; a put of a new key one insert, as raw LMDB (an
// overwrite two lookups); remove one delete; each write transaction also rewrites the
// catalogue's counters record of each collection it changed. scan/get_all walk the
// collection in key order and put the entries in sequence order in memory (linear
// when the numbers are dense, else a sort): O(n) extra memory of about 40 bytes per
// entry, no value copied; count is one catalogue lookup.
//
// Transactions: write(batch) is one LMDB write transaction, so put_all commits each
// batch of batch_size pairs atomically; readers, other processes and a crash see a
// batch whole or not at all. Reads run in read transactions and never wait for
// writers.
//
// Growth: the memory map starts at LmdbOptions::map_size and grows by itself when a
// write needs more room (and follows growth done by other processes); callers never
// see LMDB's MDB_MAP_FULL.
//
// Several processes may open one store at once: readers see every committed batch,
// writers are serialized by LMDB's lock. Reader slots left behind by killed
// processes are cleared when a store opens, before the map grows and at most every
// reader_check_interval during writes (and on demand: clear_stale_readers()).
// Within one process, every LmdbKVStore on the same directory shares one LMDB
// environment (LMDB forbids opening it twice in a process); do not open the store's
// files by other means in a process that has it open (closing any descriptor of
// lock.mdb drops the process's locks). A store must not be used in a child after
// fork(); open it again in the child, which gets its own environment.
//
// Opening does constant work, whatever the store's size: no collection is looked up
// or counted until it is used. Before LMDB maps data.mdb, its meta pages are read and
// the file's size checked against them (a truncated file is kCorruption, not SIGBUS).
//
// Damage: LMDB trusts the pages it follows. A zeroed or overwritten page met by a
// read or write ends the process (LMDB asserts, after a line on stderr naming the
// store and `kvdex verify`; or it faults). verify() walks every page in a child
// process and reports such damage as kCorruption, the caller surviving.
//
// Thread safety: every method may be called concurrently from many threads. Readers
// never block writers; writers of one environment are serialized. Callbacks passed
// to scan() run inside a read transaction and must not call back into the store.
// Values returned by get are independent copies.
//
// Absence: get of a missing key or collection is std::nullopt; get_all / scan of an
// unknown collection is empty; remove returns false. Reads never create a collection.
//
// Errors (kvdex::Error): kNotFound when the store does not exist and
// create_if_missing is false (or read_only is set); kInvalidArgument when PATH holds
// a NUL byte or is not a directory, an option is out of range (map_size 0 or over 64 TiB,
// max_readers 0 or over 2^20) or a value is over 4 GiB; kFailedPrecondition when the store is
// already open read-only in this process and is opened for writing; kResourceExhausted when a batch
// is too large for one LMDB transaction, every LMDB reader slot is taken, the map cannot grow
// enough or the disk is full; kNotSupported for writes to a read-only store, for a store in another
// format (the message names it and how to convert: a format-3 store is copied out with the kvdex
// that wrote it), or a directory holding a non-kvdex LMDB environment; kCorruption for malformed
// stored data (including two records with one sequence number, met by get_all/scan), an empty
// data.mdb (opened read-only or without create_if_missing) and a data.mdb shorter than its meta
// page says; kPermissionDenied when the operating system refuses access to the files; kIOError for
// other failing I/O. Messages name the path and, where one is involved, the collection.
#ifndef KVDEX_LMDB_KVSTORE_H_
#define KVDEX_LMDB_KVSTORE_H_

#include <atomic>
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

namespace detail {
class LmdbEnv;
}  // namespace detail

// What a commit promises about power failure (a killed process loses nothing
// committed in either mode: the data is in the operating system's cache).
enum class LmdbDurability {
  // Every commit fsyncs the data and then the meta page before write() returns. A
  // commit that returned survives a power failure or OS crash.
  kFull,
  // Every commit fsyncs the data pages but writes the meta page without syncing it
  // (LMDB's MDB_NOMETASYNC); the next commit's sync, flush() or closing the store
  // makes it durable. A power failure or OS crash may therefore roll back the most
  // recent commit (only that one), but never corrupts the store and never exposes
  // part of a batch: the store reopens at the previous committed state. About one
  // fsync a commit instead of two.
  kNoMetaSync,
};

// Options of an LmdbKVStore. Designated initializers welcome:
//   kvdex::LmdbOptions{.map_size = 1 << 30, .durability = kvdex::LmdbDurability::kFull}
// map_size, max_readers and durability belong to the LMDB
// environment: when a process opens a store it already has open, the first opener's
// values hold, except that durability only ever gets stronger (kFull wins).
struct LmdbOptions {
  // Initial size of the memory map in bytes (address space, not disk space: the file
  // only grows as data is written). Grows by itself; a store whose map already is
  // larger keeps its size. LMDB rounds tiny values up to a few pages. 1 to 2^46.
  std::size_t map_size = std::size_t{64} << 20;
  LmdbDurability durability = LmdbDurability::kFull;
  // Ignored: since format 4 every collection lives in one LMDB database, so any
  // number of collections works. Kept so that code setting it still compiles.
  unsigned max_collections = 1024;
  // Reader slots shared by all processes (LMDB's maxreaders). Each concurrent read
  // uses one; each open store keeps up to 16 reserved for reuse. 1 to 2^20.
  unsigned max_readers = 126;
  // At most how often writes check for reader slots of dead processes.
  std::chrono::milliseconds reader_check_interval{5000};
  bool create_if_missing = true;  // false: a missing store is Error(kNotFound)
  bool read_only = false;         // writes are Error(kNotSupported); no file is created
};

// Observable state of the store's environment (for tests, tools and monitoring).
struct LmdbStats {
  std::size_t map_size = 0;       // current size of this process's memory map
  std::size_t used_bytes = 0;     // pages in use in the data file, in bytes
  std::uint64_t last_txn_id = 0;  // id of the last committed write transaction (any process)
  std::uint64_t map_resizes = 0;  // growths and adoptions of other processes' growth
  std::uint64_t stale_readers_cleared = 0;  // reader slots of dead processes cleared
  std::uint64_t catalogue_lookups = 0;      // collection-name lookups done in the catalogue
  std::size_t collections_open = 0;         // collections this process has opened
  unsigned max_readers = 0;
  LmdbDurability durability = LmdbDurability::kFull;
};

class LmdbKVStore final : public BaseKVStore {
 public:
  // Opens (or creates) the store in directory `path`. Throws as listed above.
  explicit LmdbKVStore(const std::string& path, const LmdbOptions& options = {});
  ~LmdbKVStore() override;

  void write(const WriteBatch& batch) override;
  std::optional<EncodedValue> get_encoded(
      std::string_view key, std::string_view collection = kDefaultCollection) override;
  std::vector<EncodedKeyValue> get_all_encoded(
      std::string_view collection = kDefaultCollection) override;
  // Streams the collection in insertion order from one read transaction (a
  // consistent snapshot): a cursor walk of the collection, then its entries put in
  // sequence order in memory (about 40 bytes each; values are not copied); the views
  // point into the memory map and die with the call.
  void scan(std::string_view collection, const ScanVisitor& visit) override;
  bool remove(std::string_view key, std::string_view collection = kDefaultCollection) override;
  // O(1): LMDB keeps each database's entry count.
  std::uint64_t count(std::string_view collection = kDefaultCollection) override;
  // Collection names in creation order.
  std::vector<std::string> collections() override;
  // Syncs data and meta pages to disk (needed only with kNoMetaSync).
  void flush() override;
  // Waits for pending asynchronous operations, flushes, and ends the store's use:
  // every later call throws Error(kFailedPrecondition); close() again does nothing.
  // A failing flush throws and leaves the store open. The LMDB environment is
  // released when the last store using it is destroyed (calls that began before
  // close() finish on it).
  void close() override;

  const std::string& path() const noexcept { return path_; }
  bool read_only() const noexcept { return read_only_; }

  // Clears the reader slots of dead processes now; returns how many were cleared.
  std::size_t clear_stale_readers();

  // Checks the whole store in one snapshot: data.mdb is as long as its meta page
  // says, every page LMDB reaches is sound enough to walk, the catalogue is
  // consistent, every record belongs to a listed collection and decodes (long-key
  // records carry the key their LMDB key was derived from), every value is canonical
  // JSON object text, each collection's sequence numbers are distinct and below its
  // next one and its key count is the catalogue's. Reads everything: O(size log size).
  // The walk runs in a child process (fork), so a damaged page that makes LMDB
  // assert or fault ends the child, not the caller. Throws Error(kCorruption) saying
  // what it found, naming the collection and key where it can.
  void verify();

  LmdbStats stats();

 private:
  void check_open() const;
  void check_writable() const;

  std::string path_;
  bool read_only_;
  std::atomic<bool> closed_{false};
  std::shared_ptr<detail::LmdbEnv> env_;
};

}  // namespace kvdex

#endif  // KVDEX_LMDB_KVSTORE_H_
