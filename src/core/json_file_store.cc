#include "kvdex/json_file_store.h"

#include <utility>

#include "kvdex/error.h"
#include "kvdex/filesystem.h"

namespace kvdex {

std::unique_ptr<JsonFileStore> JsonFileStore::open(const std::string& path,
                                                   const OpenOptions& options) {
  std::unique_ptr<SimpleKVStore> store;
  if (local_filesystem().exists(path)) {
    store = SimpleKVStore::from_persist_path(path);
  } else if (options.create_if_missing && !options.read_only) {
    store = std::make_unique<SimpleKVStore>();
  } else {
    throw Error(ErrorCode::kNotFound, "no such file '" + path + "'");
  }
  return std::make_unique<JsonFileStore>(path, std::move(store), options.read_only);
}

JsonFileStore::JsonFileStore(std::string path, std::unique_ptr<SimpleKVStore> store, bool read_only)
    : path_(std::move(path)), store_(std::move(store)), read_only_(read_only) {}

JsonFileStore::~JsonFileStore() {
  wait_for_pending_operations();
  try {
    flush();
  } catch (...) {
    // A destructor cannot report; callers who need the error call flush().
  }
}

void JsonFileStore::write(const WriteBatch& batch) {
  check_writable();
  store_->write(batch);
  dirty_ = true;
}

std::optional<EncodedValue> JsonFileStore::get_encoded(std::string_view key,
                                                       std::string_view collection) {
  return store_->get_encoded(key, collection);
}

std::vector<EncodedKeyValue> JsonFileStore::get_all_encoded(std::string_view collection) {
  return store_->get_all_encoded(collection);
}

bool JsonFileStore::remove(std::string_view key, std::string_view collection) {
  check_writable();
  const bool removed = store_->remove(key, collection);
  if (removed) dirty_ = true;
  return removed;
}

void JsonFileStore::scan(std::string_view collection, const ScanVisitor& visit) {
  store_->scan(collection, visit);
}

std::vector<std::string> JsonFileStore::collections() { return store_->collections(); }

std::uint64_t JsonFileStore::count(std::string_view collection) {
  return store_->count(collection);
}

void JsonFileStore::flush() {
  MutexLock lock(flush_mu_);
  if (!dirty_.exchange(false)) return;
  try {
    store_->persist(path_);
  } catch (...) {
    dirty_ = true;
    throw;
  }
}

void JsonFileStore::check_writable() const {
  if (read_only_)
    throw Error(ErrorCode::kNotSupported, "store '" + path_ + "' was opened read-only");
}

}  // namespace kvdex
