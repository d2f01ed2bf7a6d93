#include "kvdex/filesystem.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
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
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  std::unique_ptr<ReadableFile> open_readable(const std::string& path) override {
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
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw_errno(errno, "cannot create", path);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  void rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      throw_errno(errno, "cannot rename to " + to + ":", from);
  }

  void remove_file(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) throw_errno(errno, "cannot remove", path);
  }

  void create_directories(const std::string& path) override {
    if (path.empty()) return;
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
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_errno(errno, "cannot open directory", dir);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) throw_errno(err, "cannot fsync directory", dir);
  }
};

}  // namespace

FileSystem& local_filesystem() {
  static PosixFileSystem* fs = new PosixFileSystem();
  return *fs;
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
  try {
    write_file_atomically_unnamed(fs, path, write_contents, parents);
  } catch (const Error& e) {
    // Name the file the caller asked for, not only the temp file or directory.
    throw Error(e.code(), "cannot write '" + path + "': " + e.what());
  }
}

namespace {
void write_file_atomically_unnamed(FileSystem& fs, const std::string& path,
                                   const std::function<void(WritableFile&)>& write_contents,
                                   ParentDirectories parents) {
  static std::atomic<unsigned long> counter{0};
  const std::string dir = parent_directory(path);
  if (parents == ParentDirectories::kCreate) {
    fs.create_directories(dir);
  } else if (!dir.empty() && !fs.exists(dir)) {
    throw Error(ErrorCode::kNotFound, "no such directory '" + dir + "'");
  }
  const std::string temp =
      path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
  bool created = false;
  try {
    std::unique_ptr<WritableFile> file = fs.open_writable(temp);
    created = true;
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
