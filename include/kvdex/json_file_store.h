// JsonFileStore — a SimpleKVStore bound to its LlamaIndex persist file (the json:
// scheme of kvdex::open).
//
//   auto store = kvdex::JsonFileStore::open("storage/docstore.json");
//   store->put("node-1", {{"text", "hello"}}, "docstore/data");
//   store->flush();   // rewrites the file atomically; throws if it cannot
//
// Opening loads the whole file (an empty store if it does not exist and
// create_if_missing is set). Writes change the store in memory; flush() rewrites the
// file, atomically (write_file_atomically), when anything changed since the last
// flush. The destructor flushes too, but it cannot report a failure: call flush()
// before letting go of a store whose writes matter.
//
// Thread safety: as SimpleKVStore; flush() may run concurrently with writes (it
// persists a consistent snapshot; writes made during it are flushed next time).
// Errors: open() throws what SimpleKVStore::from_persist_path throws, and
// Error(kNotFound) for a missing file without create_if_missing (or read-only);
// writes to a store opened read-only throw Error(kNotSupported); flush() throws what
// persist throws and keeps the changes for the next flush.
#ifndef KVDEX_JSON_FILE_STORE_H_
#define KVDEX_JSON_FILE_STORE_H_

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "kvdex/kvstore.h"
#include "kvdex/open.h"
#include "kvdex/simple_kvstore.h"
#include "kvdex/thread_annotations.h"

namespace kvdex {

class JsonFileStore final : public BaseKVStore {
 public:
  static std::unique_ptr<JsonFileStore> open(const std::string& path,
                                             const OpenOptions& options = {});

  JsonFileStore(std::string path, std::unique_ptr<SimpleKVStore> store, bool read_only);
  // Waits for pending asynchronous operations, then flushes, swallowing errors.
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

  const std::string& path() const noexcept { return path_; }
  bool read_only() const noexcept { return read_only_; }

 private:
  void check_writable() const;

  std::string path_;
  std::unique_ptr<SimpleKVStore> store_;
  bool read_only_;
  std::atomic<bool> dirty_{false};
  Mutex flush_mu_;  // one flush at a time; dirty_ is atomic so writers never wait
};

}  // namespace kvdex

#endif  // KVDEX_JSON_FILE_STORE_H_
