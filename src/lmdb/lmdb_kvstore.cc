#include "kvdex/lmdb_kvstore.h"

#include <map>
#include <set>

#include "kvdex/error.h"
#include "kvdex/open.h"
#include "lmdb/key_codec.h"
#include "lmdb/lmdb_env.h"

namespace kvdex {
namespace {

using detail::as_val;
using detail::as_view;
using detail::KeyCodec;
using detail::LmdbCursor;
using detail::LmdbErrorContext;
using detail::ReadTxn;
using detail::throw_lmdb_corruption;
using detail::throw_lmdb_error;

// A stored value is EncodedValue text; a cheap shape check guards the API edge
// (verify() parses every value).
std::string_view checked_value(std::string_view text, std::string_view key,
                               const LmdbErrorContext& context) {
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
    throw_lmdb_corruption(
        "the value of key '" + std::string(key.substr(0, 120)) + "' is not JSON object text",
        context);
  }
  return text;
}

EncodedValue copy_value(std::string_view text) {
  auto owner = std::make_shared<const std::string>(text);  // the one copy out of the map
  const std::string& stored = *owner;
  return EncodedValue::adopt_canonical(stored, std::move(owner));
}

// Calls fn(key, value_text) for every record of `dbi`.
template <class Fn>
void walk(MDB_txn* txn, MDB_dbi dbi, const LmdbErrorContext& context, Fn&& fn) {
  const KeyCodec codec;
  LmdbCursor cursor(txn, dbi, context);
  MDB_val k;
  MDB_val d;
  int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST);
  while (rc == MDB_SUCCESS) {
    const std::optional<KeyCodec::Entry> entry = codec.decode(k, d);
    if (!entry) throw_lmdb_corruption("malformed record", context);
    fn(entry->key, checked_value(entry->payload, entry->key, context));
    rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read", context);
}

}  // namespace

LmdbKVStore::LmdbKVStore(const std::string& path, const LmdbOptions& options)
    : path_(path), read_only_(options.read_only), env_(detail::LmdbEnv::acquire(path, options)) {}

LmdbKVStore::~LmdbKVStore() = default;

void LmdbKVStore::check_writable() const {
  if (read_only_)
    throw Error(ErrorCode::kNotSupported, "lmdb store '" + path_ + "' was opened read-only");
}

void LmdbKVStore::write(const WriteBatch& batch) {
  check_writable();
  if (batch.empty()) return;
  std::size_t size_hint = 0;
  for (const WriteBatch::Op& op : batch.ops()) {
    size_hint += op.key.size() + (op.value ? op.value->size() : 0) + 64;
  }
  const std::span<const std::string> names = batch.collections();
  env_->write(names, size_hint, [&](detail::WriteTxn& txn) {
    const KeyCodec codec;
    std::vector<std::optional<MDB_dbi>> handles(names.size());
    std::vector<bool> looked_up(names.size(), false);
    for (const WriteBatch::Op& op : batch.ops()) {
      const std::string& name = names[op.collection];
      std::optional<MDB_dbi>& dbi = handles[op.collection];
      if (op.value) {
        if (!dbi) dbi = txn.collection(name, /*create=*/true);
        codec.put(txn.get(), *dbi, op.key, op.value->text(), env_->context().with_collection(name));
      } else {
        if (!dbi && !looked_up[op.collection]) dbi = txn.collection(name, /*create=*/false);
        looked_up[op.collection] = true;
        if (dbi) codec.remove(txn.get(), *dbi, op.key, env_->context().with_collection(name));
      }
    }
  });
}

std::optional<EncodedValue> LmdbKVStore::get_encoded(std::string_view key,
                                                     std::string_view collection) {
  const std::optional<MDB_dbi> dbi = env_->find_collection(collection);
  if (!dbi) return std::nullopt;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  ReadTxn txn(*env_);
  const std::optional<std::string_view> text = KeyCodec().get(txn.get(), *dbi, key, context);
  if (!text) return std::nullopt;
  return copy_value(checked_value(*text, key, context));
}

std::vector<EncodedKeyValue> LmdbKVStore::get_all_encoded(std::string_view collection) {
  std::vector<EncodedKeyValue> out;
  const std::optional<MDB_dbi> dbi = env_->find_collection(collection);
  if (!dbi) return out;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  ReadTxn txn(*env_);
  MDB_stat stat{};
  if (mdb_stat(txn.get(), *dbi, &stat) == MDB_SUCCESS) out.reserve(stat.ms_entries);
  walk(txn.get(), *dbi, context, [&](std::string_view key, std::string_view text) {
    out.emplace_back(std::string(key), copy_value(text));
  });
  return out;
}

void LmdbKVStore::scan(std::string_view collection, const ScanVisitor& visit) {
  const std::optional<MDB_dbi> dbi = env_->find_collection(collection);
  if (!dbi) return;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  ReadTxn txn(*env_);
  walk(txn.get(), *dbi, context, visit);
}

std::uint64_t LmdbKVStore::count(std::string_view collection) {
  const std::optional<MDB_dbi> dbi = env_->find_collection(collection);
  if (!dbi) return 0;
  ReadTxn txn(*env_);
  MDB_stat stat{};
  const int rc = mdb_stat(txn.get(), *dbi, &stat);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "count", env_->context().with_collection(collection));
  return stat.ms_entries;
}

bool LmdbKVStore::remove(std::string_view key, std::string_view collection) {
  check_writable();
  if (!env_->find_collection(collection)) return false;  // never creates a collection
  const std::string name(collection);
  bool removed = false;
  env_->write(std::span<const std::string>(&name, 1), key.size() + 64, [&](detail::WriteTxn& txn) {
    removed = false;
    const std::optional<MDB_dbi> dbi = txn.collection(name, /*create=*/false);
    if (dbi)
      removed = KeyCodec().remove(txn.get(), *dbi, key, env_->context().with_collection(name));
  });
  return removed;
}

std::vector<std::string> LmdbKVStore::collections() {
  std::vector<std::string> names;
  const std::optional<MDB_dbi> catalogue = env_->catalogue();
  if (!catalogue) return names;
  const LmdbErrorContext context = env_->context();
  ReadTxn txn(*env_);
  LmdbCursor cursor(txn.get(), *catalogue, context);
  MDB_val k = as_val(detail::kOrderTag);
  MDB_val d;
  int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_SET_RANGE);
  while (rc == MDB_SUCCESS && as_view(k).starts_with(detail::kOrderTag)) {
    names.emplace_back(as_view(d));
    rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw_lmdb_error(rc, "list collections", context);
  return names;
}

void LmdbKVStore::flush() {
  if (!read_only_) env_->sync();
}

std::size_t LmdbKVStore::clear_stale_readers() { return env_->clear_stale_readers(); }

LmdbStats LmdbKVStore::stats() { return env_->stats(); }

void LmdbKVStore::verify() {
  const std::optional<MDB_dbi> catalogue = env_->catalogue();
  if (!catalogue) return;  // a read-only store nobody wrote to yet
  const LmdbErrorContext context = env_->context();
  for (int round = 0; round < 16; ++round) {
    // Open every listed collection first: a snapshot can only use handles opened
    // before it began. Collections created meanwhile make us go round again.
    std::map<std::string, MDB_dbi> handles;
    for (const std::string& name : collections()) {
      const std::optional<MDB_dbi> dbi = env_->find_collection(name);
      if (!dbi) {
        throw_lmdb_corruption("the catalogue lists the collection in its order records only",
                              context.with_collection(name));
      }
      handles.emplace(name, *dbi);
    }

    ReadTxn txn(*env_);
    std::map<std::uint64_t, std::string> order;
    std::map<std::string, std::uint64_t> by_name;
    std::optional<std::string> format;
    std::optional<std::uint64_t> next_id;
    {
      const KeyCodec names_codec(detail::kNameTag);
      LmdbCursor cursor(txn.get(), *catalogue, context);
      MDB_val k;
      MDB_val d;
      int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST);
      for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
        const std::string_view key = as_view(k);
        if (key == detail::kFormatKey) {
          format = std::string(as_view(d));
        } else if (key == detail::kNextIdKey) {
          next_id = detail::decode_u64(as_view(d));
          if (!next_id) throw_lmdb_corruption("malformed next-id record in the catalogue", context);
        } else if (key.starts_with(detail::kOrderTag)) {
          const std::optional<std::uint64_t> id = detail::decode_u64(key.substr(1));
          if (!id) throw_lmdb_corruption("malformed order record in the catalogue", context);
          order.emplace(*id, std::string(as_view(d)));
        } else if (names_codec.owns(k)) {
          const std::optional<KeyCodec::Entry> entry = names_codec.decode(k, d);
          const std::optional<std::uint64_t> id =
              entry ? detail::decode_u64(entry->payload) : std::nullopt;
          if (!entry || !id || !names_codec.placed_correctly(k, entry->key)) {
            throw_lmdb_corruption("malformed name record in the catalogue", context);
          }
          if (!by_name.emplace(std::string(entry->key), *id).second) {
            throw_lmdb_corruption("the catalogue names a collection twice",
                                  context.with_collection(entry->key));
          }
        } else {
          throw_lmdb_corruption("unexpected record in the catalogue", context);
        }
      }
      if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read catalogue", context);
    }
    if (format != detail::kFormatVersion)
      throw_lmdb_corruption("bad catalogue format record", context);
    if (!next_id) throw_lmdb_corruption("the catalogue has no next-id record", context);
    if (order.size() != by_name.size()) {
      throw_lmdb_corruption("the catalogue has " + std::to_string(order.size()) +
                                " order records but " + std::to_string(by_name.size()) +
                                " name records",
                            context);
    }
    bool complete = true;
    for (const auto& [id, name] : order) {
      auto it = by_name.find(name);
      if (it == by_name.end() || it->second != id || id >= *next_id) {
        throw_lmdb_corruption("order and name records of the catalogue disagree",
                              context.with_collection(name));
      }
      if (!handles.contains(name)) complete = false;
    }
    if (!complete) continue;  // a collection appeared after we opened handles

    // Every named database is the catalogue or a listed collection, and vice versa.
    {
      MDB_dbi main = 0;
      int rc = mdb_dbi_open(txn.get(), nullptr, 0, &main);
      if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open main database", context);
      std::set<std::uint64_t> databases;
      LmdbCursor cursor(txn.get(), main, context);
      MDB_val k;
      MDB_val d;
      for (rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST); rc == MDB_SUCCESS;
           rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
        const std::string_view name = as_view(k);
        if (name == detail::kCatalogueName) continue;
        bool listed = false;
        if (name.starts_with(detail::kCollectionDbPrefix)) {
          for (const auto& entry : order) {
            if (detail::collection_db_name(entry.first) == name) {
              listed = true;
              databases.insert(entry.first);
              break;
            }
          }
        }
        if (!listed) {
          throw_lmdb_corruption("database '" + std::string(name) + "' is not in the catalogue",
                                context);
        }
      }
      if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read main database", context);
      for (const auto& [id, name] : order) {
        if (!databases.contains(id)) {
          throw_lmdb_corruption("the collection's database is missing",
                                context.with_collection(name));
        }
      }
    }

    // Every record of every collection.
    const KeyCodec codec;
    for (const auto& [id, name] : order) {
      const LmdbErrorContext where = context.with_collection(name);
      LmdbCursor cursor(txn.get(), handles.at(name), where);
      MDB_val k;
      MDB_val d;
      int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST);
      for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
        const std::optional<KeyCodec::Entry> entry = codec.decode(k, d);
        if (!entry) throw_lmdb_corruption("malformed record", where);
        const std::string shown = std::string(entry->key.substr(0, 120));
        if (!codec.placed_correctly(k, entry->key)) {
          throw_lmdb_corruption("key '" + shown + "' is stored under the wrong LMDB key", where);
        }
        try {
          if (EncodedValue::parse(entry->payload).text() != entry->payload) {
            throw_lmdb_corruption("the value of key '" + shown + "' is not canonical", where);
          }
        } catch (const Error& e) {
          if (e.code() == ErrorCode::kCorruption) throw;
          throw_lmdb_corruption(
              "the value of key '" + shown + "' is not a JSON object: " + e.what(), where);
        }
      }
      if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read", where);
    }
    return;
  }
  throw Error(ErrorCode::kUnavailable,
              detail::lmdb_error_subject(context) + ": verify: collections keep appearing; retry");
}

namespace detail {

// Called by the generated builtin_schemes.cc.
void register_lmdb_scheme() {
  register_scheme(
      "lmdb",
      [](const StoreUri& uri, const OpenOptions& open_options) -> std::unique_ptr<BaseKVStore> {
        LmdbOptions options;
        options.create_if_missing = open_options.create_if_missing;
        options.read_only = open_options.read_only;
        return std::make_unique<LmdbKVStore>(uri.rest, options);
      });
}

}  // namespace detail
}  // namespace kvdex
