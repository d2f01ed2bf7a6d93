// LmdbEnv — one LMDB environment of this process, shared by every LmdbKVStore on
// the same directory, with the catalogue and the machinery around LMDB's rules:
//
//   - LMDB forbids opening an environment twice in one process: acquire() returns
//     the live LmdbEnv of a directory (keyed by device and inode) and closes it, under
//     the registry lock, when the last store lets go;
//   - mdb_env_set_mapsize needs no transaction active in this process: every
//     transaction holds the TxnGate shared; growth takes it exclusively;
//   - mdb_dbi_open must not run in two transactions at once, and a transaction that
//     opened a handle must end before another may open one: dbi_open_mu_ is held
//     around every transaction that may open a handle; handles enter the cache only
//     once their transaction committed, and a transaction only uses handles that
//     were cached before it began;
//   - writers are serialized by writer_mu_ (and across processes by LMDB's lock).
//
// Lock order: writer_mu_ -> dbi_open_mu_ -> gate -> cache_mu_ / pool_mu_, checked by
// clang's thread-safety analysis (kvdex/thread_annotations.h).
//
// Format 4 (docs/lmdb.md). Catalogue (named database "kvdex:catalogue"), keyed by a
// one-byte tag:
//   "mformat"   -> "4"                      format of this store
//   "mnext_id"  -> u64 big-endian           the id the next collection gets
//   "o" + u64 big-endian id -> name         creation order
//   "n" + name (KeyCodec, tag "n") -> u64 big-endian id
//   "s" + u64 big-endian id -> u64 big-endian next sequence number, then u64
//                                           big-endian key count (absent: 0 and 0)
// Every collection's records live in one named database, "kvdex:data": KeyCodec
// records in the keyspace tagged with the collection's id (u64 big-endian), whose
// payload is the entry's sequence number (u64 big-endian) followed by the value text.
// One B-tree for all collections: LMDB's named databases cost every transaction work
// per open database and cap their number (MDB_DBS_FULL), and LlamaIndex applications
// create a collection per tenant. Insertion order is the order of sequence numbers
// (docs/lmdb.md: why no index on them).
#ifndef KVDEX_SRC_LMDB_LMDB_ENV_H_
#define KVDEX_SRC_LMDB_LMDB_ENV_H_

#include <lmdb.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kvdex/lmdb_kvstore.h"
#include "kvdex/thread_annotations.h"
#include "lmdb/key_codec.h"
#include "lmdb/lmdb_error.h"

namespace kvdex::detail {

inline constexpr std::string_view kCatalogueName = "kvdex:catalogue";
inline constexpr std::string_view kDataName = "kvdex:data";
inline constexpr std::string_view kFormatKey = "mformat";
inline constexpr std::string_view kNextIdKey = "mnext_id";
inline constexpr std::string_view kFormatVersion = "4";
inline constexpr std::string_view kOrderTag = "o";
inline constexpr std::string_view kNameTag = "n";
inline constexpr std::string_view kSeqTag = "s";
// Bytes of the sequence number at the head of every collection record's payload.
inline constexpr std::size_t kSeqBytes = 8;
// Bytes of the collection id heading every LMDB key of the data database.
inline constexpr std::size_t kCollectionTagBytes = 8;
static_assert(kCollectionTagBytes <= kMaxTagBytes);

// The catalogue key of collection `id`'s counters (next sequence number, key count).
std::string seq_record_key(std::uint64_t id);

// A collection's counters, kept in its "s" record of the catalogue.
struct CollectionCounters {
  std::uint64_t next_seq = 0;  // the number the next new key gets
  std::uint64_t count = 0;     // keys in the collection
};
std::string encode_counters(const CollectionCounters& counters);
std::optional<CollectionCounters> decode_counters(std::string_view bytes) noexcept;
std::string encode_u64(std::uint64_t v);
std::optional<std::uint64_t> decode_u64(std::string_view bytes) noexcept;

inline void store_u64(char* out, std::uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}
inline std::uint64_t load_u64(const char* in) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// A collection in use: the data database's handle and the collection's id, whose
// big-endian bytes tag its keyspace there (kept here so the hot path builds nothing).
struct CollectionHandle {
  MDB_dbi dbi = 0;       // "kvdex:data": KeyCodec records, sequence number + value text
  std::uint64_t id = 0;  // tags its keys and names its catalogue records
  char tag_bytes[kCollectionTagBytes] = {};

  CollectionHandle() = default;
  CollectionHandle(MDB_dbi data_dbi, std::uint64_t collection_id) noexcept
      : dbi(data_dbi), id(collection_id) {
    store_u64(tag_bytes, collection_id);
  }
  // Views this object: the codec must not outlive it.
  KeyCodec codec() const noexcept {
    return KeyCodec(std::string_view(tag_bytes, sizeof tag_bytes));
  }
};

// Heterogeneous lookup, so finding a handle by string_view allocates nothing.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// Shared/exclusive gate with writer preference: once a thread waits to hold it
// exclusively, new shared holders wait, so a growing map cannot be starved by a
// stream of readers. A capability, so the analysis checks who holds it how.
class KVDEX_CAPABILITY("gate") TxnGate {
 public:
  void enter_shared() KVDEX_ACQUIRE_SHARED() KVDEX_EXCLUDES(mu_);
  void leave_shared() KVDEX_RELEASE_SHARED() KVDEX_EXCLUDES(mu_);
  void enter_exclusive() KVDEX_ACQUIRE() KVDEX_EXCLUDES(mu_);
  void leave_exclusive() KVDEX_RELEASE() KVDEX_EXCLUDES(mu_);

 private:
  Mutex mu_;
  CondVar cv_;
  int shared_ KVDEX_GUARDED_BY(mu_) = 0;
  int waiting_exclusive_ KVDEX_GUARDED_BY(mu_) = 0;
  bool exclusive_ KVDEX_GUARDED_BY(mu_) = false;
};

// Holds a TxnGate shared for its scope.
class KVDEX_SCOPED_CAPABILITY SharedGate {
 public:
  explicit SharedGate(TxnGate& gate) KVDEX_ACQUIRE_SHARED(gate) : gate_(gate) {
    gate_.enter_shared();
  }
  ~SharedGate() KVDEX_RELEASE() { gate_.leave_shared(); }
  SharedGate(const SharedGate&) = delete;
  SharedGate& operator=(const SharedGate&) = delete;

 private:
  TxnGate& gate_;
};

// Holds a TxnGate exclusively for its scope.
class KVDEX_SCOPED_CAPABILITY ExclusiveGate {
 public:
  explicit ExclusiveGate(TxnGate& gate) KVDEX_ACQUIRE(gate) : gate_(gate) {
    gate_.enter_exclusive();
  }
  ~ExclusiveGate() KVDEX_RELEASE() { gate_.leave_exclusive(); }
  ExclusiveGate(const ExclusiveGate&) = delete;
  ExclusiveGate& operator=(const ExclusiveGate&) = delete;

 private:
  TxnGate& gate_;
};

class WriteTxn;

// Bounds of LmdbOptions: anything outside is refused (kInvalidArgument), never changed.
inline constexpr std::size_t kMaxMapSize = std::size_t{1} << 46;  // 64 TiB of address space
inline constexpr unsigned kMaxReaders = 1u << 20;                 // 64 MiB of lock file
// Free space below which a failed write is taken for a full file system.
inline constexpr std::uint64_t kFullFileSystemBytes = std::uint64_t{1} << 16;

// Throws kInvalidArgument naming the option that is out of range.
void check_options(const std::string& path, const LmdbOptions& options);

// Checks data.mdb of the store at `path` before LMDB maps it, reading its meta pages
// with pread as LMDB does: kCorruption naming the file when it is empty (unless
// `may_be_empty`: LMDB will create the environment) or shorter than the last page
// the newer valid meta page records (LMDB would die of SIGBUS touching it). A missing
// file or unreadable meta pages are left to LMDB, which reports them as errors.
void check_data_file(const std::string& path, bool may_be_empty);
// The same on an open descriptor of data.mdb.
void check_data_file(const std::string& path, int fd, bool may_be_empty);

class LmdbEnv {
 public:
  // The environment of directory `path`, opened (and the store created) if this
  // process does not have it open yet.
  static std::shared_ptr<LmdbEnv> acquire(const std::string& path, const LmdbOptions& options);

  ~LmdbEnv();
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  const std::string& path() const noexcept { return path_; }
  bool read_only() const noexcept { return read_only_; }
  LmdbErrorContext context() const noexcept { return LmdbErrorContext{path_, {}, false}; }

  // The handle of an existing collection, or nullopt. Opens it (once per process)
  // through the catalogue.
  std::optional<CollectionHandle> find_collection(std::string_view name)
      KVDEX_EXCLUDES(dbi_open_mu_, gate_, cache_mu_);
  // The catalogue's handle; nullopt only for a read-only store never written to.
  std::optional<MDB_dbi> catalogue() KVDEX_EXCLUDES(dbi_open_mu_, gate_, cache_mu_);
  // The data database's handle; nullopt exactly when catalogue() is.
  std::optional<MDB_dbi> data() KVDEX_EXCLUDES(dbi_open_mu_, gate_, cache_mu_);

  // Runs fn in one write transaction and commits it, growing the map and retrying
  // (fn runs again) when the map is full. `collections` are those fn may open;
  // `size_hint` estimates the bytes fn writes.
  // `opens_handles` forces dbi_open_mu_ for callbacks that open handles themselves.
  void write(std::span<const std::string> collections, std::size_t size_hint,
             const std::function<void(WriteTxn&)>& fn, bool opens_handles = false)
      KVDEX_EXCLUDES(writer_mu_, dbi_open_mu_, gate_);

  void sync();
  // check_data_file() on LMDB's own descriptor: opening and closing another one
  // would be unsafe while the environment is open (docs/lmdb.md).
  void check_data_file_size();
  std::size_t clear_stale_readers();
  LmdbStats stats() KVDEX_EXCLUDES(gate_, cache_mu_);
  // Used when a second store with stronger durability shares this environment.
  void require_full_durability() KVDEX_EXCLUDES(writer_mu_);

 private:
  friend class ReadTxn;
  friend class WriteTxn;

  // What one attempt of write() came to.
  enum class WriteOutcome { kCommitted, kMapResized, kMapFull };

  LmdbEnv(std::string path, const LmdbOptions& options);
  void open_catalogue_at_open() KVDEX_EXCLUDES(gate_, cache_mu_);
  void create_catalogue() KVDEX_EXCLUDES(writer_mu_, dbi_open_mu_, gate_, cache_mu_);
  void check_format(MDB_txn* txn, MDB_dbi catalogue_dbi);
  // Opens the data database in `txn` (kCorruption if the catalogue exists without it).
  MDB_dbi open_data_db(MDB_txn* txn);

  // One write transaction: begins it, runs fn and commits. kMapResized: another
  // process grew the map before the transaction began (only when `may_adopt`;
  // otherwise that is an error); kMapFull: fn or the commit ran out of room. Either
  // way nothing was written. Holds the gate shared throughout.
  WriteOutcome write_once(const std::function<void(WriteTxn&)>& fn, bool may_open, bool may_adopt)
      KVDEX_REQUIRES(writer_mu_) KVDEX_EXCLUDES(gate_);

  // Begins a transaction (read-only: from the pool), handling MDB_MAP_RESIZED and
  // MDB_READERS_FULL. On return the gate is held shared.
  MDB_txn* begin_read() KVDEX_ACQUIRE_SHARED(gate_) KVDEX_EXCLUDES(pool_mu_);
  void end_read(MDB_txn* txn) noexcept KVDEX_RELEASE_SHARED(gate_) KVDEX_EXCLUDES(pool_mu_);
  MDB_txn* begin_unpooled(unsigned flags, std::string_view operation) KVDEX_ACQUIRE_SHARED(gate_);

  // Takes the gate exclusively: adopt the size another process grew the map to, or
  // grow it for about `needed` more bytes.
  void adopt_map_size() KVDEX_EXCLUDES(gate_);
  void grow_map(std::size_t needed) KVDEX_EXCLUDES(gate_);
  void check_usable() const;
  bool file_system_is_full() const;
  void maybe_check_readers();
  std::optional<CollectionHandle> cached(std::string_view name) KVDEX_EXCLUDES(cache_mu_);
  // The handle of collection `id`.
  CollectionHandle handle_of(std::uint64_t id) KVDEX_EXCLUDES(cache_mu_);

  // Catalogue lookups inside a transaction.
  std::optional<std::uint64_t> lookup_id(MDB_txn* txn, MDB_dbi catalogue_dbi,
                                         std::string_view name);

  const std::string path_;
  const bool read_only_;
  const unsigned max_readers_;
  const std::chrono::milliseconds reader_check_interval_;
  const pid_t creator_pid_;
  MDB_env* env_ = nullptr;

  // Lock order: writer_mu_ -> dbi_open_mu_ -> gate_ -> cache_mu_ / pool_mu_. writer_mu_
  // and dbi_open_mu_ guard no member: they order LMDB calls (one writer; one
  // transaction at a time that may open handles).
  Mutex writer_mu_;
  Mutex dbi_open_mu_ KVDEX_ACQUIRED_AFTER(writer_mu_);
  TxnGate gate_ KVDEX_ACQUIRED_AFTER(dbi_open_mu_);

  SharedMutex cache_mu_ KVDEX_ACQUIRED_AFTER(gate_);
  // collection name -> handle
  std::unordered_map<std::string, CollectionHandle, StringHash, std::equal_to<>> handles_
      KVDEX_GUARDED_BY(cache_mu_);
  std::optional<MDB_dbi> catalogue_dbi_ KVDEX_GUARDED_BY(cache_mu_);
  std::optional<MDB_dbi> data_dbi_ KVDEX_GUARDED_BY(cache_mu_);

  Mutex pool_mu_ KVDEX_ACQUIRED_AFTER(gate_);
  std::vector<MDB_txn*> pool_ KVDEX_GUARDED_BY(pool_mu_);  // reset read transactions

  std::atomic<bool> broken_{false};
  std::atomic<bool> full_durability_{true};
  std::atomic<std::int64_t> last_reader_check_ns_{0};
  std::atomic<std::uint64_t> map_resizes_{0};
  std::atomic<std::uint64_t> stale_readers_cleared_{0};
  std::atomic<std::uint64_t> catalogue_lookups_{0};
};

// A read transaction, from the environment's pool of reset transactions. Holds the
// gate shared while alive.
class KVDEX_SCOPED_CAPABILITY ReadTxn {
 public:
  explicit ReadTxn(LmdbEnv& env) KVDEX_ACQUIRE_SHARED(env.gate_) : env_(env) {
    txn_ = env.begin_read();
  }
  ~ReadTxn() KVDEX_RELEASE() { env_.end_read(txn_); }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  MDB_txn* get() const noexcept { return txn_; }

 private:
  LmdbEnv& env_;
  MDB_txn* txn_ = nullptr;
};

// The write transaction handed to LmdbEnv::write's callback.
class WriteTxn {
 public:
  MDB_txn* get() const noexcept { return txn_; }
  // The collection's handle; creates the collection (catalogue entries and database)
  // when `create` is set and it does not exist. nullopt if absent.
  std::optional<CollectionHandle> collection(std::string_view name, bool create)
      KVDEX_EXCLUDES(env_.cache_mu_);
  // The catalogue's handle (the catalogue exists whenever a write transaction runs).
  MDB_dbi catalogue() const KVDEX_EXCLUDES(env_.cache_mu_);

 private:
  friend class LmdbEnv;
  WriteTxn(LmdbEnv& env, MDB_txn* txn, bool may_open) : env_(env), txn_(txn), may_open_(may_open) {}

  LmdbEnv& env_;
  MDB_txn* txn_;
  bool may_open_;  // the transaction runs under dbi_open_mu_
  // Handles to publish on commit.
  std::unordered_map<std::string, CollectionHandle, StringHash, std::equal_to<>> opened_;
};

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_LMDB_LMDB_ENV_H_
