// kvdex::open — a store from a URI.
//
//   auto store = kvdex::open("lmdb:/var/lib/app/store");     // durable embedded store
//   auto store = kvdex::open("json:storage/docstore.json");   // LlamaIndex persist file
//   auto store = kvdex::open("storage/docstore.json");        // same: a bare *.json path
//   auto store = kvdex::open("memory:");                      // empty, in memory
//   auto store = kvdex::open("/var/lib/app/store");           // bare path: lmdb
//
// Each backend registers its scheme from its own target; this file knows none of
// them. Schemes built into the library: json, memory, and every backend enabled at
// build time (lmdb: lmdb_kvstore.h; postgresql/postgres: postgres_kvstore.h;
// redis: redis_kvstore.h, redis_cluster_kvstore.h).
//
// A json: store is a JsonFileStore (json_file_store.h): a SimpleKVStore bound to its
// file, loaded when opened and rewritten atomically on flush().
//
// Thread safety: open and register_scheme may be called from any thread.
// Errors: Error(kInvalidArgument) for a malformed URI or an unknown scheme (the
// message lists the known ones); whatever the backend's factory throws.
#ifndef KVDEX_OPEN_H_
#define KVDEX_OPEN_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kvdex/kvstore.h"

namespace kvdex {

struct StoreUri {
  std::string scheme;  // "lmdb", "json", "memory", "redis", "postgresql", ...
  std::string rest;    // what follows "scheme:" (a path, or "//host:port/...")
  std::string text;    // the URI as given
};

// Splits a URI. Rules: "scheme:rest" where scheme is [a-z][a-z0-9+.-]* (two letters
// or more, so "C:" is never a scheme); without a scheme, a path ending in ".json"
// is json:, anything else lmdb:. An empty URI, one whose path part is empty
// (except memory:), or one holding a NUL byte is Error(kInvalidArgument).
StoreUri parse_store_uri(std::string_view uri);

struct OpenOptions {
  bool create_if_missing = true;  // false: a missing store is Error(kNotFound)
  bool read_only = false;         // writes are Error(kNotSupported) where the backend can tell
};

using StoreFactory =
    std::function<std::unique_ptr<BaseKVStore>(const StoreUri&, const OpenOptions&)>;

// Adds a scheme. A scheme is never replaced (as in tensorstore's registry): the
// built-in schemes are in place before the first registration, so registering one
// of their names, or any name twice, is Error(kAlreadyExists) whenever it happens.
// A name that is not [a-z][a-z0-9+.-]+ or an empty factory is Error(kInvalidArgument).
void register_scheme(std::string scheme, StoreFactory factory);

// The registered schemes, sorted.
std::vector<std::string> registered_schemes();

std::unique_ptr<BaseKVStore> open(std::string_view uri, const OpenOptions& options = {});

}  // namespace kvdex

#endif  // KVDEX_OPEN_H_
