// SimpleKVStore — LlamaIndex's SimpleKVStore: an in-memory store, insertion-ordered,
// persisted to and loaded from one JSON file.
//
//   auto store = kvdex::SimpleKVStore::from_persist_path("storage/docstore.json");
//   store->put("node-1", {{"__data__", {{"text", "hello"}}}, {"__type__", "1"}},
//              "docstore/data");
//   store->persist("storage/docstore.json");
//
// The file is {collection: {key: value}} exactly as Python's json.dumps writes it,
// so a file LlamaIndex persisted loads and persists back byte for byte, and
// LlamaIndex loads what kvdex writes.
//
// Loading runs at parser speed: simdjson finds each value, whose text is kept as it
// is (sharing the file's buffer) when it is already canonical and rewritten once when
// it is not. Text simdjson refuses but Python accepts (NaN, Infinity, lone
// surrogates, integers beyond 64 bits at the top levels) goes through kvdex's own
// Python-compatible parser, which also names the byte offset of any error.
//
// Thread safety: as MutableMappingKVStore; persist works on a snapshot and does not
// block writers while it writes.
// Errors: from_persist_path throws Error(kNotFound) for a missing file,
// Error(kCorruption) naming the file and byte offset for a malformed one (and for a
// collection or value that is not a JSON object), Error(kIOError) for failing reads.
// persist throws Error(kIOError) and leaves the previous file intact.
#ifndef KVDEX_SIMPLE_KVSTORE_H_
#define KVDEX_SIMPLE_KVSTORE_H_

#include <memory>
#include <string>
#include <string_view>

#include "kvdex/filesystem.h"
#include "kvdex/in_memory.h"
#include "kvdex/insertion_ordered_map.h"

namespace kvdex {

class SimpleKVStore : public MutableMappingKVStore<InsertionOrderedMap<EncodedValue>> {
 public:
  using Mapping = InsertionOrderedMap<EncodedValue>;

  SimpleKVStore() = default;
  // Waits for pending asynchronous operations before anything is torn down (see
  // kvstore.h: the most-derived class waits, so a pending call never dispatches
  // through a vtable being changed by a base destructor).
  ~SimpleKVStore() override { wait_for_pending_operations(); }

  void persist(const std::string& persist_path, FileSystem* fs = nullptr) override;

  static std::unique_ptr<SimpleKVStore> from_persist_path(const std::string& persist_path,
                                                          FileSystem* fs = nullptr);

  // The persist file's bytes, and a store from them. `source_name` names the text
  // in error messages (e.g. the path it came from).
  std::string to_json_text() const;
  static std::unique_ptr<SimpleKVStore> from_json_text(std::string text,
                                                       std::string_view source_name = "<text>");

  // The whole store as one Value {collection: {key: value}}, and back (LlamaIndex's
  // to_dict / from_dict). Meant for small stores: a Value's object lookup is linear.
  // from_dict throws Error(kInvalidArgument) unless `data` is an object of objects
  // of objects.
  Value to_dict() const;
  static std::unique_ptr<SimpleKVStore> from_dict(const Value& data);
};

// Writes a snapshot in the persist file format (json.dumps of the nested dict).
void write_persist_json(const StoreSnapshot& snapshot,
                        const std::function<void(std::string_view)>& sink);

}  // namespace kvdex

#endif  // KVDEX_SIMPLE_KVSTORE_H_
