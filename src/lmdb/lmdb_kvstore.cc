#include "kvdex/lmdb_kvstore.h"

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>

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

// The one copy out of the map, in one allocation (control block and bytes together).
EncodedValue copy_value(std::string_view text) {
  std::shared_ptr<char[]> owner = std::make_shared_for_overwrite<char[]>(text.size());
  std::memcpy(owner.get(), text.data(), text.size());
  const std::string_view stored(owner.get(), text.size());
  return EncodedValue::adopt_canonical(stored, std::move(owner));
}

// A collection record's payload: the sequence number, then the value text.
struct Payload {
  std::uint64_t seq;
  std::string_view text;
};

std::optional<Payload> split_payload(std::string_view payload) noexcept {
  if (payload.size() < detail::kSeqBytes) return std::nullopt;
  return Payload{detail::load_u64(payload.data()), payload.substr(detail::kSeqBytes)};
}

// Calls fn(key, value_text) for every entry of `dbs`, in insertion order: a walk of
// the order database, with one lookup in the keys database per entry.
template <class Fn>
void walk(MDB_txn* txn, const detail::CollectionDbs& dbs, const LmdbErrorContext& context,
          Fn&& fn) {
  const KeyCodec codec;
  LmdbCursor cursor(txn, dbs.order, context);
  MDB_val seq_key;
  MDB_val lmdb_key;
  int rc = mdb_cursor_get(cursor.get(), &seq_key, &lmdb_key, MDB_FIRST);
  while (rc == MDB_SUCCESS) {
    MDB_val k = lmdb_key;
    MDB_val d;
    const int found = mdb_get(txn, dbs.keys, &k, &d);
    if (found == MDB_NOTFOUND) {
      throw_lmdb_corruption("an order entry points at a missing record", context);
    }
    if (found != MDB_SUCCESS) throw_lmdb_error(found, "read", context);
    const std::optional<KeyCodec::Entry> entry = codec.decode(k, d);
    const std::optional<Payload> payload = entry ? split_payload(entry->payload) : std::nullopt;
    if (!payload || seq_key.mv_size != detail::kSeqBytes ||
        payload->seq != detail::load_u64(static_cast<const char*>(seq_key.mv_data))) {
      throw_lmdb_corruption("malformed record or order entry", context);
    }
    fn(entry->key, checked_value(payload->text, entry->key, context));
    rc = mdb_cursor_get(cursor.get(), &seq_key, &lmdb_key, MDB_NEXT);
  }
  if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read", context);
}

struct CursorCloser {
  void operator()(MDB_cursor* cursor) const noexcept { mdb_cursor_close(cursor); }
};

// Per collection of a write batch: its handles, the next sequence number and a
// cursor parked at the end of the order database. LMDB's MDB_APPEND through a cursor
// that sits on the last leaf skips the descent (as mdb_load does), so a run of
// inserts appends to the order database for almost nothing. The cursor is dropped
// when the collection's order database is changed by other means (a remove), so an
// append never trusts a stale position.
struct CollectionWriter {
  std::optional<detail::CollectionDbs> dbs;
  bool looked_up = false;
  std::optional<std::uint64_t> next_seq;  // read once per transaction, then counted
  std::unique_ptr<MDB_cursor, CursorCloser> order_cursor;  // closed before the commit

  MDB_cursor* cursor(MDB_txn* txn, const LmdbErrorContext& context) {
    if (!order_cursor) {
      MDB_cursor* c = nullptr;
      const int rc = mdb_cursor_open(txn, dbs->order, &c);
      if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open cursor", context);
      order_cursor.reset(c);
    }
    return order_cursor.get();
  }

  // One more than the last order entry (0 for an empty collection). Sequence numbers
  // of entries removed from the end are reused, which keeps the order: nothing
  // refers to them any more.
  std::uint64_t take_seq(MDB_txn* txn, const LmdbErrorContext& context) {
    if (!next_seq) {
      MDB_val k;
      MDB_val d;
      const int rc = mdb_cursor_get(cursor(txn, context), &k, &d, MDB_LAST);
      if (rc == MDB_NOTFOUND) {
        next_seq = 0;
      } else if (rc != MDB_SUCCESS) {
        throw_lmdb_error(rc, "read order", context);
      } else if (k.mv_size != detail::kSeqBytes) {
        throw_lmdb_corruption("malformed order entry", context);
      } else {
        const std::uint64_t last = detail::load_u64(static_cast<const char*>(k.mv_data));
        if (last == UINT64_MAX) throw_lmdb_corruption("sequence numbers exhausted", context);
        next_seq = last + 1;
      }
    }
    return (*next_seq)++;
  }

  void put(MDB_txn* txn, std::string_view key, std::string_view text, std::string& lmdb_key,
           const LmdbErrorContext& context) {
    char old_seq[detail::kSeqBytes];
    const KeyCodec::Reserved r = KeyCodec().reserve(
        txn, dbs->keys, key, detail::kSeqBytes + text.size(), old_seq, &lmdb_key, context);
    if (r.existed) {  // an overwrite keeps its place: same sequence number
      std::memcpy(r.payload, old_seq, detail::kSeqBytes);
      std::memcpy(r.payload + detail::kSeqBytes, text.data(), text.size());
      return;
    }
    const std::uint64_t seq = take_seq(txn, context);
    detail::store_u64(r.payload, seq);
    std::memcpy(r.payload + detail::kSeqBytes, text.data(), text.size());
    char seq_bytes[detail::kSeqBytes];
    detail::store_u64(seq_bytes, seq);
    MDB_val k{detail::kSeqBytes, seq_bytes};
    MDB_val d = as_val(lmdb_key);
    const int rc = mdb_cursor_put(cursor(txn, context), &k, &d, MDB_APPEND);
    if (rc == MDB_KEYEXIST) throw_lmdb_corruption("order entries out of sequence", context);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "put", context);
  }

  bool remove(MDB_txn* txn, std::string_view key, const LmdbErrorContext& context) {
    char seq_bytes[detail::kSeqBytes];
    if (!KeyCodec().remove(txn, dbs->keys, key, seq_bytes, context)) return false;
    order_cursor.reset();  // its position may not survive the delete
    MDB_val k{detail::kSeqBytes, seq_bytes};
    const int rc = mdb_del(txn, dbs->order, &k, nullptr);
    if (rc == MDB_NOTFOUND) {
      throw_lmdb_corruption(
          "the record of key '" + std::string(key.substr(0, 120)) + "' has no order entry",
          context);
    }
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "delete", context);
    return true;
  }
};

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
    size_hint += op.key.size() + (op.value ? op.value->size() : 0) + 96;
  }
  const std::span<const std::string> names = batch.collections();
  env_->write(names, size_hint, [&](detail::WriteTxn& txn) {
    std::vector<CollectionWriter> writers(names.size());  // fresh for every attempt
    std::string lmdb_key;
    for (const WriteBatch::Op& op : batch.ops()) {
      const std::string& name = names[op.collection];
      CollectionWriter& w = writers[op.collection];
      const LmdbErrorContext context = env_->context().with_collection(name);
      if (op.value) {
        if (!w.dbs) w.dbs = txn.collection(name, /*create=*/true);
        w.put(txn.get(), op.key, op.value->text(), lmdb_key, context);
      } else {
        if (!w.dbs && !w.looked_up) w.dbs = txn.collection(name, /*create=*/false);
        w.looked_up = true;
        if (w.dbs) w.remove(txn.get(), op.key, context);
      }
    }
  });
}

std::optional<EncodedValue> LmdbKVStore::get_encoded(std::string_view key,
                                                     std::string_view collection) {
  const std::optional<detail::CollectionDbs> dbs = env_->find_collection(collection);
  if (!dbs) return std::nullopt;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  ReadTxn txn(*env_);
  const std::optional<std::string_view> payload =
      KeyCodec().get(txn.get(), dbs->keys, key, context);  // one B-tree lookup
  if (!payload) return std::nullopt;
  const std::optional<Payload> record = split_payload(*payload);
  if (!record) throw_lmdb_corruption("record too short", context);
  return copy_value(checked_value(record->text, key, context));
}

std::vector<EncodedKeyValue> LmdbKVStore::get_all_encoded(std::string_view collection) {
  std::vector<EncodedKeyValue> out;
  const std::optional<detail::CollectionDbs> dbs = env_->find_collection(collection);
  if (!dbs) return out;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  ReadTxn txn(*env_);
  MDB_stat stat{};
  if (mdb_stat(txn.get(), dbs->keys, &stat) == MDB_SUCCESS) out.reserve(stat.ms_entries);
  walk(txn.get(), *dbs, context, [&](std::string_view key, std::string_view text) {
    out.emplace_back(std::string(key), copy_value(text));
  });
  return out;
}

void LmdbKVStore::scan(std::string_view collection, const ScanVisitor& visit) {
  const std::optional<detail::CollectionDbs> dbs = env_->find_collection(collection);
  if (!dbs) return;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  ReadTxn txn(*env_);
  walk(txn.get(), *dbs, context, visit);
}

std::uint64_t LmdbKVStore::count(std::string_view collection) {
  const std::optional<detail::CollectionDbs> dbs = env_->find_collection(collection);
  if (!dbs) return 0;
  ReadTxn txn(*env_);
  MDB_stat stat{};
  const int rc = mdb_stat(txn.get(), dbs->keys, &stat);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "count", env_->context().with_collection(collection));
  return stat.ms_entries;
}

bool LmdbKVStore::remove(std::string_view key, std::string_view collection) {
  check_writable();
  if (!env_->find_collection(collection)) return false;  // never creates a collection
  const std::string name(collection);
  bool removed = false;
  env_->write(std::span<const std::string>(&name, 1), key.size() + 96, [&](detail::WriteTxn& txn) {
    CollectionWriter w;
    w.dbs = txn.collection(name, /*create=*/false);
    removed = w.dbs && w.remove(txn.get(), key, env_->context().with_collection(name));
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
    std::map<std::string, detail::CollectionDbs> handles;
    for (const std::string& name : collections()) {
      const std::optional<detail::CollectionDbs> dbs = env_->find_collection(name);
      if (!dbs) {
        throw_lmdb_corruption("the catalogue lists the collection in its order records only",
                              context.with_collection(name));
      }
      handles.emplace(name, *dbs);
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

    // Every named database is the catalogue or one of the two databases of a listed
    // collection, and vice versa.
    {
      std::map<std::string, std::uint64_t> expected;
      for (const auto& entry : order) {
        expected.emplace(detail::collection_db_name(entry.first), entry.first);
        expected.emplace(detail::order_db_name(entry.first), entry.first);
      }
      MDB_dbi main = 0;
      int rc = mdb_dbi_open(txn.get(), nullptr, 0, &main);
      if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open main database", context);
      LmdbCursor cursor(txn.get(), main, context);
      MDB_val k;
      MDB_val d;
      for (rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST); rc == MDB_SUCCESS;
           rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
        const std::string_view name = as_view(k);
        if (name == detail::kCatalogueName) continue;
        auto it = expected.find(std::string(name));
        if (it == expected.end()) {
          throw_lmdb_corruption("database '" + std::string(name) + "' is not in the catalogue",
                                context);
        }
        expected.erase(it);
      }
      if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read main database", context);
      if (!expected.empty()) {
        throw_lmdb_corruption(
            "the collection's database " + expected.begin()->first + " is missing",
            context.with_collection(order.at(expected.begin()->second)));
      }
    }

    // Every record of every collection, and its order entry.
    const KeyCodec codec;
    for (const auto& [id, name] : order) {
      const LmdbErrorContext where = context.with_collection(name);
      const detail::CollectionDbs& dbs = handles.at(name);
      LmdbCursor cursor(txn.get(), dbs.keys, where);
      MDB_val k;
      MDB_val d;
      std::uint64_t records = 0;
      int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST);
      for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
        ++records;
        const std::optional<KeyCodec::Entry> entry = codec.decode(k, d);
        if (!entry) throw_lmdb_corruption("malformed record", where);
        const std::string shown = std::string(entry->key.substr(0, 120));
        if (!codec.placed_correctly(k, entry->key)) {
          throw_lmdb_corruption("key '" + shown + "' is stored under the wrong LMDB key", where);
        }
        const std::optional<Payload> payload = split_payload(entry->payload);
        if (!payload)
          throw_lmdb_corruption("the record of key '" + shown + "' is too short", where);
        // The order entry of the record's sequence number points back at the record.
        char seq_bytes[detail::kSeqBytes];
        detail::store_u64(seq_bytes, payload->seq);
        MDB_val seq_key{detail::kSeqBytes, seq_bytes};
        MDB_val back;
        const int found = mdb_get(txn.get(), dbs.order, &seq_key, &back);
        if (found != MDB_SUCCESS && found != MDB_NOTFOUND) throw_lmdb_error(found, "read", where);
        if (found == MDB_NOTFOUND || as_view(back) != as_view(k)) {
          throw_lmdb_corruption("key '" + shown + "' has no order entry (sequence number " +
                                    std::to_string(payload->seq) + ")",
                                where);
        }
        try {
          if (EncodedValue::parse(payload->text).text() != payload->text) {
            throw_lmdb_corruption("the value of key '" + shown + "' is not canonical", where);
          }
        } catch (const Error& e) {
          if (e.code() == ErrorCode::kCorruption) throw;
          throw_lmdb_corruption(
              "the value of key '" + shown + "' is not a JSON object: " + e.what(), where);
        }
      }
      if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read", where);
      // Every record has its own order entry (they point back at distinct records),
      // so equal counts mean the order database holds nothing else.
      MDB_stat stat{};
      rc = mdb_stat(txn.get(), dbs.order, &stat);
      if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "read order", where);
      if (stat.ms_entries != records) {
        throw_lmdb_corruption("the order database has " + std::to_string(stat.ms_entries) +
                                  " entries for " + std::to_string(records) + " records",
                              where);
      }
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
