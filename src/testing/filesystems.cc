#include "testing/filesystems.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "kvdex/error.h"

namespace kvdex::testing {
namespace {

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

std::string FaultInjectionFileSystem::resolve_symlinks(const std::string& path) {
  return base_.resolve_symlinks(path);
}

void FaultInjectionFileSystem::copy_permissions(const std::string& from, const std::string& to) {
  base_.copy_permissions(from, to);
}

std::vector<std::string> FaultInjectionFileSystem::list_directory(const std::string& path) {
  return base_.list_directory(path);
}

}  // namespace kvdex::testing
