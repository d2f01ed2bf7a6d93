#include "kvdex/filesystem.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "kvdex/error.h"

namespace kvdex {
namespace {

// ---- Local (POSIX) ----------------------------------------------------------------

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd, std::uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixReadableFile() override { ::close(fd_); }

  std::uint64_t size() const override { return size_; }

  std::size_t read(char* dest, std::size_t n) override {
    for (;;) {
      const ssize_t got = ::read(fd_, dest, n);
      if (got >= 0) return static_cast<std::size_t>(got);
      if (errno != EINTR) throw_errno(errno, "cannot read", path_);
    }
  }

 private:
  std::string path_;
  int fd_;
  std::uint64_t size_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  void append(std::string_view data) override {
    while (!data.empty()) {
      const ssize_t wrote = ::write(fd_, data.data(), data.size());
      if (wrote < 0) {
        if (errno == EINTR) continue;
        throw_errno(errno, "cannot write", path_);
      }
      data.remove_prefix(static_cast<std::size_t>(wrote));
      written_ += static_cast<std::uint64_t>(wrote);
    }
    start_writeback();
  }

  void sync() override {
    if (::fdatasync(fd_) != 0) throw_errno(errno, "cannot fsync", path_);
  }

  void close() override {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw_errno(errno, "cannot close", path_);
  }

 private:
  // A large file is written out while it is still being produced (as RocksDB's
  // bytes_per_sync does): without this the disk idles until the final fdatasync and
  // a persist costs encode time + write-out time instead of the larger of the two.
  // Advisory only: errors surface at sync(), and a file system that refuses the call
  // just gets the final fdatasync.
  void start_writeback() noexcept {
#ifdef SYNC_FILE_RANGE_WRITE
    constexpr std::uint64_t kWritebackStep = 8u << 20;
    if (!writeback_ || written_ - writeback_from_ < kWritebackStep) return;
    if (::sync_file_range(fd_, static_cast<off_t>(writeback_from_),
                          static_cast<off_t>(written_ - writeback_from_),
                          SYNC_FILE_RANGE_WRITE) != 0) {
      writeback_ = false;
    }
    writeback_from_ = written_;
#endif
  }

  std::string path_;
  int fd_;
  std::uint64_t written_ = 0;
  std::uint64_t writeback_from_ = 0;
  bool writeback_ = true;
};

class PosixFileSystem final : public FileSystem {
 public:
  bool exists(const std::string& path) override {
    check_no_nul(path, "path");
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  std::unique_ptr<ReadableFile> open_readable(const std::string& path) override {
    check_no_nul(path, "path");
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_errno(errno, "cannot open", path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      throw_errno(err, "cannot stat", path);
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      throw_errno(EISDIR, "cannot read", path);
    }
    return std::make_unique<PosixReadableFile>(path, fd, static_cast<std::uint64_t>(st.st_size));
  }

  std::unique_ptr<WritableFile> open_writable(const std::string& path) override {
    check_no_nul(path, "path");
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw_errno(errno, "cannot create", path);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  void rename(const std::string& from, const std::string& to) override {
    check_no_nul(from, "path");
    check_no_nul(to, "path");
    if (::rename(from.c_str(), to.c_str()) != 0)
      throw_errno(errno, "cannot rename to " + to + ":", from);
  }

  void remove_file(const std::string& path) override {
    check_no_nul(path, "path");
    if (::unlink(path.c_str()) != 0) throw_errno(errno, "cannot remove", path);
  }

  void create_directories(const std::string& path) override {
    if (path.empty()) return;
    check_no_nul(path, "path");
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return;
      throw_errno(ENOTDIR, "cannot create directory", path);
    }
    create_directories(parent_directory(path));
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      throw_errno(errno, "cannot create directory", path);
    }
  }

  void sync_directory(const std::string& path) override {
    const std::string dir = path.empty() ? "." : path;
    check_no_nul(dir, "path");
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_errno(errno, "cannot open directory", dir);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) throw_errno(err, "cannot fsync directory", dir);
  }

  std::string resolve_symlinks(const std::string& path) override {
    check_no_nul(path, "path");
    // Only the last component matters: a rename inside a linked directory already
    // lands in the real one. Linux's own limit on link chains (MAXSYMLINKS).
    constexpr int kMaxLinks = 40;
    std::string current = path;
    for (int hops = 0; hops < kMaxLinks; ++hops) {
      struct stat st;
      if (::lstat(current.c_str(), &st) != 0) {
        if (errno == ENOENT) return current;  // a new file, or a dangling link's target
        throw_errno(errno, "cannot stat", current);
      }
      if (!S_ISLNK(st.st_mode)) return current;
      std::string target(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 256), '\0');
      for (;;) {
        const ssize_t n = ::readlink(current.c_str(), target.data(), target.size());
        if (n < 0) throw_errno(errno, "cannot read link", current);
        if (static_cast<std::size_t>(n) < target.size()) {
          target.resize(static_cast<std::size_t>(n));
          break;
        }
        target.resize(target.size() * 2);  // the link changed since lstat
      }
      if (target.empty()) throw_errno(ENOENT, "cannot follow link", current);
      if (target.front() != '/') {
        const std::string dir = parent_directory(current);
        if (!dir.empty()) target = (dir == "/" ? dir : dir + "/") + target;
      }
      current = std::move(target);
    }
    throw_errno(ELOOP, "cannot follow link", path);
  }

  void copy_permissions(const std::string& from, const std::string& to) override {
    check_no_nul(from, "path");
    check_no_nul(to, "path");
    struct stat st;
    if (::stat(from.c_str(), &st) != 0) {
      if (errno == ENOENT) return;
      throw_errno(errno, "cannot stat", from);
    }
    // The owner first: chown clears the set-id bits that chmod then restores.
    if (::geteuid() == 0 && ::chown(to.c_str(), st.st_uid, st.st_gid) != 0)
      throw_errno(errno, "cannot set the owner of", to);
    if (::chmod(to.c_str(), st.st_mode & 07777) != 0)
      throw_errno(errno, "cannot set the mode of", to);
  }

  std::vector<std::string> list_directory(const std::string& path) override {
    const std::string dir = path.empty() ? "." : path;
    check_no_nul(dir, "path");
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) throw_errno(errno, "cannot list directory", dir);
    std::vector<std::string> names;
    errno = 0;
    while (const dirent* entry = ::readdir(d)) {
      const std::string_view name(entry->d_name);
      if (name != "." && name != "..") names.emplace_back(name);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) throw_errno(err, "cannot list directory", dir);
    return names;
  }
};

}  // namespace

FileSystem& local_filesystem() {
  static PosixFileSystem* fs = new PosixFileSystem();
  return *fs;
}

void check_no_nul(std::string_view path, std::string_view what) {
  const std::size_t nul = path.find('\0');
  if (nul == std::string_view::npos) return;
  throw Error(ErrorCode::kInvalidArgument,
              std::string(what) + " '" + shorten_for_message(path.substr(0, nul)) +
                  "\\0...' holds a NUL byte (at offset " + std::to_string(nul) + ")");
}

std::string temporary_file_prefix(const std::string& target) {
  const std::size_t slash = target.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "" : target.substr(0, slash + 1);
  const std::string name = slash == std::string::npos ? target : target.substr(slash + 1);
  return dir + "." + name + ".kvdex-tmp-";
}

std::string parent_directory(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return "";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

namespace {

// Reads exactly `size` bytes of `file` into `dest`: a file that shrank while read
// is an error, not a short result.
void read_exactly(ReadableFile& file, char* dest, std::size_t size, const std::string& path) {
  std::size_t have = 0;
  while (have < size) {
    const std::size_t got = file.read(dest + have, size - have);
    if (got == 0) break;
    have += got;
  }
  if (have != size) {
    throw Error(ErrorCode::kIOError,
                "file '" + path + "' changed size while being read (expected " +
                    std::to_string(size) + " bytes, got " + std::to_string(have) + ")");
  }
}

}  // namespace

std::string read_whole_file(FileSystem& fs, const std::string& path, std::size_t padding) {
  std::unique_ptr<ReadableFile> file = fs.open_readable(path);
  const auto size = static_cast<std::size_t>(file->size());
  std::string out;
  out.resize(size + padding);
  read_exactly(*file, out.data(), size, path);
  out.resize(size);  // keeps the capacity, so the zeroed padding stays allocated
  return out;
}

FileBytes read_whole_file_shared(FileSystem& fs, const std::string& path, std::size_t padding) {
  std::unique_ptr<ReadableFile> file = fs.open_readable(path);
  const auto size = static_cast<std::size_t>(file->size());
  std::shared_ptr<char[]> bytes(std::make_unique_for_overwrite<char[]>(size + padding));
  read_exactly(*file, bytes.get(), size, path);
  std::memset(bytes.get() + size, 0, padding);
  return FileBytes{std::move(bytes), size};
}

namespace {
void write_file_atomically_unnamed(FileSystem& fs, const std::string& path,
                                   const std::function<void(WritableFile&)>& write_contents,
                                   ParentDirectories parents);
}  // namespace

void write_file_atomically(FileSystem& fs, const std::string& path,
                           const std::function<void(WritableFile&)>& write_contents,
                           ParentDirectories parents) {
  // Before the message below quotes the path: text after a NUL is lost on its way
  // to C strings (Python's exception messages among them).
  check_no_nul(path, "path");
  try {
    write_file_atomically_unnamed(fs, path, write_contents, parents);
  } catch (const Error& e) {
    // Name the file the caller asked for, not only the temp file or directory.
    throw Error(e.code(), "cannot write '" + path + "': " + e.what());
  }
}

namespace {

// Whether `rest` is "<pid>-<n>" for a process that no longer exists.
bool names_a_dead_writer(std::string_view rest) {
  const std::size_t dash = rest.find('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == rest.size()) return false;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (i != dash && (rest[i] < '0' || rest[i] > '9')) return false;
  }
  long pid = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + dash, pid);
  if (ec != std::errc() || end != rest.data() + dash || pid <= 0) return false;
  if (pid == static_cast<long>(::getpid())) return false;
  // Only ESRCH proves the writer gone: EPERM is a live process of another user.
  return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

// Removes the temporaries that killed writers of `target` left behind, in the
// current form and in the form kvdex used before (<name>.tmp-<pid>-<n>). Best effort:
// a write must not fail because an old temporary could not be collected.
void remove_stale_temporaries(FileSystem& fs, const std::string& dir, const std::string& target) {
  std::vector<std::string> names;
  try {
    names = fs.list_directory(dir);
  } catch (const Error&) {
    return;
  }
  const std::size_t slash = target.find_last_of('/');
  const std::string name_of_target = slash == std::string::npos ? target : target.substr(slash + 1);
  const std::string prefix = "." + name_of_target + ".kvdex-tmp-";
  const std::string legacy_prefix = name_of_target + ".tmp-";
  const std::string dir_prefix = dir.empty() ? "" : (dir == "/" ? dir : dir + "/");
  for (const std::string& name : names) {
    std::string_view rest;
    if (name.starts_with(prefix)) {
      rest = std::string_view(name).substr(prefix.size());
    } else if (name.starts_with(legacy_prefix)) {
      rest = std::string_view(name).substr(legacy_prefix.size());
    } else {
      continue;
    }
    if (!names_a_dead_writer(rest)) continue;
    try {
      fs.remove_file(dir_prefix + name);
    } catch (const Error&) {
      // Another writer may have collected it first.
    }
  }
}

void write_file_atomically_unnamed(FileSystem& fs, const std::string& requested_path,
                                   const std::function<void(WritableFile&)>& write_contents,
                                   ParentDirectories parents) {
  static std::atomic<unsigned long> counter{0};
  // Replacing a link would cut it from its target: write the target instead.
  const std::string path = fs.resolve_symlinks(requested_path);
  const std::string dir = parent_directory(path);
  if (parents == ParentDirectories::kCreate) {
    fs.create_directories(dir);
  } else if (!dir.empty() && !fs.exists(dir)) {
    throw Error(ErrorCode::kNotFound, "no such directory '" + dir + "'");
  }
  remove_stale_temporaries(fs, dir, path);
  const std::string temp = temporary_file_prefix(path) + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1));
  bool created = false;
  try {
    std::unique_ptr<WritableFile> file = fs.open_writable(temp);
    created = true;
    // Before any content is written, so private data is never readable by others.
    fs.copy_permissions(path, temp);
    write_contents(*file);
    file->sync();
    file->close();
    fs.rename(temp, path);
    created = false;
    fs.sync_directory(dir);
  } catch (...) {
    if (created) {
      try {
        fs.remove_file(temp);
      } catch (...) {
        // The original error matters more than a leftover temp file.
      }
    }
    throw;
  }
}

}  // namespace

}  // namespace kvdex
