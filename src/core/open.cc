#include "kvdex/open.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>

#include "kvdex/error.h"
#include "kvdex/simple_kvstore.h"

namespace kvdex {
namespace detail {
// Defined in the generated builtin_schemes.cc of the kvdex target: registers every
// backend compiled into the library. The core only declares it.
void register_builtin_schemes();
}  // namespace detail

namespace {

// A SimpleKVStore bound to its JSON file (the json: scheme).
class JsonFileStore final : public BaseKVStore {
 public:
  JsonFileStore(std::string path, std::unique_ptr<SimpleKVStore> store, bool read_only)
      : path_(std::move(path)), store_(std::move(store)), read_only_(read_only) {}

  ~JsonFileStore() override {
    try {
      flush();
    } catch (...) {
      // A destructor cannot report; callers who need the error call flush().
    }
  }

  void write(const WriteBatch& batch) override {
    check_writable();
    store_->write(batch);
    dirty_ = true;
  }
  std::optional<EncodedValue> get_encoded(std::string_view key,
                                          std::string_view collection) override {
    return store_->get_encoded(key, collection);
  }
  std::vector<EncodedKeyValue> get_all_encoded(std::string_view collection) override {
    return store_->get_all_encoded(collection);
  }
  bool remove(std::string_view key, std::string_view collection) override {
    check_writable();
    const bool removed = store_->remove(key, collection);
    if (removed) dirty_ = true;
    return removed;
  }
  void scan(std::string_view collection, const ScanVisitor& visit) override {
    store_->scan(collection, visit);
  }
  std::vector<std::string> collections() override { return store_->collections(); }
  std::uint64_t count(std::string_view collection) override { return store_->count(collection); }

  void flush() override {
    std::lock_guard lock(flush_mu_);
    if (!dirty_.exchange(false)) return;
    try {
      store_->persist(path_);
    } catch (...) {
      dirty_ = true;
      throw;
    }
  }

 private:
  void check_writable() const {
    if (read_only_)
      throw Error(ErrorCode::kNotSupported, "store '" + path_ + "' was opened read-only");
  }

  std::string path_;
  std::unique_ptr<SimpleKVStore> store_;
  bool read_only_;
  std::atomic<bool> dirty_{false};
  std::mutex flush_mu_;
};

struct Registry {
  std::mutex mu;
  std::map<std::string, StoreFactory> factories;
};

Registry& registry() {
  static Registry* r = new Registry();
  return *r;
}

void register_core_schemes() {
  register_scheme("memory",
                  [](const StoreUri&, const OpenOptions&) -> std::unique_ptr<BaseKVStore> {
                    return std::make_unique<SimpleKVStore>();
                  });
  register_scheme(
      "json", [](const StoreUri& uri, const OpenOptions& options) -> std::unique_ptr<BaseKVStore> {
        FileSystem& fs = local_filesystem();
        std::unique_ptr<SimpleKVStore> store;
        if (fs.exists(uri.rest)) {
          store = SimpleKVStore::from_persist_path(uri.rest);
        } else if (options.create_if_missing && !options.read_only) {
          store = std::make_unique<SimpleKVStore>();
        } else {
          throw Error(ErrorCode::kNotFound, "no such file '" + uri.rest + "'");
        }
        return std::make_unique<JsonFileStore>(uri.rest, std::move(store), options.read_only);
      });
}

void ensure_builtins() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_core_schemes();
    detail::register_builtin_schemes();
  });
}

bool is_scheme_char(char c, bool first) {
  if (c >= 'a' && c <= 'z') return true;
  if (first) return false;
  return (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-';
}

}  // namespace

StoreUri parse_store_uri(std::string_view uri) {
  if (uri.empty()) throw Error(ErrorCode::kInvalidArgument, "empty store URI");
  StoreUri out;
  out.text = std::string(uri);
  const std::size_t colon = uri.find(':');
  bool has_scheme = colon != std::string_view::npos && colon >= 2;
  for (std::size_t i = 0; has_scheme && i < colon; ++i) has_scheme = is_scheme_char(uri[i], i == 0);
  if (has_scheme) {
    out.scheme = std::string(uri.substr(0, colon));
    out.rest = std::string(uri.substr(colon + 1));
  } else {
    out.scheme = uri.ends_with(".json") ? "json" : "lmdb";
    out.rest = std::string(uri);
  }
  if (out.rest.empty() && out.scheme != "memory") {
    throw Error(ErrorCode::kInvalidArgument,
                "store URI '" + out.text + "' has no path after '" + out.scheme + ":'");
  }
  return out;
}

void register_scheme(std::string scheme, StoreFactory factory) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  r.factories[std::move(scheme)] = std::move(factory);
}

std::vector<std::string> registered_schemes() {
  ensure_builtins();
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<std::string> names;
  for (const auto& entry : r.factories) names.push_back(entry.first);
  return names;
}

std::unique_ptr<BaseKVStore> open(std::string_view uri, const OpenOptions& options) {
  ensure_builtins();
  const StoreUri parsed = parse_store_uri(uri);
  StoreFactory factory;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mu);
    auto it = r.factories.find(parsed.scheme);
    if (it == r.factories.end()) {
      std::string known;
      for (const auto& entry : r.factories) known += (known.empty() ? "" : ", ") + entry.first;
      throw Error(ErrorCode::kInvalidArgument, "store URI '" + parsed.text + "': unknown scheme '" +
                                                   parsed.scheme + "' (known: " + known + ")");
    }
    factory = it->second;
  }
  return factory(parsed, options);
}

}  // namespace kvdex
