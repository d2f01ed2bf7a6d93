#include "kvdex/open.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "core/scheme_registry.h"
#include "kvdex/error.h"
#include "kvdex/filesystem.h"
#include "kvdex/json_file_store.h"
#include "kvdex/simple_kvstore.h"
#include "kvdex/thread_annotations.h"

namespace kvdex {
namespace {

struct Registry {
  Mutex mu;
  std::map<std::string, StoreFactory, std::less<>> factories KVDEX_GUARDED_BY(mu);
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: open() may run during exit
  return *r;
}

void add_scheme(std::string scheme, StoreFactory factory, ErrorCode duplicate_code) {
  Registry& r = registry();
  MutexLock lock(r.mu);
  auto [it, inserted] = r.factories.try_emplace(std::move(scheme), std::move(factory));
  if (!inserted) {
    throw Error(duplicate_code, "URI scheme '" + it->first + "' is already registered");
  }
}

void register_core_schemes() {
  detail::register_builtin_scheme("memory", [](const StoreUri&, const OpenOptions&) {
    return std::unique_ptr<BaseKVStore>(std::make_unique<SimpleKVStore>());
  });
  detail::register_builtin_scheme("json", [](const StoreUri& uri, const OpenOptions& options) {
    return std::unique_ptr<BaseKVStore>(JsonFileStore::open(uri.rest, options));
  });
}

// The built-in schemes are registered before anything reads or changes the registry,
// so a user's register_scheme() of a built-in name always fails the same way.
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
  // A path cut at the NUL would name another store.
  check_no_nul(uri, "store URI");
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

namespace detail {
void register_builtin_scheme(std::string scheme, StoreFactory factory) {
  add_scheme(std::move(scheme), std::move(factory), ErrorCode::kInternal);
}
}  // namespace detail

void register_scheme(std::string scheme, StoreFactory factory) {
  bool valid = scheme.size() >= 2;
  for (std::size_t i = 0; valid && i < scheme.size(); ++i)
    valid = is_scheme_char(scheme[i], i == 0);
  if (!valid) {
    throw Error(ErrorCode::kInvalidArgument,
                "URI scheme '" + scheme + "' is not [a-z][a-z0-9+.-]+ (two characters or more)");
  }
  if (!factory) {
    throw Error(ErrorCode::kInvalidArgument, "URI scheme '" + scheme + "': empty factory");
  }
  ensure_builtins();
  add_scheme(std::move(scheme), std::move(factory), ErrorCode::kAlreadyExists);
}

std::vector<std::string> registered_schemes() {
  ensure_builtins();
  Registry& r = registry();
  MutexLock lock(r.mu);
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
    MutexLock lock(r.mu);
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
