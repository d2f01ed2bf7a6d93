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
// Lock order: writer_mu_ -> dbi_open_mu_ -> gate -> cache_mu_ / pool_mu_.
//
// Catalogue (named database "kvdex:catalogue"), keyed by a one-byte tag:
//   "mformat"   -> "3"                      format of this store
//   "mnext_id"  -> u64 big-endian           the id the next collection gets
//   "o" + u64 big-endian id -> name         creation order
//   "n" + name (KeyCodec, tag "n") -> u64 big-endian id
//   "s" + u64 big-endian id -> u64 big-endian   the collection's next sequence number
//                                           (absent: 0, nothing was ever inserted)
// A collection has one database, named with the id in lower-case hex:
//   "kvdex:c:<id>"  KeyCodec records whose payload is the entry's sequence number
//                   (u64 big-endian) followed by the value text. Insertion order is
//                   the order of sequence numbers (docs/lmdb.md: why no index on them).
#ifndef KVDEX_SRC_LMDB_LMDB_ENV_H_
#define KVDEX_SRC_LMDB_LMDB_ENV_H_

#include <lmdb.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kvdex/lmdb_kvstore.h"
#include "lmdb/key_codec.h"
#include "lmdb/lmdb_error.h"

namespace kvdex::detail {

inline constexpr std::string_view kCatalogueName = "kvdex:catalogue";
inline constexpr std::string_view kCollectionDbPrefix = "kvdex:c:";
inline constexpr std::string_view kFormatKey = "mformat";
inline constexpr std::string_view kNextIdKey = "mnext_id";
inline constexpr std::string_view kFormatVersion = "3";
inline constexpr std::string_view kOrderTag = "o";
inline constexpr std::string_view kNameTag = "n";
inline constexpr std::string_view kSeqTag = "s";
// Bytes of the sequence number at the head of every collection record's payload.
inline constexpr std::size_t kSeqBytes = 8;

std::string collection_db_name(std::uint64_t id);
// The catalogue key of collection `id`'s next sequence number.
std::string seq_record_key(std::uint64_t id);
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

// A collection's database and catalogue id.
struct CollectionDbs {
  MDB_dbi keys = 0;      // KeyCodec records: sequence number + value text
  std::uint64_t id = 0;  // names its database and its catalogue records
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
// stream of readers.
class TxnGate {
 public:
  void enter_shared();
  void leave_shared();
  void enter_exclusive();
  void leave_exclusive();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int shared_ = 0;
  int waiting_exclusive_ = 0;
  bool exclusive_ = false;
};

class LmdbEnv;

// A read transaction, from the environment's pool of reset transactions. Holds the
// gate shared while alive.
class ReadTxn {
 public:
  explicit ReadTxn(LmdbEnv& env);
  ~ReadTxn();
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
  // The collection's database handles; creates the collection (catalogue entries and
  // databases) when `create` is set and it does not exist. nullopt if absent.
  std::optional<CollectionDbs> collection(std::string_view name, bool create);
  // The catalogue's handle (the catalogue exists whenever a write transaction runs).
  MDB_dbi catalogue() const;

 private:
  friend class LmdbEnv;
  WriteTxn(LmdbEnv& env, MDB_txn* txn, bool may_open) : env_(env), txn_(txn), may_open_(may_open) {}

  LmdbEnv& env_;
  MDB_txn* txn_;
  bool may_open_;
  // Handles to publish on commit.
  std::unordered_map<std::string, CollectionDbs, StringHash, std::equal_to<>> opened_;
};

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
  LmdbErrorContext context() const noexcept {
    return LmdbErrorContext{path_, {}, false, max_collections_};
  }

  // The handles of an existing collection, or nullopt. Opens it (once per process)
  // through the catalogue.
  std::optional<CollectionDbs> find_collection(std::string_view name);
  // The catalogue's handle; nullopt only for a read-only store never written to.
  std::optional<MDB_dbi> catalogue();

  // Runs fn in one write transaction and commits it, growing the map and retrying
  // (fn runs again) when the map is full. `collections` are those fn may open;
  // `size_hint` estimates the bytes fn writes.
  // `opens_handles` forces dbi_open_mu_ for callbacks that open handles themselves.
  void write(std::span<const std::string> collections, std::size_t size_hint,
             const std::function<void(WriteTxn&)>& fn, bool opens_handles = false);

  void sync();
  std::size_t clear_stale_readers();
  LmdbStats stats();
  // Used when a second store with stronger durability shares this environment.
  void require_full_durability();

 private:
  friend class ReadTxn;
  friend class WriteTxn;

  LmdbEnv(std::string path, const LmdbOptions& options);
  void open_catalogue_at_open();
  void create_catalogue();
  void check_format(MDB_txn* txn, MDB_dbi catalogue_dbi);

  // Begins a transaction (read-only: from the pool), handling MDB_MAP_RESIZED and
  // MDB_READERS_FULL. On return the gate is held shared.
  MDB_txn* begin_read();
  void end_read(MDB_txn* txn) noexcept;
  MDB_txn* begin_unpooled(unsigned flags, std::string_view operation);

  // Under the gate held exclusively: adopt the size another process grew the map
  // to, or grow it for about `needed` more bytes.
  void adopt_map_size();
  void grow_map(std::size_t needed);
  void check_usable() const;
  void maybe_check_readers();
  std::optional<CollectionDbs> cached(std::string_view name);
  // Opens the database of collection `id` in `txn` (kCorruption if it is missing).
  CollectionDbs open_collection_dbs(MDB_txn* txn, std::uint64_t id, unsigned flags,
                                    const LmdbErrorContext& context);

  // Catalogue lookups inside a transaction.
  std::optional<std::uint64_t> lookup_id(MDB_txn* txn, MDB_dbi catalogue_dbi,
                                         std::string_view name);

  const std::string path_;
  const bool read_only_;
  const unsigned max_collections_;
  const unsigned max_readers_;
  const std::chrono::milliseconds reader_check_interval_;
  const pid_t creator_pid_;
  MDB_env* env_ = nullptr;

  TxnGate gate_;
  std::mutex writer_mu_;
  std::mutex dbi_open_mu_;

  std::shared_mutex cache_mu_;
  // collection name -> handles
  std::unordered_map<std::string, CollectionDbs, StringHash, std::equal_to<>> dbis_;
  std::optional<MDB_dbi> catalogue_dbi_;

  std::mutex pool_mu_;
  std::vector<MDB_txn*> pool_;  // reset read transactions

  std::atomic<bool> broken_{false};
  std::atomic<bool> full_durability_{true};
  std::atomic<std::int64_t> last_reader_check_ns_{0};
  std::atomic<std::uint64_t> map_resizes_{0};
  std::atomic<std::uint64_t> stale_readers_cleared_{0};
  std::atomic<std::uint64_t> catalogue_lookups_{0};
};

}  // namespace kvdex::detail

#endif  // KVDEX_SRC_LMDB_LMDB_ENV_H_
