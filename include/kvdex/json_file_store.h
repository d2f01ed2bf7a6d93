// JsonFileStore — a SimpleKVStore bound to its LlamaIndex persist file (the json:
// scheme of kvdex::open).
//
//   auto store = kvdex::JsonFileStore::open("storage/docstore.json");
//   store->put("node-1", {{"text", "hello"}}, "docstore/data");
//   store->close();   // saves the file atomically; throws if it cannot
//
// Opening loads the whole file (an empty store if it does not exist and
// create_if_missing is set; its first flush then creates the file, "{}" if nothing
// was written). Writes change the store in memory; flush() saves them
// to the file, atomically (write_file_atomically), when anything changed since the
// last flush; close() flushes and ends the store's use.
//
// Reporting failures: a save that did not happen is never reported as done.
// flush() and close() throw when the file cannot be written, and keep the changes
// (call again once the cause is fixed). The destructor of a store that was not
// closed flushes too, but a destructor cannot report: a failure there loses the
// changes silently. Call close() (or flush()) before letting go of a store whose
// writes matter.
//
// Several writers, one file: every flush is a read-modify-write under an exclusive
// flock(2) on "<file>.lock" beside the file (beside a symbolic link's final target;
// the lock file is left in place, as deleting lock files races). Under the lock the
// flush checks whether the file changed since this store last read or wrote it
// (device, inode, size, mtime, ctime: every kvdex save renames a new inode into
// place); if so it reloads the file, applies this store's changes since its last
// flush on top (in their order), and writes the result. So processes and stores
// writing one file (the CLI's put, say) each keep their writes; for the same key
// the last flush wins. The lock is held only while a flush runs, so a store kept
// open for long never blocks other writers; between its flushes it does not see
// their writes (open it again, or flush, which adopts them). Writers that do not
// take the lock (LlamaIndex's persist) are not coordinated.
//
// Thread safety: as SimpleKVStore; flush() may run concurrently with writes (it
// persists a consistent snapshot; writes made during it are flushed next time).
// Errors: open() throws what SimpleKVStore::from_persist_path throws, and
// Error(kNotFound) for a missing file without create_if_missing (or read-only),
// Error(kInvalidArgument) for a path holding a NUL byte; writes to a store opened
// read-only throw Error(kNotSupported); flush() throws what persist throws (and
// what loading throws when it reloads a file another writer changed); after
// close(), every operation throws Error(kFailedPrecondition).
#ifndef KVDEX_JSON_FILE_STORE_H_
#define KVDEX_JSON_FILE_STORE_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "kvdex/kvstore.h"
#include "kvdex/open.h"
#include "kvdex/simple_kvstore.h"
#include "kvdex/thread_annotations.h"
#include "kvdex/write_batch.h"

namespace kvdex {

class JsonFileStore final : public BaseKVStore {
 public:
  static std::unique_ptr<JsonFileStore> open(const std::string& path,
                                             const OpenOptions& options = {});

  // `store` holds the contents of the file at `path` as it was when read.
  JsonFileStore(std::string path, std::unique_ptr<SimpleKVStore> store, bool read_only);
  // Waits for pending asynchronous operations, then, unless closed, flushes; a
  // failure there cannot be reported (see the file comment: use close()).
  ~JsonFileStore() override;

  void write(const WriteBatch& batch) override;
  std::optional<EncodedValue> get_encoded(
      std::string_view key, std::string_view collection = kDefaultCollection) override;
  std::vector<EncodedKeyValue> get_all_encoded(
      std::string_view collection = kDefaultCollection) override;
  bool remove(std::string_view key, std::string_view collection = kDefaultCollection) override;
  void scan(std::string_view collection, const ScanVisitor& visit) override;
  std::vector<std::string> collections() override;
  std::uint64_t count(std::string_view collection = kDefaultCollection) override;
  void flush() override;
  // Waits for pending asynchronous operations and flushes. On success the store is
  // closed: every later call but close() (which does nothing) throws
  // Error(kFailedPrecondition). On failure it throws and stays open with its changes.
  void close() override;

  const std::string& path() const noexcept { return path_; }
  bool read_only() const noexcept { return read_only_; }
  bool closed() const noexcept { return closed_; }

 private:
  // What tells whether another writer replaced the file since this store read it.
  struct FileIdentity {
    bool exists = false;
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    long long mtime_ns = 0;
    long long ctime_ns = 0;
    bool operator==(const FileIdentity&) const = default;
  };
  static FileIdentity identity_of(const std::string& path);

  void check_open() const;
  void check_writable() const;
  void flush_locked() KVDEX_REQUIRES(flush_mu_);

  std::string path_;
  std::string lock_path_;  // beside the final target of path_
  std::unique_ptr<SimpleKVStore> store_;
  bool read_only_;
  std::atomic<bool> closed_{false};
  Mutex flush_mu_;  // one flush at a time
  FileIdentity loaded_ KVDEX_GUARDED_BY(flush_mu_);
  // Writers hold mu_ while they change store_ and log the change in pending_, so a
  // flush sees each write in both or in neither.
  Mutex mu_ KVDEX_ACQUIRED_AFTER(flush_mu_);
  WriteBatch pending_ KVDEX_GUARDED_BY(mu_);  // changes not yet saved, in order
};

}  // namespace kvdex

#endif  // KVDEX_JSON_FILE_STORE_H_
