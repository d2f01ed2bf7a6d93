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

// ---- In memory ----------------------------------------------------------------------

class MemoryReadableFile final : public ReadableFile {
 public:
  explicit MemoryReadableFile(std::shared_ptr<std::string> data) : data_(std::move(data)) {}
  std::uint64_t size() const override { return data_->size(); }
  std::size_t read(char* dest, std::size_t n) override {
    const std::size_t take = std::min(n, data_->size() - offset_);
    std::memcpy(dest, data_->data() + offset_, take);
    offset_ += take;
    return take;
  }

 private:
  std::shared_ptr<std::string> data_;  // a snapshot: later writes make a new string
  std::size_t offset_ = 0;
};

}  // namespace

// Writes go to a private buffer and become the file's contents on close(), so a
// reader never sees a half-written in-memory file (as with a real temp file, the
// atomic write's rename is what publishes it under the final name).
class MemoryWritableFile final : public WritableFile {
 public:
  MemoryWritableFile(MemoryFileSystem& fs, std::string path) : fs_(fs), path_(std::move(path)) {}
  void append(std::string_view data) override { buffer_.append(data); }
  void sync() override {}
  void close() override {
    MutexLock lock(fs_.mu_);
    fs_.files_[path_] = std::make_shared<std::string>(std::move(buffer_));
  }

 private:
  MemoryFileSystem& fs_;
  std::string path_;
  std::string buffer_;
};

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

std::string read_whole_file(FileSystem& fs, const std::string& path, std::size_t padding) {
  std::unique_ptr<ReadableFile> file = fs.open_readable(path);
  const std::uint64_t size = file->size();
  std::string out;
  out.resize(static_cast<std::size_t>(size) + padding);
  std::size_t have = 0;
  while (have < size) {
    const std::size_t got = file->read(out.data() + have, static_cast<std::size_t>(size) - have);
    if (got == 0) break;  // the file shrank while we read it
    have += got;
  }
  if (have != size) {
    throw Error(ErrorCode::kIOError,
                "file '" + path + "' changed size while being read (expected " +
                    std::to_string(size) + " bytes, got " + std::to_string(have) + ")");
  }
  out.resize(have);  // keeps the capacity, so the zeroed padding stays allocated
  return out;
}

namespace {
void write_file_atomically_unnamed(FileSystem& fs, const std::string& path,
                                   const std::function<void(WritableFile&)>& write_contents);
}  // namespace

void write_file_atomically(FileSystem& fs, const std::string& path,
                           const std::function<void(WritableFile&)>& write_contents) {
  try {
    write_file_atomically_unnamed(fs, path, write_contents);
  } catch (const Error& e) {
    // Name the file the caller asked for, not only the temp file or directory.
    throw Error(e.code(), "cannot write '" + path + "': " + e.what());
  }
}

namespace {
void write_file_atomically_unnamed(FileSystem& fs, const std::string& path,
                                   const std::function<void(WritableFile&)>& write_contents) {
  static std::atomic<unsigned long> counter{0};
  const std::string dir = parent_directory(path);
  fs.create_directories(dir);
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

// ---- MemoryFileSystem ---------------------------------------------------------------

bool MemoryFileSystem::exists(const std::string& path) {
  MutexLock lock(mu_);
  return files_.count(path) != 0 || directories_.count(path) != 0;
}

std::unique_ptr<ReadableFile> MemoryFileSystem::open_readable(const std::string& path) {
  MutexLock lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end())
    throw Error(ErrorCode::kNotFound, "cannot open '" + path + "': no such file");
  return std::make_unique<MemoryReadableFile>(it->second);
}

std::unique_ptr<WritableFile> MemoryFileSystem::open_writable(const std::string& path) {
  {
    MutexLock lock(mu_);
    files_[path] = std::make_shared<std::string>();
  }
  return std::make_unique<MemoryWritableFile>(*this, path);
}

void MemoryFileSystem::rename(const std::string& from, const std::string& to) {
  MutexLock lock(mu_);
  auto it = files_.find(from);
  if (it == files_.end())
    throw Error(ErrorCode::kNotFound, "cannot rename '" + from + "': no such file");
  files_[to] = it->second;
  files_.erase(from);
}

void MemoryFileSystem::remove_file(const std::string& path) {
  MutexLock lock(mu_);
  if (files_.erase(path) == 0)
    throw Error(ErrorCode::kNotFound, "cannot remove '" + path + "': no such file");
}

void MemoryFileSystem::create_directories(const std::string& path) {
  MutexLock lock(mu_);
  for (std::string dir = path; !dir.empty() && dir != "/"; dir = parent_directory(dir)) {
    directories_[dir] = true;
  }
}

void MemoryFileSystem::sync_directory(const std::string&) {}

std::string MemoryFileSystem::contents(const std::string& path) {
  MutexLock lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) throw Error(ErrorCode::kNotFound, "no such file '" + path + "'");
  return *it->second;
}

void MemoryFileSystem::set_contents(const std::string& path, std::string data) {
  MutexLock lock(mu_);
  files_[path] = std::make_shared<std::string>(std::move(data));
}

std::size_t MemoryFileSystem::file_count() {
  MutexLock lock(mu_);
  return files_.size();
}

// ---- FaultInjectionFileSystem -------------------------------------------------------

namespace {

class FaultReadableFile final : public ReadableFile {
 public:
  FaultReadableFile(FaultInjectionFileSystem& fs, std::string path,
                    std::unique_ptr<ReadableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}
  std::uint64_t size() const override { return base_->size(); }
  std::size_t read(char* dest, std::size_t n) override {
    fs_.count(FsOp::kRead, path_);
    return base_->read(dest, n);
  }

 private:
  FaultInjectionFileSystem& fs_;
  std::string path_;
  std::unique_ptr<ReadableFile> base_;
};

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultInjectionFileSystem& fs, std::string path,
                    std::unique_ptr<WritableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}
  void append(std::string_view data) override {
    fs_.count(FsOp::kAppend, path_);
    base_->append(data);
  }
  void sync() override {
    fs_.count(FsOp::kSync, path_);
    base_->sync();
  }
  void close() override {
    fs_.count(FsOp::kClose, path_);
    base_->close();
  }

 private:
  FaultInjectionFileSystem& fs_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

const char* op_name(FsOp op) {
  switch (op) {
    case FsOp::kCreateDirectories:
      return "create_directories";
    case FsOp::kOpenWritable:
      return "open_writable";
    case FsOp::kAppend:
      return "append";
    case FsOp::kSync:
      return "sync";
    case FsOp::kClose:
      return "close";
    case FsOp::kRename:
      return "rename";
    case FsOp::kSyncDirectory:
      return "sync_directory";
    case FsOp::kOpenReadable:
      return "open_readable";
    case FsOp::kRead:
      return "read";
    case FsOp::kRemove:
      return "remove_file";
  }
  return "?";
}

}  // namespace

void FaultInjectionFileSystem::fail_operation(long n) {
  MutexLock lock(mu_);
  fail_at_ = n < 0 ? -1 : operations_ + n;
}

long FaultInjectionFileSystem::operation_count() const {
  MutexLock lock(mu_);
  return operations_;
}

void FaultInjectionFileSystem::reset_count() {
  MutexLock lock(mu_);
  operations_ = 0;
  fail_at_ = -1;
}

void FaultInjectionFileSystem::count(FsOp op, const std::string& path) {
  MutexLock lock(mu_);
  const long index = operations_++;
  if (index == fail_at_) {
    throw Error(ErrorCode::kIOError,
                std::string("injected failure in ") + op_name(op) + " '" + path + "'");
  }
}

bool FaultInjectionFileSystem::exists(const std::string& path) { return base_.exists(path); }

std::unique_ptr<ReadableFile> FaultInjectionFileSystem::open_readable(const std::string& path) {
  count(FsOp::kOpenReadable, path);
  return std::make_unique<FaultReadableFile>(*this, path, base_.open_readable(path));
}

std::unique_ptr<WritableFile> FaultInjectionFileSystem::open_writable(const std::string& path) {
  count(FsOp::kOpenWritable, path);
  return std::make_unique<FaultWritableFile>(*this, path, base_.open_writable(path));
}

void FaultInjectionFileSystem::rename(const std::string& from, const std::string& to) {
  count(FsOp::kRename, from);
  base_.rename(from, to);
}

void FaultInjectionFileSystem::remove_file(const std::string& path) {
  count(FsOp::kRemove, path);
  base_.remove_file(path);
}

void FaultInjectionFileSystem::create_directories(const std::string& path) {
  count(FsOp::kCreateDirectories, path);
  base_.create_directories(path);
}

void FaultInjectionFileSystem::sync_directory(const std::string& path) {
  count(FsOp::kSyncDirectory, path);
  base_.sync_directory(path);
}

}  // namespace kvdex
