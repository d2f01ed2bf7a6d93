#include "kvdex/json_file_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "kvdex/error.h"
#include "kvdex/filesystem.h"

namespace kvdex {
namespace {

// An exclusive flock(2) on a lock file, held while the object lives.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    // A lock file created by another user may be read-only to us: flock needs no
    // write access.
    if (fd_ < 0 && errno == EACCES) fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw_errno(errno, "cannot open lock file", path);
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd_);
      throw_errno(err, "cannot lock", path);
    }
  }
  ~FileLock() { ::close(fd_); }  // closing the descriptor releases the lock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

void append_batch(WriteBatch& to, const WriteBatch& from) {
  to.reserve(to.size() + from.size());
  for (const WriteBatch::Op& op : from.ops()) {
    if (op.value) {
      to.put(from.collection_of(op), op.key, *op.value);
    } else {
      to.remove(from.collection_of(op), op.key);
    }
  }
}

}  // namespace

std::unique_ptr<JsonFileStore> JsonFileStore::open(const std::string& path,
                                                   const OpenOptions& options) {
  // The file's identity is taken before its contents are read: a file replaced in
  // between then counts as changed at the first flush and is reloaded (wasted work,
  // never lost work). Taken after the read, a replacement in between would go unseen
  // and the flush would write over another writer's save.
  const FileIdentity before_load = identity_of(path);
  std::unique_ptr<SimpleKVStore> store;
  if (local_filesystem().exists(path)) {
    store = SimpleKVStore::from_persist_path(path);
  } else if (options.create_if_missing && !options.read_only) {
    store = std::make_unique<SimpleKVStore>();
  } else {
    throw Error(ErrorCode::kNotFound, "no such file '" + path + "'");
  }
  auto opened = std::make_unique<JsonFileStore>(path, std::move(store), options.read_only);
  MutexLock lock(opened->flush_mu_);
  opened->loaded_ = before_load;
  return opened;
}

JsonFileStore::JsonFileStore(std::string path, std::unique_ptr<SimpleKVStore> store, bool read_only)
    : path_(std::move(path)),
      lock_path_(local_filesystem().resolve_symlinks(path_) + ".lock"),
      store_(std::move(store)),
      read_only_(read_only) {
  MutexLock lock(flush_mu_);
  // The caller vouches that `store` is the file as it is now (open() records the
  // identity from before its read instead).
  loaded_ = identity_of(path_);
}

JsonFileStore::~JsonFileStore() {
  wait_for_pending_operations();
  if (closed_) return;
  try {
    flush();
  } catch (...) {
    // A destructor cannot report; callers who need the error call close().
  }
}

JsonFileStore::FileIdentity JsonFileStore::identity_of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return FileIdentity{};
    throw_errno(errno, "cannot stat", path);
  }
  auto ns = [](const timespec& t) {
    return static_cast<long long>(t.tv_sec) * 1000000000 + t.tv_nsec;
  };
  return FileIdentity{.exists = true,
                      .device = st.st_dev,
                      .inode = st.st_ino,
                      .size = st.st_size,
                      .mtime_ns = ns(st.st_mtim),
                      .ctime_ns = ns(st.st_ctim)};
}

void JsonFileStore::write(const WriteBatch& batch) {
  check_writable();
  MutexLock lock(mu_);
  check_open();  // again under mu_: close() saves what is in pending_ when it sets closed_
  store_->write(batch);
  append_batch(pending_, batch);
}

std::optional<EncodedValue> JsonFileStore::get_encoded(std::string_view key,
                                                       std::string_view collection) {
  check_open();
  return store_->get_encoded(key, collection);
}

std::vector<EncodedKeyValue> JsonFileStore::get_all_encoded(std::string_view collection) {
  check_open();
  return store_->get_all_encoded(collection);
}

bool JsonFileStore::remove(std::string_view key, std::string_view collection) {
  check_writable();
  MutexLock lock(mu_);
  check_open();
  const bool removed = store_->remove(key, collection);
  // Not logged when absent here: the caller was told "not there" and acted on it.
  if (removed) pending_.remove(collection, std::string(key));
  return removed;
}

void JsonFileStore::scan(std::string_view collection, const ScanVisitor& visit) {
  check_open();
  store_->scan(collection, visit);
}

std::vector<std::string> JsonFileStore::collections() {
  check_open();
  return store_->collections();
}

std::uint64_t JsonFileStore::count(std::string_view collection) {
  check_open();
  return store_->count(collection);
}

void JsonFileStore::flush() {
  check_open();
  MutexLock lock(flush_mu_);
  flush_locked();
}

void JsonFileStore::flush_locked() {
  {
    MutexLock lock(mu_);
    // A store opened on a missing file creates it at its first flush even with
    // nothing written (an empty store persists as "{}"), as an LMDB store exists
    // once opened.
    if (pending_.empty() && (loaded_.exists || read_only_)) return;
  }
  // The lock file lives beside the file, whose directory a first save creates.
  local_filesystem().create_directories(parent_directory(lock_path_));
  FileLock file_lock(lock_path_);
  StoreSnapshot snapshot;
  WriteBatch saving;
  {
    MutexLock lock(mu_);
    if (identity_of(path_) != loaded_) {
      // Another writer saved the file since this store read it: start from its
      // contents, so its writes are kept, and apply ours on top.
      std::unique_ptr<SimpleKVStore> fresh = local_filesystem().exists(path_)
                                                 ? SimpleKVStore::from_persist_path(path_)
                                                 : std::make_unique<SimpleKVStore>();
      fresh->write(pending_);
      store_->take_contents(*fresh);
    }
    snapshot = store_->snapshot();
    saving = std::move(pending_);
    pending_.clear();
  }
  try {
    write_file_atomically(local_filesystem(), path_, [&](WritableFile& file) {
      write_persist_json(snapshot, [&](std::string_view chunk) { file.append(chunk); });
    });
  } catch (...) {
    MutexLock lock(mu_);
    append_batch(saving, pending_);
    pending_ = std::move(saving);
    throw;
  }
  loaded_ = identity_of(path_);
}

void JsonFileStore::close() {
  if (closed_) return;
  wait_for_pending_operations();
  MutexLock lock(flush_mu_);
  {
    MutexLock writers(mu_);
    closed_ = true;  // from here every write is refused, so the flush saves them all
  }
  try {
    flush_locked();
  } catch (...) {
    closed_ = false;
    throw;
  }
}

void JsonFileStore::check_open() const {
  if (closed_) throw Error(ErrorCode::kFailedPrecondition, "store '" + path_ + "' is closed");
}

void JsonFileStore::check_writable() const {
  check_open();
  if (read_only_)
    throw Error(ErrorCode::kNotSupported, "store '" + path_ + "' was opened read-only");
}

}  // namespace kvdex
