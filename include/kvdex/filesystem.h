// FileSystem — where persist files are read and written (the role fsspec plays for
// LlamaIndex, and Env for LevelDB).
//
// Three implementations ship:
//   - local_filesystem(): POSIX files;
//   - MemoryFileSystem: files in memory, for tests and for callers that want bytes;
//   - FaultInjectionFileSystem: wraps another and fails the N-th operation on
//     demand, to prove that a failure at any step leaves the old file intact.
//
// write_file_atomically() is the only way kvdex writes a file: it writes a temporary
// file beside the target, fsyncs it, renames it over the target and fsyncs the
// directory, so a reader (or a crash) sees the old file or the new one, never a
// truncated one.
//
// Thread safety: every FileSystem here may be used from many threads at once; a
// ReadableFile or WritableFile belongs to one thread at a time.
// Errors: Error(kNotFound) for a missing file, Error(kIOError) for any other
// failure, each naming the path and the operating system's reason.
#ifndef KVDEX_FILESYSTEM_H_
#define KVDEX_FILESYSTEM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "kvdex/thread_annotations.h"

namespace kvdex {

class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Size when the file was opened.
  virtual std::uint64_t size() const = 0;
  // Reads up to n bytes; returns how many were read, 0 at the end of the file.
  virtual std::size_t read(char* dest, std::size_t n) = 0;
};

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual void append(std::string_view data) = 0;
  // Makes the contents durable (fsync).
  virtual void sync() = 0;
  virtual void close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual bool exists(const std::string& path) = 0;
  virtual std::unique_ptr<ReadableFile> open_readable(const std::string& path) = 0;
  // Creates or truncates.
  virtual std::unique_ptr<WritableFile> open_writable(const std::string& path) = 0;
  // Replaces `to` atomically if it exists.
  virtual void rename(const std::string& from, const std::string& to) = 0;
  virtual void remove_file(const std::string& path) = 0;
  // Creates `path` and its missing parents; an existing directory is fine.
  virtual void create_directories(const std::string& path) = 0;
  // Makes the directory's entries (a rename into it) durable.
  virtual void sync_directory(const std::string& path) = 0;
};

// The process's POSIX file system.
FileSystem& local_filesystem();

// Reads a whole file. The result has `padding` extra zero bytes allocated after the
// contents (not counted in size()), as simdjson requires.
std::string read_whole_file(FileSystem& fs, const std::string& path, std::size_t padding = 0);

// Atomic replace: temp file in the same directory, write, fsync, close, rename,
// fsync the directory; parent directories are created first. If anything fails the
// temporary file is removed (best effort), the target is untouched and the error is
// rethrown.
void write_file_atomically(FileSystem& fs, const std::string& path,
                           const std::function<void(WritableFile&)>& write_contents);

// The directory part of a path ("" for a bare file name), as os.path.dirname.
std::string parent_directory(const std::string& path);

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

  // Called by the wrapped files; throws when the counted operation must fail.
  void count(FsOp op, const std::string& path);

 private:
  FileSystem& base_;
  mutable Mutex mu_;
  long operations_ KVDEX_GUARDED_BY(mu_) = 0;
  long fail_at_ KVDEX_GUARDED_BY(mu_) = -1;
};

}  // namespace kvdex

#endif  // KVDEX_FILESYSTEM_H_
