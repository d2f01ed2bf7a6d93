#include "lmdb/lmdb_env.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include "kvdex/error.h"

namespace kvdex::detail {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr std::size_t kGiB = std::size_t{1} << 30;
constexpr std::size_t kMaxPooledReadTxns = 16;
constexpr int kMaxRetries = 64;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::size_t round_up_to_page(std::size_t n) {
  const long page = ::sysconf(_SC_PAGESIZE);
  const std::size_t p = page > 0 ? static_cast<std::size_t>(page) : 4096;
  return (n + p - 1) / p * p;
}

// ---- Checks of data.mdb before LMDB maps it ---------------------------------------

// LMDB's meta page (mdb.c, 64-bit builds): a 16-byte page header whose flags (at byte
// 10) include P_META, then MDB_meta: magic, version, address, map size, two MDB_db
// (the first one's leading u32 holds the page size), the last used page number and the
// transaction id. Pages 0 and 1 are metas; LMDB uses the valid one with the larger
// transaction id.
constexpr std::size_t kMetaFlagsOffset = 10;
constexpr std::uint16_t kPageIsMeta = 0x08;
constexpr std::size_t kMetaMagicOffset = 16;
constexpr std::size_t kMetaVersionOffset = 20;
constexpr std::size_t kMetaPageSizeOffset = 40;
constexpr std::size_t kMetaLastPageOffset = 136;
constexpr std::size_t kMetaTxnIdOffset = 144;
constexpr std::size_t kMetaBytes = 152;
constexpr std::uint32_t kLmdbMagic = 0xBEEFC0DE;
constexpr std::uint32_t kLmdbDataVersion = 1;

struct MetaPage {
  std::uint32_t page_size;
  std::uint64_t last_page;
  std::uint64_t txn_id;
};

template <class T>
T load_native(const unsigned char* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The meta page at `offset`, or nullopt when it is not one LMDB would accept (LMDB
// itself then refuses the file with an error, which is reported as corruption).
std::optional<MetaPage> read_meta(int fd, off_t offset) {
  unsigned char buf[kMetaBytes];
  if (::pread(fd, buf, sizeof buf, offset) != static_cast<ssize_t>(sizeof buf)) return std::nullopt;
  if ((load_native<std::uint16_t>(buf + kMetaFlagsOffset) & kPageIsMeta) == 0 ||
      load_native<std::uint32_t>(buf + kMetaMagicOffset) != kLmdbMagic ||
      load_native<std::uint32_t>(buf + kMetaVersionOffset) != kLmdbDataVersion) {
    return std::nullopt;
  }
  MetaPage meta{load_native<std::uint32_t>(buf + kMetaPageSizeOffset),
                load_native<std::uint64_t>(buf + kMetaLastPageOffset),
                load_native<std::uint64_t>(buf + kMetaTxnIdOffset)};
  if (meta.page_size < 512 || meta.page_size > (1u << 20)) return std::nullopt;
  return meta;
}

}  // namespace

void check_data_file(const std::string& store_path, bool may_be_empty) {
  const std::string data_file = (std::filesystem::path(store_path) / "data.mdb").string();
  const int fd = ::open(data_file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;  // a new store, or one LMDB will report on when it opens it
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  check_data_file(store_path, fd, may_be_empty);
}

void check_data_file(const std::string& store_path, int fd, bool may_be_empty) {
  const std::string data_file = (std::filesystem::path(store_path) / "data.mdb").string();
  const LmdbErrorContext context{store_path, {}, false};
  // Meta pages first, size second: another process may commit meanwhile, and the file
  // only grows before its meta page is written.
  const std::optional<MetaPage> first = read_meta(fd, 0);
  const std::optional<MetaPage> second =
      first ? read_meta(fd, static_cast<off_t>(first->page_size)) : std::nullopt;
  struct stat st {};
  if (::fstat(fd, &st) != 0) return;
  if (st.st_size == 0) {
    if (may_be_empty) return;  // LMDB writes the meta pages of a store it creates
    throw_lmdb_corruption("data.mdb ('" + data_file +
                              "') is empty: it holds no LMDB environment (the store's creation "
                              "never finished, or the file was truncated)",
                          context);
  }
  if (!first || !second) return;
  const MetaPage& meta = second->txn_id > first->txn_id ? *second : *first;
  const std::uint64_t needed = (meta.last_page + 1) * meta.page_size;
  if (static_cast<std::uint64_t>(st.st_size) < needed) {
    throw_lmdb_corruption("data.mdb ('" + data_file + "') is " + std::to_string(st.st_size) +
                              " bytes but its meta page (transaction " +
                              std::to_string(meta.txn_id) + ") uses " +
                              std::to_string(meta.last_page + 1) + " pages of " +
                              std::to_string(meta.page_size) + " bytes (" + std::to_string(needed) +
                              "): the file was truncated; restore the store from a copy",
                          context);
  }
}

namespace {

// ---- The per-process registry of open environments -------------------------------

struct RegistryEntry {
  std::weak_ptr<LmdbEnv> env;
  const LmdbEnv* raw = nullptr;
  pid_t pid = 0;
};

struct Registry {
  Mutex mu;
  CondVar closed;  // an environment finished closing
  std::map<std::pair<dev_t, ino_t>, RegistryEntry> entries KVDEX_GUARDED_BY(mu);
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: stores may outlive statics
  return *r;
}

// A transaction that is not pooled, and the gate held shared for it: aborts the
// transaction unless it was committed, and leaves the gate, however the scope ends.
class KVDEX_SCOPED_CAPABILITY TxnGuard {
 public:
  // Enters the gate; the transaction is begun by begin().
  explicit TxnGuard(TxnGate& gate) KVDEX_ACQUIRE_SHARED(gate) : gate_(gate) {
    gate_.enter_shared();
  }
  // Takes over `txn` and the gate its caller entered for it.
  TxnGuard(MDB_txn* txn, TxnGate& gate, std::adopt_lock_t) KVDEX_REQUIRES_SHARED(gate)
      : txn_(txn), gate_(gate) {}
  ~TxnGuard() KVDEX_RELEASE() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    gate_.leave_shared();
  }
  TxnGuard(const TxnGuard&) = delete;
  TxnGuard& operator=(const TxnGuard&) = delete;

  MDB_txn* get() const noexcept { return txn_; }
  int begin(MDB_env* env, unsigned flags) noexcept {
    return mdb_txn_begin(env, nullptr, flags, &txn_);
  }
  // mdb_txn_commit frees the transaction whatever the outcome. The gate stays held
  // until the guard goes.
  int commit() noexcept { return mdb_txn_commit(std::exchange(txn_, nullptr)); }
  // Commits; throws the translated error.
  void commit(std::string_view operation, const LmdbErrorContext& context) {
    const int rc = commit();
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, operation, context);
  }

 private:
  MDB_txn* txn_ = nullptr;
  TxnGate& gate_;
};

}  // namespace

std::string seq_record_key(std::uint64_t id) {
  // Not tag + encode_u64(id): GCC 12 at -O3 reports a false -Wrestrict in
  // operator+(string&&, string&&).
  std::string key(kSeqTag);
  key += encode_u64(id);
  return key;
}

std::string encode_counters(const CollectionCounters& counters) {
  std::string out(16, '\0');
  store_u64(out.data(), counters.next_seq);
  store_u64(out.data() + 8, counters.count);
  return out;
}

std::optional<CollectionCounters> decode_counters(std::string_view bytes) noexcept {
  if (bytes.size() != 16) return std::nullopt;
  return CollectionCounters{load_u64(bytes.data()), load_u64(bytes.data() + 8)};
}

std::string encode_u64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::optional<std::uint64_t> decode_u64(std::string_view bytes) noexcept {
  if (bytes.size() != 8) return std::nullopt;
  std::uint64_t v = 0;
  for (unsigned char c : bytes) v = (v << 8) | c;
  return v;
}

// ---- TxnGate ----------------------------------------------------------------------

void TxnGate::enter_shared() {
  MutexLock lock(mu_);
  while (exclusive_ || waiting_exclusive_ != 0) cv_.wait(mu_);
  ++shared_;
}

void TxnGate::leave_shared() {
  MutexLock lock(mu_);
  if (--shared_ == 0 && waiting_exclusive_ > 0) cv_.notify_all();
}

void TxnGate::enter_exclusive() {
  MutexLock lock(mu_);
  ++waiting_exclusive_;
  while (exclusive_ || shared_ != 0) cv_.wait(mu_);
  --waiting_exclusive_;
  exclusive_ = true;
}

void TxnGate::leave_exclusive() {
  {
    MutexLock lock(mu_);
    exclusive_ = false;
  }
  cv_.notify_all();
}

// ---- WriteTxn ---------------------------------------------------------------------

std::optional<CollectionHandle> WriteTxn::collection(std::string_view name, bool create) {
  if (auto it = opened_.find(name); it != opened_.end()) return it->second;
  if (std::optional<CollectionHandle> handle = env_.cached(name)) return handle;
  const LmdbErrorContext context = env_.context().with_collection(name);
  if (!may_open_) {
    throw Error(ErrorCode::kInternal, lmdb_error_subject(context) +
                                          ": collection not announced to the write transaction");
  }
  // LmdbEnv::write holds dbi_open_mu_ around every transaction it lets open handles.
  env_.dbi_open_mu_.assert_held();
  std::optional<MDB_dbi> catalogue;
  {
    ReaderLock lock(env_.cache_mu_);
    catalogue = env_.catalogue_dbi_;
  }
  if (!catalogue) {
    throw Error(ErrorCode::kInternal, lmdb_error_subject(context) + ": catalogue is not open");
  }
  CollectionHandle handle;
  if (std::optional<std::uint64_t> id = env_.lookup_id(txn_, *catalogue, name)) {
    handle = env_.handle_of(*id);
  } else {
    if (!create) return std::nullopt;
    MDB_val k = as_val(kNextIdKey);
    MDB_val d;
    int rc = mdb_get(txn_, *catalogue, &k, &d);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read catalogue", context);
    const std::optional<std::uint64_t> next =
        rc == MDB_SUCCESS ? decode_u64(as_view(d)) : std::nullopt;
    if (!next) throw_lmdb_corruption("the catalogue has no valid next-id record", context);
    const std::string next_value = encode_u64(*next + 1);
    d = as_val(next_value);
    rc = mdb_put(txn_, *catalogue, &k, &d, 0);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "create collection", context);
    const std::string order_key = std::string(kOrderTag) + encode_u64(*next);
    k = as_val(order_key);
    d = as_val(name);
    rc = mdb_put(txn_, *catalogue, &k, &d, 0);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "create collection", context);
    KeyCodec(kNameTag).put(txn_, *catalogue, name, encode_u64(*next), context);
    handle = env_.handle_of(*next);
  }
  opened_.emplace(std::string(name), handle);
  return handle;
}

MDB_dbi WriteTxn::catalogue() const {
  ReaderLock lock(env_.cache_mu_);
  if (!env_.catalogue_dbi_) {
    throw Error(ErrorCode::kInternal,
                lmdb_error_subject(env_.context()) + ": catalogue is not open");
  }
  return *env_.catalogue_dbi_;
}

// ---- LmdbEnv: opening and closing -------------------------------------------------

std::shared_ptr<LmdbEnv> LmdbEnv::acquire(const std::string& path, const LmdbOptions& options) {
  if (path.empty()) throw Error(ErrorCode::kInvalidArgument, "lmdb store path is empty");
  check_options(path, options);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err != ENOENT) throw_errno(err, "cannot open lmdb store", path);
    if (options.read_only || !options.create_if_missing) {
      throw Error(ErrorCode::kNotFound, "lmdb store '" + path + "' does not exist");
    }
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) throw_errno(ec.value(), "cannot create lmdb store directory", path);
    if (::stat(path.c_str(), &st) != 0) throw_errno(errno, "cannot open lmdb store", path);
  }
  if (!S_ISDIR(st.st_mode)) {
    throw Error(
        ErrorCode::kInvalidArgument,
        "lmdb store '" + path +
            "' is not a directory (an LMDB store is a directory holding data.mdb and lock.mdb)");
  }
  if (options.read_only || !options.create_if_missing) {
    struct stat data {};
    const std::string data_file = (std::filesystem::path(path) / "data.mdb").string();
    if (::stat(data_file.c_str(), &data) != 0) {
      if (errno == ENOENT) {
        throw Error(ErrorCode::kNotFound, "lmdb store '" + path + "' does not exist (no data.mdb)");
      }
      throw_errno(errno, "cannot open lmdb store", path);
    }
  }
  const std::pair<dev_t, ino_t> key{st.st_dev, st.st_ino};

  std::shared_ptr<LmdbEnv> existing;
  {
    Registry& r = registry();
    MutexLock lock(r.mu);
    for (;;) {
      auto it = r.entries.find(key);
      if (it == r.entries.end()) break;
      if (it->second.pid != ::getpid()) {  // inherited through fork(): not ours to use
        r.entries.erase(it);
        break;
      }
      existing = it->second.env.lock();
      if (existing) break;
      r.closed.wait(r.mu);  // the last store let go and the environment is closing
    }
    if (!existing) {
      auto* raw = new LmdbEnv(path, options);
      std::shared_ptr<LmdbEnv> env(raw, [key](LmdbEnv* e) {
        Registry& reg = registry();
        {
          MutexLock guard(reg.mu);
          // An environment inherited through fork() is left alone: closing it in the
          // child would drop the child's own locks on the same files.
          if (e->creator_pid_ == ::getpid()) delete e;
          auto entry = reg.entries.find(key);
          if (entry != reg.entries.end() && entry->second.raw == e) reg.entries.erase(entry);
        }
        reg.closed.notify_all();
      });
      r.entries[key] = RegistryEntry{env, raw, ::getpid()};
      return env;
    }
  }
  // Outside the registry lock: dropping `existing` may close the environment.
  if (existing->read_only() && !options.read_only) {
    throw Error(ErrorCode::kFailedPrecondition,
                "lmdb store '" + path +
                    "' is already open read-only in this process; close those stores first");
  }
  if (options.durability == LmdbDurability::kFull) existing->require_full_durability();
  return existing;
}

void check_options(const std::string& path, const LmdbOptions& options) {
  auto refuse = [&](const std::string& what) {
    throw Error(ErrorCode::kInvalidArgument, "lmdb store '" + path + "': " + what);
  };
  if (options.map_size == 0 || options.map_size > kMaxMapSize) {
    refuse("map_size " + std::to_string(options.map_size) + " is out of range (1 to " +
           std::to_string(kMaxMapSize) + " bytes; the map grows by itself)");
  }
  if (options.max_readers == 0 || options.max_readers > kMaxReaders) {
    refuse("max_readers " + std::to_string(options.max_readers) + " is out of range (1 to " +
           std::to_string(kMaxReaders) + ")");
  }
  if (options.reader_check_interval.count() < 0) {
    refuse("reader_check_interval is negative");
  }
}

namespace {

// LMDB reports the shape of damage it meets through assert(); by default that aborts
// with a line naming mdb.c only. The process ends either way (LMDB cannot go on), so
// this is the one place kvdex prints: which store, and how to look at it.
void report_lmdb_assertion(MDB_env* env, const char* message) {
  const char* path = nullptr;
  if (env == nullptr || mdb_env_get_path(env, &path) != MDB_SUCCESS || path == nullptr) {
    path = "?";
  }
  std::string line = "kvdex: lmdb store '";
  line += path;
  line += "' is damaged (LMDB assertion failed: ";
  line += message != nullptr ? message : "?";
  line += "); run `kvdex verify ";
  line += path;
  line += "` to check it\n";
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace

LmdbEnv::LmdbEnv(std::string path, const LmdbOptions& options)
    : path_(std::move(path)),
      read_only_(options.read_only),
      max_readers_(options.max_readers),
      reader_check_interval_(options.reader_check_interval),
      creator_pid_(::getpid()),
      full_durability_(options.durability == LmdbDurability::kFull) {
  int rc = mdb_env_create(&env_);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "create environment", context());
  try {
    // The catalogue and the data database, whatever the number of collections.
    rc = mdb_env_set_maxdbs(env_, 2);
    if (rc == MDB_SUCCESS) rc = mdb_env_set_maxreaders(env_, max_readers_);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "configure environment", context());
    mdb_env_set_assert(env_, &report_lmdb_assertion);  // EINVAL only for a null env
    // LMDB maps the file as its meta page describes it: pages past the end of a
    // truncated file raise SIGBUS when touched.
    check_data_file(path_, !read_only_ && options.create_if_missing);
    // A new store starts at the requested size (LMDB's own default is 1 MiB); an
    // existing one keeps its persisted size, which LMDB adopts when no size is set.
    struct stat data {};
    const std::string data_file = (std::filesystem::path(path_) / "data.mdb").string();
    if (::stat(data_file.c_str(), &data) != 0 || data.st_size == 0) {
      rc = mdb_env_set_mapsize(env_, round_up_to_page(options.map_size));
      if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "set map size", context());
    }
    unsigned flags = MDB_NOTLS;
    if (read_only_) flags |= MDB_RDONLY;
    if (!full_durability_) flags |= MDB_NOMETASYNC;
    rc = mdb_env_open(env_, path_.c_str(), flags, 0644);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open", context());

    if (static_cast<std::size_t>(mdb_env_get_maxkeysize(env_)) <
        kNameTag.size() + kHashedKeySuffix) {
      throw Error(ErrorCode::kNotSupported,
                  lmdb_error_subject(context()) + ": this LMDB build's maximum key size (" +
                      std::to_string(mdb_env_get_maxkeysize(env_)) + ") is below the " +
                      std::to_string(kNameTag.size() + kHashedKeySuffix) + " bytes kvdex needs");
    }
    // An existing store keeps its (larger) persisted size: LMDB adopted it on open.
    MDB_envinfo info{};
    mdb_env_info(env_, &info);
    if (info.me_mapsize < options.map_size) {
      rc = mdb_env_set_mapsize(env_, round_up_to_page(options.map_size));
      if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "set map size", context());
    }
    clear_stale_readers();
    open_catalogue_at_open();
  } catch (...) {
    for (MDB_txn* txn : pool_) mdb_txn_abort(txn);
    mdb_env_close(env_);
    throw;
  }
}

LmdbEnv::~LmdbEnv() {
  for (MDB_txn* txn : pool_) mdb_txn_abort(txn);
  if (!read_only_ && !full_durability_ && !broken_)
    mdb_env_sync(env_, 1);  // errors cannot be reported here
  mdb_env_close(env_);
}

void LmdbEnv::open_catalogue_at_open() {
  {
    TxnGuard txn(begin_unpooled(MDB_RDONLY, "begin read transaction"), gate_, std::adopt_lock);
    MDB_dbi dbi = 0;
    const int rc = mdb_dbi_open(txn.get(), std::string(kCatalogueName).c_str(), 0, &dbi);
    if (rc == MDB_SUCCESS) {
      check_format(txn.get(), dbi);
      const MDB_dbi data = open_data_db(txn.get());
      txn.commit("open catalogue", context());  // keeps the handles
      WriterLock lock(cache_mu_);               // uncontended: nobody else has the environment yet
      catalogue_dbi_ = dbi;
      data_dbi_ = data;
      return;
    }
    if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "open catalogue", context());
    MDB_dbi main = 0;
    MDB_stat stat{};
    if (mdb_dbi_open(txn.get(), nullptr, 0, &main) == MDB_SUCCESS &&
        mdb_stat(txn.get(), main, &stat) == MDB_SUCCESS && stat.ms_entries > 0) {
      throw Error(ErrorCode::kNotSupported, lmdb_error_subject(context()) +
                                                ": holds an LMDB environment not written by kvdex");
    }
  }
  if (!read_only_) create_catalogue();
}

void LmdbEnv::create_catalogue() {
  MDB_dbi created = 0;
  MDB_dbi data = 0;
  write(
      {}, 256,
      [&](WriteTxn& w) {
        int rc = mdb_dbi_open(w.get(), std::string(kCatalogueName).c_str(), 0, &created);
        if (rc == MDB_SUCCESS) {  // another process created it meanwhile
          check_format(w.get(), created);
          data = open_data_db(w.get());
          return;
        }
        if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "open catalogue", context());
        rc = mdb_dbi_open(w.get(), std::string(kCatalogueName).c_str(), MDB_CREATE, &created);
        if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "create catalogue", context());
        rc = mdb_dbi_open(w.get(), std::string(kDataName).c_str(), MDB_CREATE, &data);
        if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "create data database", context());
        const std::string first_id = encode_u64(1);
        for (const auto& [key, value] : {std::pair{kFormatKey, kFormatVersion},
                                         std::pair{kNextIdKey, std::string_view(first_id)}}) {
          MDB_val k = as_val(key);
          MDB_val d = as_val(value);
          rc = mdb_put(w.get(), created, &k, &d, 0);
          if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "create catalogue", context());
        }
      },
      /*opens_handles=*/true);
  WriterLock lock(cache_mu_);
  catalogue_dbi_ = created;
  data_dbi_ = data;
}

MDB_dbi LmdbEnv::open_data_db(MDB_txn* txn) {
  MDB_dbi dbi = 0;
  const int rc = mdb_dbi_open(txn, std::string(kDataName).c_str(), 0, &dbi);
  if (rc == MDB_NOTFOUND) {
    throw_lmdb_corruption("the catalogue exists but the data database is missing", context());
  }
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open data database", context());
  return dbi;
}

void LmdbEnv::check_format(MDB_txn* txn, MDB_dbi catalogue_dbi) {
  MDB_val k = as_val(kFormatKey);
  MDB_val d;
  const int rc = mdb_get(txn, catalogue_dbi, &k, &d);
  if (rc == MDB_NOTFOUND) throw_lmdb_corruption("the catalogue has no format record", context());
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "read catalogue", context());
  if (as_view(d) != kFormatVersion) {
    throw Error(ErrorCode::kNotSupported,
                lmdb_error_subject(context()) + ": store format '" + std::string(as_view(d)) +
                    "' is not supported (this kvdex reads format " + std::string(kFormatVersion) +
                    "); to convert it, run `kvdex copy " + path_ +
                    " json:FILE.json` with the kvdex that wrote it, then `kvdex copy "
                    "json:FILE.json NEW_STORE` with this one");
  }
}

// ---- Transactions -----------------------------------------------------------------

void LmdbEnv::check_usable() const {
  if (broken_) {
    throw Error(ErrorCode::kIOError, lmdb_error_subject(context()) +
                                         ": the memory map could not be resized; reopen the store");
  }
}

MDB_txn* LmdbEnv::begin_read() {
  for (int attempt = 0;; ++attempt) {
    check_usable();
    gate_.enter_shared();
    MDB_txn* txn = nullptr;
    {
      MutexLock lock(pool_mu_);
      if (!pool_.empty()) {
        txn = pool_.back();
        pool_.pop_back();
      }
    }
    int rc;
    if (txn != nullptr) {
      rc = mdb_txn_renew(txn);
      if (rc != MDB_SUCCESS) {
        mdb_txn_abort(txn);
        txn = nullptr;
      }
    } else {
      rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    }
    if (rc == MDB_SUCCESS) return txn;
    gate_.leave_shared();
    if (rc == MDB_MAP_RESIZED && attempt < kMaxRetries) {
      adopt_map_size();
      continue;
    }
    if (rc == MDB_READERS_FULL && attempt < 2) {
      // Free the slots this process keeps for reuse, and those of dead processes.
      std::vector<MDB_txn*> pooled;
      {
        MutexLock lock(pool_mu_);
        pooled.swap(pool_);
      }
      for (MDB_txn* t : pooled) mdb_txn_abort(t);
      if (clear_stale_readers() > 0 || !pooled.empty()) continue;
    }
    throw_lmdb_error(rc, "begin read transaction", context());
  }
}

void LmdbEnv::end_read(MDB_txn* txn) noexcept {
  mdb_txn_reset(txn);
  bool pooled = false;
  {
    MutexLock lock(pool_mu_);
    if (pool_.size() < std::min<std::size_t>(kMaxPooledReadTxns, max_readers_ / 4)) {
      pool_.push_back(txn);
      pooled = true;
    }
  }
  if (!pooled) mdb_txn_abort(txn);
  gate_.leave_shared();
}

MDB_txn* LmdbEnv::begin_unpooled(unsigned flags, std::string_view operation) {
  for (int attempt = 0;; ++attempt) {
    check_usable();
    gate_.enter_shared();
    MDB_txn* txn = nullptr;
    const int rc = mdb_txn_begin(env_, nullptr, flags, &txn);
    if (rc == MDB_SUCCESS) return txn;
    gate_.leave_shared();
    if (rc == MDB_MAP_RESIZED && attempt < kMaxRetries) {
      adopt_map_size();
      continue;
    }
    if (rc == MDB_READERS_FULL && attempt == 0 && clear_stale_readers() > 0) continue;
    throw_lmdb_error(rc, operation, context());
  }
}

void LmdbEnv::adopt_map_size() {
  int rc;
  {
    ExclusiveGate gate(gate_);
    rc = mdb_env_set_mapsize(env_, 0);  // the size another process persisted
    if (rc != MDB_SUCCESS) broken_ = true;
  }
  if (rc != MDB_SUCCESS)
    throw_lmdb_error(rc, "adopt the map size grown by another process", context());
  ++map_resizes_;
}

void LmdbEnv::grow_map(std::size_t needed) {
  clear_stale_readers();  // dead readers pin pages that could otherwise be reused
  std::size_t wanted;
  int rc;
  {
    ExclusiveGate gate(gate_);
    MDB_envinfo info{};
    mdb_env_info(env_, &info);
    const std::size_t current = info.me_mapsize;
    const std::size_t step = std::clamp(current, kMiB, kGiB);
    wanted = round_up_to_page(current + std::max(step, 2 * needed));
    rc = mdb_env_set_mapsize(env_, wanted);
    if (rc != MDB_SUCCESS) broken_ = true;
  }
  if (rc != MDB_SUCCESS) {
    throw_lmdb_error(rc, "grow the memory map to " + std::to_string(wanted) + " bytes", context());
  }
  ++map_resizes_;
}

void LmdbEnv::write(std::span<const std::string> collections, std::size_t size_hint,
                    const std::function<void(WriteTxn&)>& fn, bool opens_handles) {
  if (read_only_) {
    throw Error(ErrorCode::kNotSupported, lmdb_error_subject(context()) + " was opened read-only");
  }
  MutexLock writer(writer_mu_);
  maybe_check_readers();
  bool may_open = opens_handles;
  for (const std::string& name : collections) {
    if (!cached(name)) may_open = true;
  }
  for (int attempt = 0;; ++attempt) {
    check_usable();
    const bool may_adopt = attempt < kMaxRetries;
    WriteOutcome outcome;
    if (may_open) {
      MutexLock dbi_lock(dbi_open_mu_);
      outcome = write_once(fn, /*may_open=*/true, may_adopt);
    } else {
      outcome = write_once(fn, /*may_open=*/false, may_adopt);
    }
    switch (outcome) {
      case WriteOutcome::kCommitted:
        return;
      case WriteOutcome::kMapResized:
        adopt_map_size();
        continue;
      case WriteOutcome::kMapFull:
        break;
    }
    if (attempt >= kMaxRetries) {
      throw Error(ErrorCode::kResourceExhausted, lmdb_error_subject(context()) +
                                                     ": no room for the batch after " +
                                                     std::to_string(kMaxRetries) + " map growths");
    }
    grow_map(size_hint);
  }
}

LmdbEnv::WriteOutcome LmdbEnv::write_once(const std::function<void(WriteTxn&)>& fn, bool may_open,
                                          bool may_adopt) {
  TxnGuard txn(gate_);
  int rc = txn.begin(env_, 0);
  if (rc == MDB_MAP_RESIZED && may_adopt) return WriteOutcome::kMapResized;
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "begin write transaction", context());
  WriteTxn w(*this, txn.get(), may_open);
  try {
    fn(w);
  } catch (const LmdbMapFull&) {
    return WriteOutcome::kMapFull;  // the guard aborts the transaction
  }
  rc = txn.commit();
  if (rc == MDB_MAP_FULL) return WriteOutcome::kMapFull;
  if (rc == EIO && file_system_is_full()) rc = ENOSPC;
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "commit", context());
  if (!w.opened_.empty()) {
    WriterLock lock(cache_mu_);
    for (auto& [name, handle] : w.opened_) handles_.insert_or_assign(name, handle);
  }
  return WriteOutcome::kCommitted;
}

// ---- Collections ------------------------------------------------------------------

std::optional<CollectionHandle> LmdbEnv::cached(std::string_view name) {
  ReaderLock lock(cache_mu_);
  auto it = handles_.find(name);  // transparent: no std::string is built
  if (it == handles_.end()) return std::nullopt;
  return it->second;
}

CollectionHandle LmdbEnv::handle_of(std::uint64_t id) {
  ReaderLock lock(cache_mu_);
  return CollectionHandle(data_dbi_.value_or(0), id);
}

std::optional<std::uint64_t> LmdbEnv::lookup_id(MDB_txn* txn, MDB_dbi catalogue_dbi,
                                                std::string_view name) {
  ++catalogue_lookups_;
  const LmdbErrorContext context = this->context().with_collection(name);
  std::optional<std::string_view> payload =
      KeyCodec(kNameTag).get(txn, catalogue_dbi, name, context);
  if (!payload) return std::nullopt;
  std::optional<std::uint64_t> id = decode_u64(*payload);
  if (!id) throw_lmdb_corruption("malformed catalogue entry", context);
  return id;
}

std::optional<MDB_dbi> LmdbEnv::catalogue() {
  {
    ReaderLock lock(cache_mu_);
    if (catalogue_dbi_) return catalogue_dbi_;
  }
  MutexLock open_lock(dbi_open_mu_);
  {
    ReaderLock lock(cache_mu_);
    if (catalogue_dbi_) return catalogue_dbi_;
  }
  // Only a read-only environment gets here: the store had no catalogue at open.
  TxnGuard txn(begin_unpooled(MDB_RDONLY, "begin read transaction"), gate_, std::adopt_lock);
  MDB_dbi dbi = 0;
  const int rc = mdb_dbi_open(txn.get(), std::string(kCatalogueName).c_str(), 0, &dbi);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open catalogue", context());
  check_format(txn.get(), dbi);
  const MDB_dbi data = open_data_db(txn.get());
  txn.commit("open catalogue", context());
  WriterLock lock(cache_mu_);
  catalogue_dbi_ = dbi;
  data_dbi_ = data;
  return dbi;
}

std::optional<MDB_dbi> LmdbEnv::data() {
  if (!catalogue()) return std::nullopt;
  ReaderLock lock(cache_mu_);
  return data_dbi_;
}

std::optional<CollectionHandle> LmdbEnv::find_collection(std::string_view name) {
  if (std::optional<CollectionHandle> handle = cached(name)) return handle;
  const std::optional<MDB_dbi> catalogue_dbi = catalogue();
  if (!catalogue_dbi) return std::nullopt;
  std::optional<std::uint64_t> id;
  {
    // From a pooled snapshot, without serializing readers: reads of a collection
    // nobody wrote yet are common (LlamaIndex reads before it writes). A committed
    // catalogue entry never changes (collections are never dropped), so the id is
    // cached for good.
    ReadTxn txn(*this);
    id = lookup_id(txn.get(), *catalogue_dbi, name);
  }
  if (!id) return std::nullopt;
  const CollectionHandle handle = handle_of(*id);
  WriterLock lock(cache_mu_);
  handles_.insert_or_assign(std::string(name), handle);
  return handle;
}

// ---- Maintenance ------------------------------------------------------------------

// LMDB reports a short write as EIO (mdb_page_flush, mdb_env_write_meta), and a write
// into a file system about to fill up is cut short before one fails with ENOSPC. A
// file system left with less than a few pages free after such a failure is full.
bool LmdbEnv::file_system_is_full() const {
  int fd = -1;
  struct statvfs fs {};
  if (mdb_env_get_fd(env_, &fd) != MDB_SUCCESS || ::fstatvfs(fd, &fs) != 0) return false;
  const std::uint64_t free_bytes = std::uint64_t{fs.f_bavail} * fs.f_frsize;
  return free_bytes < kFullFileSystemBytes;
}

void LmdbEnv::check_data_file_size() {
  int fd = -1;
  const int rc = mdb_env_get_fd(env_, &fd);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "read data file", context());
  check_data_file(path_, fd, /*may_be_empty=*/false);
}

void LmdbEnv::sync() {
  if (read_only_) return;
  check_usable();
  const int rc = mdb_env_sync(env_, 1);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "sync", context());
}

std::size_t LmdbEnv::clear_stale_readers() {
  int dead = 0;
  const int rc = mdb_reader_check(env_, &dead);
  last_reader_check_ns_ = now_ns();
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "check reader slots", context());
  stale_readers_cleared_ += static_cast<std::uint64_t>(dead);
  return static_cast<std::size_t>(dead);
}

void LmdbEnv::maybe_check_readers() {
  const std::int64_t interval =
      std::chrono::duration_cast<std::chrono::nanoseconds>(reader_check_interval_).count();
  if (now_ns() - last_reader_check_ns_.load() >= interval) clear_stale_readers();
}

void LmdbEnv::require_full_durability() {
  MutexLock writer(writer_mu_);  // not in the middle of a commit
  if (full_durability_) return;
  const int rc = mdb_env_set_flags(env_, MDB_NOMETASYNC, 0);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "set durability", context());
  full_durability_ = true;
}

LmdbStats LmdbEnv::stats() {
  LmdbStats out;
  check_usable();
  MDB_envinfo info{};
  MDB_stat stat{};
  int rc1;
  int rc2;
  {
    SharedGate gate(gate_);  // mdb_env_info reads the meta pages, inside the map
    rc1 = mdb_env_info(env_, &info);
    rc2 = mdb_env_stat(env_, &stat);
  }
  if (rc1 != MDB_SUCCESS) throw_lmdb_error(rc1, "read environment info", context());
  if (rc2 != MDB_SUCCESS) throw_lmdb_error(rc2, "read environment info", context());
  out.map_size = info.me_mapsize;
  out.used_bytes = (info.me_last_pgno + 1) * std::size_t{stat.ms_psize};
  out.last_txn_id = info.me_last_txnid;
  out.map_resizes = map_resizes_;
  out.stale_readers_cleared = stale_readers_cleared_;
  out.catalogue_lookups = catalogue_lookups_;
  {
    ReaderLock lock(cache_mu_);
    out.collections_open = handles_.size();
  }
  out.max_readers = max_readers_;
  out.durability = full_durability_ ? LmdbDurability::kFull : LmdbDurability::kNoMetaSync;
  return out;
}

}  // namespace kvdex::detail
