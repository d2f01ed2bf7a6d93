// File systems for kvdex's own tests. Not part of the interface and not installed
// (as LevelDB's MemEnv): they may change with the tests that use them.
//   - MemoryFileSystem: files in memory;
//   - FaultInjectionFileSystem: wraps another and fails the N-th operation on
//     demand, to prove that a failure at any step leaves the old file intact.
//
// Thread safety: both may be used from many threads at once.
#ifndef KVDEX_SRC_TESTING_FILESYSTEMS_H_
#define KVDEX_SRC_TESTING_FILESYSTEMS_H_

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kvdex/filesystem.h"
#include "kvdex/thread_annotations.h"

namespace kvdex::testing {

class MemoryFileSystem : public FileSystem {
 public:
  bool exists(const std::string& path) override;
  std::unique_ptr<ReadableFile> open_readable(const std::string& path) override;
  std::unique_ptr<WritableFile> open_writable(const std::string& path) override;
  void rename(const std::string& from, const std::string& to) override;
  void remove_file(const std::string& path) override;
  void create_directories(const std::string& path) override;
  void sync_directory(const std::string& path) override;

  // Test helpers. contents() throws Error(kNotFound) for a missing file.
  std::string contents(const std::string& path);
  void set_contents(const std::string& path, std::string data);
  std::size_t file_count();

 private:
  friend class MemoryWritableFile;
  Mutex mu_;
  std::map<std::string, std::shared_ptr<std::string>> files_ KVDEX_GUARDED_BY(mu_);
  std::map<std::string, bool> directories_ KVDEX_GUARDED_BY(mu_);
};

// The operations FaultInjectionFileSystem counts, in the order a persist uses them.
enum class FsOp {
  kCreateDirectories,
  kOpenWritable,
  kAppend,
  kSync,
  kClose,
  kRename,
  kSyncDirectory,
  kOpenReadable,
  kRead,
  kRemove,
};

class FaultInjectionFileSystem : public FileSystem {
 public:
  explicit FaultInjectionFileSystem(FileSystem& base) : base_(base) {}

  // Fails the n-th (0-based) operation counted from now with Error(kIOError);
  // pass -1 to stop failing. Operations after the failing one succeed again.
  void fail_operation(long n);
  // Operations seen since construction or the last reset_count().
  long operation_count() const;
  void reset_count();

  bool exists(const std::string& path) override;
  std::unique_ptr<ReadableFile> open_readable(const std::string& path) override;
  std::unique_ptr<WritableFile> open_writable(const std::string& path) override;
  void rename(const std::string& from, const std::string& to) override;
  void remove_file(const std::string& path) override;
  void create_directories(const std::string& path) override;
  void sync_directory(const std::string& path) override;
  // Forwarded without counting: they are not steps whose failure a test injects.
  std::string resolve_symlinks(const std::string& path) override;
  void copy_permissions(const std::string& from, const std::string& to) override;
  std::vector<std::string> list_directory(const std::string& path) override;

  // Called by the wrapped files; throws when the counted operation must fail.
  void count(FsOp op, const std::string& path);

 private:
  FileSystem& base_;
  mutable Mutex mu_;
  long operations_ KVDEX_GUARDED_BY(mu_) = 0;
  long fail_at_ KVDEX_GUARDED_BY(mu_) = -1;
};

}  // namespace kvdex::testing

#endif  // KVDEX_SRC_TESTING_FILESYSTEMS_H_
