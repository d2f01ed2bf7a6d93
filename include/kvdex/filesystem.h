// FileSystem — where persist files are read and written (the role fsspec plays for
// LlamaIndex, and Env for LevelDB).
//
// The library ships local_filesystem() (POSIX files); implement FileSystem to put
// persist files elsewhere. kvdex's own tests also use an in-memory and a
// fault-injecting file system (src/testing/filesystems.h), which are not part of
// the interface and not installed.
//
// write_file_atomically() is the only way kvdex writes a file: it writes a temporary
// file beside the target, fsyncs it, renames it over the target and fsyncs the
// directory, so a reader (or a crash) sees the old file or the new one, never a
// truncated one. A symbolic link is written through (its final target is replaced,
// the link stays) and an existing file keeps its permission bits (and its owner when
// the process may set it), so a private 0600 file never becomes world-readable.
//
// Thread safety: every FileSystem here may be used from many threads at once; a
// ReadableFile or WritableFile belongs to one thread at a time.
// Errors: Error(kNotFound) for a missing file, Error(kIOError) for any other
// failure, each naming the path and the operating system's reason;
// Error(kInvalidArgument) for a local path holding a NUL byte (the operating system
// would silently cut it there and use another file).
#ifndef KVDEX_FILESYSTEM_H_
#define KVDEX_FILESYSTEM_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

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

  // The optional operations below have defaults for a file system without links,
  // permissions or listings; the local file system implements each.

  // The file a write to `path` must replace: `path` itself, or the final target
  // when `path` is a symbolic link (to a file that may not exist yet).
  virtual std::string resolve_symlinks(const std::string& path) { return path; }
  // Gives `to` the permission bits of `from` (and its owner, where the process may
  // set it); does nothing when `from` does not exist.
  virtual void copy_permissions(const std::string& /*from*/, const std::string& /*to*/) {}
  // The names of the entries of directory `path` ("" is the current directory), for
  // collecting the temporary files of killed writers. Default: none.
  virtual std::vector<std::string> list_directory(const std::string& /*path*/) { return {}; }
};

// The process's POSIX file system.
FileSystem& local_filesystem();

// Reads a whole file. The result has `padding` extra zero bytes allocated after the
// contents (not counted in size()), as simdjson requires.
std::string read_whole_file(FileSystem& fs, const std::string& path, std::size_t padding = 0);

// A whole file's bytes, shared: `data` holds `size` bytes and then the padding.
struct FileBytes {
  std::shared_ptr<char[]> data;
  std::size_t size = 0;
};

// As read_whole_file, into memory that is not zero-filled first (for a large file
// that costs about a third as much as the read itself); only the `padding` bytes
// after the contents are zeroed. Same errors as read_whole_file.
FileBytes read_whole_file_shared(FileSystem& fs, const std::string& path, std::size_t padding = 0);

// Whether write_file_atomically creates the target's missing parent directories
// (kCreate) or fails with Error(kNotFound) naming the target when its directory is
// missing (kMustExist, as a plain open(O_CREAT) would).
enum class ParentDirectories { kCreate, kMustExist };

// Atomic replace: temp file in the same directory, write, fsync, close, rename,
// fsync the directory; parent directories are created first unless `parents` is
// kMustExist. If anything fails the temporary file is removed (best effort), the
// target is untouched and the error is rethrown, its message prefixed with
// "cannot write '<path>': ".
//
// When `path` is a symbolic link the write goes to its final target (the temporary
// file beside the target), and the link is kept. The new file gets the old one's
// permission bits, and its owner when running as root.
//
// Temporary files are named temporary_file_prefix(target) + "<pid>-<n>". A writer
// killed mid-write leaves its temporary behind; the next write to the same target
// removes every such file whose process no longer exists (kill(pid, 0) fails with
// ESRCH) and keeps those of live processes, which may still be writing. (A writer in
// another PID namespace sharing the directory looks dead: its write then fails, it
// is never lost silently.)
void write_file_atomically(FileSystem& fs, const std::string& path,
                           const std::function<void(WritableFile&)>& write_contents,
                           ParentDirectories parents = ParentDirectories::kCreate);

// ".<name>.kvdex-tmp-" beside `target` (a resolved path): what every temporary
// file of a write to `target` starts with.
std::string temporary_file_prefix(const std::string& target);

// Throws Error(kInvalidArgument) naming `what` if `path` holds a NUL byte: the
// operating system would read it as the end of the path and use another file.
void check_no_nul(std::string_view path, std::string_view what);

// The directory part of a path ("" for a bare file name), as os.path.dirname.
std::string parent_directory(const std::string& path);

}  // namespace kvdex

#endif  // KVDEX_FILESYSTEM_H_
