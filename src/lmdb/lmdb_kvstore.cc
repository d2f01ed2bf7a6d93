#include "kvdex/lmdb_kvstore.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "core/scheme_registry.h"
#include "kvdex/error.h"
#include "kvdex/filesystem.h"
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
        "the value of key '" + shorten_for_message(key) + "' is not JSON object text", context);
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

// The collection's next sequence number, from its catalogue record (0 if absent).
std::uint64_t read_next_seq(MDB_txn* txn, MDB_dbi catalogue, std::uint64_t id,
                            const LmdbErrorContext& context) {
  const std::string record_key = detail::seq_record_key(id);
  MDB_val k = as_val(record_key);
  MDB_val d;
  const int rc = mdb_get(txn, catalogue, &k, &d);
  if (rc == MDB_NOTFOUND) return 0;
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "read catalogue", context);
  const std::optional<std::uint64_t> next = detail::decode_u64(as_view(d));
  if (!next) throw_lmdb_corruption("malformed sequence record in the catalogue", context);
  return *next;
}

// One entry of a collection during a read: views into the map, valid in the txn.
struct OrderedEntry {
  std::uint64_t seq;
  std::string_view key;
  std::string_view text;
};

// Puts `entries` (read in key order) into insertion order, i.e. by sequence number.
// Keys often arrive in insertion order already (counters, timestamps, sequential ids):
// then nothing moves. Otherwise sequence numbers are dense (they only grow, and most
// entries are never removed), so a placement by number is linear; sparse numbers fall
// back to a sort. Two entries with one number are corruption.
void into_insertion_order(std::vector<OrderedEntry>& entries, const LmdbErrorContext& context) {
  auto duplicate = [&](std::uint64_t seq) {
    throw_lmdb_corruption("two records share sequence number " + std::to_string(seq), context);
  };
  bool ascending = true;
  std::uint64_t max_seq = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i > 0 && entries[i].seq <= entries[i - 1].seq) ascending = false;
    max_seq = std::max(max_seq, entries[i].seq);
  }
  if (ascending) return;
  if (max_seq / 4 < entries.size() + 1024) {
    constexpr std::uint32_t kEmpty = UINT32_MAX;
    std::vector<std::uint32_t> slot_of_seq(max_seq + 1, kEmpty);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      std::uint32_t& slot = slot_of_seq[entries[i].seq];
      if (slot != kEmpty) duplicate(entries[i].seq);
      slot = static_cast<std::uint32_t>(i);
    }
    std::vector<OrderedEntry> ordered;
    ordered.reserve(entries.size());
    for (const std::uint32_t slot : slot_of_seq) {
      if (slot != kEmpty) ordered.push_back(entries[slot]);
    }
    entries.swap(ordered);
    return;
  }
  std::sort(entries.begin(), entries.end(),
            [](const OrderedEntry& a, const OrderedEntry& b) { return a.seq < b.seq; });
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].seq == entries[i - 1].seq) duplicate(entries[i].seq);
  }
}

// Calls fn(key, value_text) for every entry of `handle`, in insertion order: one cursor
// walk of the keys database, then the entries put in sequence-number order.
template <class Fn>
void walk(MDB_txn* txn, const detail::CollectionHandle& handle, const LmdbErrorContext& context,
          Fn&& fn) {
  const KeyCodec codec;
  std::vector<OrderedEntry> entries;
  MDB_stat stat{};
  if (mdb_stat(txn, handle.dbi, &stat) == MDB_SUCCESS) entries.reserve(stat.ms_entries);
  if (entries.capacity() >= UINT32_MAX) {
    throw Error(ErrorCode::kNotSupported,
                detail::lmdb_error_subject(context) + ": over 4 billion entries in a collection");
  }
  LmdbCursor cursor(txn, handle.dbi, context);
  MDB_val k;
  MDB_val d;
  int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST);
  for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
    const std::optional<KeyCodec::Entry> entry = codec.decode(k, d);
    const std::optional<Payload> payload = entry ? split_payload(entry->payload) : std::nullopt;
    if (!payload) throw_lmdb_corruption("malformed record", context);
    entries.push_back({payload->seq, entry->key, payload->text});
  }
  if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read", context);
  into_insertion_order(entries, context);
  for (const OrderedEntry& e : entries) fn(e.key, checked_value(e.text, e.key, context));
}

// Per collection of a write transaction: its handle and its next sequence number,
// read from the catalogue at the first insert and written back once, at the end.
// A new key is then one insert into the keys database, as in raw LMDB (format 2 kept
// a second B-tree of sequence numbers and wrote twice the pages per commit).
struct CollectionWriter {
  std::optional<detail::CollectionHandle> handle;
  bool looked_up = false;
  std::optional<std::uint64_t> next_seq;  // read once per transaction, then counted
  bool seq_taken = false;

  std::uint64_t take_seq(MDB_txn* txn, MDB_dbi catalogue, const LmdbErrorContext& context) {
    if (!next_seq) next_seq = read_next_seq(txn, catalogue, handle->id, context);
    if (*next_seq == UINT64_MAX) throw_lmdb_corruption("sequence numbers exhausted", context);
    seq_taken = true;
    return (*next_seq)++;
  }

  void put(MDB_txn* txn, MDB_dbi catalogue, std::string_view key, std::string_view text,
           const LmdbErrorContext& context) {
    char old_seq[detail::kSeqBytes];
    const KeyCodec::Reserved r = KeyCodec().reserve(
        txn, handle->dbi, key, detail::kSeqBytes + text.size(), old_seq, nullptr, context);
    if (r.existed) {  // an overwrite keeps its place: same sequence number
      std::memcpy(r.payload, old_seq, detail::kSeqBytes);
    } else {
      detail::store_u64(r.payload, take_seq(txn, catalogue, context));
    }
    std::memcpy(r.payload + detail::kSeqBytes, text.data(), text.size());
  }

  bool remove(MDB_txn* txn, std::string_view key, const LmdbErrorContext& context) {
    char seq_bytes[detail::kSeqBytes];
    return KeyCodec().remove(txn, handle->dbi, key, seq_bytes, context);
  }

  // Writes the next sequence number back to the catalogue, before the commit.
  void finish(MDB_txn* txn, MDB_dbi catalogue, const LmdbErrorContext& context) const {
    if (!seq_taken) return;
    const std::string record_key = detail::seq_record_key(handle->id);
    const std::string value = detail::encode_u64(*next_seq);
    MDB_val k = as_val(record_key);
    MDB_val d = as_val(value);
    const int rc = mdb_put(txn, catalogue, &k, &d, 0);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "put", context);
  }
};

// ---- verify() ---------------------------------------------------------------------

// The handle of every collection in `names`, by name.
std::map<std::string, detail::CollectionHandle> open_listed_collections(
    detail::LmdbEnv& env, const std::vector<std::string>& names, const LmdbErrorContext& context) {
  std::map<std::string, detail::CollectionHandle> handles;
  for (const std::string& name : names) {
    const std::optional<detail::CollectionHandle> handle = env.find_collection(name);
    if (!handle) {
      throw_lmdb_corruption("the catalogue lists the collection in its order records only",
                            context.with_collection(name));
    }
    handles.emplace(name, *handle);
  }
  return handles;
}

// The catalogue's records, decoded (each record's own shape already checked).
struct CatalogueRecords {
  std::optional<std::string> format;
  std::optional<std::uint64_t> next_id;
  std::map<std::uint64_t, std::string> order;          // collection id -> name
  std::map<std::string, std::uint64_t> by_name;        // name -> collection id
  std::map<std::uint64_t, std::uint64_t> next_seq_of;  // collection id -> next sequence
};

void read_catalogue_record(const KeyCodec& names_codec, const MDB_val& k, const MDB_val& d,
                           CatalogueRecords& out, const LmdbErrorContext& context) {
  const std::string_view key = as_view(k);
  if (key == detail::kFormatKey) {
    out.format = std::string(as_view(d));
  } else if (key == detail::kNextIdKey) {
    out.next_id = detail::decode_u64(as_view(d));
    if (!out.next_id) throw_lmdb_corruption("malformed next-id record in the catalogue", context);
  } else if (key.starts_with(detail::kOrderTag)) {
    const std::optional<std::uint64_t> id = detail::decode_u64(key.substr(1));
    if (!id) throw_lmdb_corruption("malformed order record in the catalogue", context);
    out.order.emplace(*id, std::string(as_view(d)));
  } else if (key.starts_with(detail::kSeqTag)) {
    const std::optional<std::uint64_t> id = detail::decode_u64(key.substr(1));
    const std::optional<std::uint64_t> next = detail::decode_u64(as_view(d));
    if (!id || !next) throw_lmdb_corruption("malformed sequence record in the catalogue", context);
    out.next_seq_of.emplace(*id, *next);
  } else if (names_codec.owns(k)) {
    const std::optional<KeyCodec::Entry> entry = names_codec.decode(k, d);
    const std::optional<std::uint64_t> id =
        entry ? detail::decode_u64(entry->payload) : std::nullopt;
    if (!entry || !id || !names_codec.placed_correctly(k, entry->key)) {
      throw_lmdb_corruption("malformed name record in the catalogue", context);
    }
    if (!out.by_name.emplace(std::string(entry->key), *id).second) {
      throw_lmdb_corruption("the catalogue names a collection twice",
                            context.with_collection(entry->key));
    }
  } else {
    throw_lmdb_corruption("unexpected record in the catalogue", context);
  }
}

CatalogueRecords read_catalogue(MDB_txn* txn, MDB_dbi catalogue, const LmdbErrorContext& context) {
  CatalogueRecords records;
  const KeyCodec names_codec(detail::kNameTag);
  LmdbCursor cursor(txn, catalogue, context);
  MDB_val k;
  MDB_val d;
  int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST);
  for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
    read_catalogue_record(names_codec, k, d, records, context);
  }
  if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read catalogue", context);
  return records;
}

// The format and next-id records exist, and order and name records are one
// bijection between ids below the next id and names.
void check_catalogue_lists_each_collection_once(const CatalogueRecords& records,
                                                const LmdbErrorContext& context) {
  if (records.format != detail::kFormatVersion)
    throw_lmdb_corruption("bad catalogue format record", context);
  if (!records.next_id) throw_lmdb_corruption("the catalogue has no next-id record", context);
  if (records.order.size() != records.by_name.size()) {
    throw_lmdb_corruption("the catalogue has " + std::to_string(records.order.size()) +
                              " order records but " + std::to_string(records.by_name.size()) +
                              " name records",
                          context);
  }
  for (const auto& [id, name] : records.order) {
    auto it = records.by_name.find(name);
    if (it == records.by_name.end() || it->second != id || id >= *records.next_id) {
      throw_lmdb_corruption("order and name records of the catalogue disagree",
                            context.with_collection(name));
    }
  }
}

// False when a collection appeared after the handles were opened.
bool opened_every_listed_collection(
    const CatalogueRecords& records,
    const std::map<std::string, detail::CollectionHandle>& handles) {
  return std::all_of(records.order.begin(), records.order.end(),
                     [&](const auto& entry) { return handles.contains(entry.second); });
}

void check_sequence_records_belong_to_listed_collections(const CatalogueRecords& records,
                                                         const LmdbErrorContext& context) {
  for (const auto& [id, next] : records.next_seq_of) {
    if (!records.order.contains(id)) {
      throw_lmdb_corruption("the catalogue has a sequence record for collection id " +
                                std::to_string(id) + ", which it does not list",
                            context);
    }
  }
}

// Every named database is the catalogue or the database of a listed collection, and
// vice versa.
void check_named_databases_match_the_catalogue(MDB_txn* txn, const CatalogueRecords& records,
                                               const LmdbErrorContext& context) {
  std::map<std::string, std::uint64_t> expected;
  for (const auto& entry : records.order) {
    expected.emplace(detail::collection_db_name(entry.first), entry.first);
  }
  MDB_dbi main = 0;
  int rc = mdb_dbi_open(txn, nullptr, 0, &main);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open main database", context);
  LmdbCursor cursor(txn, main, context);
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
    throw_lmdb_corruption("the collection's database " + expected.begin()->first + " is missing",
                          context.with_collection(records.order.at(expected.begin()->second)));
  }
}

// The value text is what EncodedValue would write for it.
void check_canonical_value(std::string_view text, const std::string& shown,
                           const LmdbErrorContext& where) {
  try {
    if (EncodedValue::parse(text).text() != text) {
      throw_lmdb_corruption("the value of key '" + shown + "' is not canonical", where);
    }
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kCorruption) throw;
    throw_lmdb_corruption("the value of key '" + shown + "' is not a JSON object: " + e.what(),
                          where);
  }
}

// Every record of the collection: placed under its key, canonical, and with a
// sequence number of its own below the collection's next one.
void check_collection_records(MDB_txn* txn, const detail::CollectionHandle& handle,
                              std::uint64_t next_seq, const LmdbErrorContext& where) {
  const KeyCodec codec;
  std::vector<std::uint64_t> seqs;  // to find duplicates
  LmdbCursor cursor(txn, handle.dbi, where);
  MDB_val k;
  MDB_val d;
  int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST);
  for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
    const std::optional<KeyCodec::Entry> entry = codec.decode(k, d);
    if (!entry) throw_lmdb_corruption("malformed record", where);
    const std::string shown = shorten_for_message(entry->key);
    if (!codec.placed_correctly(k, entry->key)) {
      throw_lmdb_corruption("key '" + shown + "' is stored under the wrong LMDB key", where);
    }
    const std::optional<Payload> payload = split_payload(entry->payload);
    if (!payload) throw_lmdb_corruption("the record of key '" + shown + "' is too short", where);
    if (payload->seq >= next_seq) {
      throw_lmdb_corruption(
          "key '" + shown + "' has sequence number " + std::to_string(payload->seq) +
              ", not below the collection's next (" + std::to_string(next_seq) + ")",
          where);
    }
    check_canonical_value(payload->text, shown, where);
    seqs.push_back(payload->seq);
  }
  if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read", where);
  std::sort(seqs.begin(), seqs.end());
  const auto duplicate = std::adjacent_find(seqs.begin(), seqs.end());
  if (duplicate != seqs.end()) {
    throw_lmdb_corruption("two records share sequence number " + std::to_string(*duplicate), where);
  }
}

}  // namespace

LmdbKVStore::LmdbKVStore(const std::string& path, const LmdbOptions& options)
    // Before LMDB sees the path: it would stop at the NUL and open another store.
    : path_((check_no_nul(path, "lmdb store path"), path)),
      read_only_(options.read_only),
      env_(detail::LmdbEnv::acquire(path, options)) {}

LmdbKVStore::~LmdbKVStore() { wait_for_pending_operations(); }

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
    const MDB_dbi catalogue = txn.catalogue();
    for (const WriteBatch::Op& op : batch.ops()) {
      const std::string& name = names[op.collection];
      CollectionWriter& w = writers[op.collection];
      const LmdbErrorContext context = env_->context().with_collection(name);
      if (op.value) {
        if (!w.handle) w.handle = txn.collection(name, /*create=*/true);
        w.put(txn.get(), catalogue, op.key, op.value->text(), context);
      } else {
        if (!w.handle && !w.looked_up) w.handle = txn.collection(name, /*create=*/false);
        w.looked_up = true;
        if (w.handle) w.remove(txn.get(), op.key, context);
      }
    }
    for (std::size_t i = 0; i < writers.size(); ++i) {
      writers[i].finish(txn.get(), catalogue, env_->context().with_collection(names[i]));
    }
  });
}

std::optional<EncodedValue> LmdbKVStore::get_encoded(std::string_view key,
                                                     std::string_view collection) {
  const std::optional<detail::CollectionHandle> handle = env_->find_collection(collection);
  if (!handle) return std::nullopt;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  ReadTxn txn(*env_);
  const std::optional<std::string_view> payload =
      KeyCodec().get(txn.get(), handle->dbi, key, context);  // one B-tree lookup
  if (!payload) return std::nullopt;
  const std::optional<Payload> record = split_payload(*payload);
  if (!record) throw_lmdb_corruption("record too short", context);
  return copy_value(checked_value(record->text, key, context));
}

std::vector<EncodedKeyValue> LmdbKVStore::get_all_encoded(std::string_view collection) {
  std::vector<EncodedKeyValue> out;
  const std::optional<detail::CollectionHandle> handle = env_->find_collection(collection);
  if (!handle) return out;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  ReadTxn txn(*env_);
  MDB_stat stat{};
  if (mdb_stat(txn.get(), handle->dbi, &stat) == MDB_SUCCESS) out.reserve(stat.ms_entries);
  walk(txn.get(), *handle, context, [&](std::string_view key, std::string_view text) {
    out.emplace_back(std::string(key), copy_value(text));
  });
  return out;
}

void LmdbKVStore::scan(std::string_view collection, const ScanVisitor& visit) {
  const std::optional<detail::CollectionHandle> handle = env_->find_collection(collection);
  if (!handle) return;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  ReadTxn txn(*env_);
  walk(txn.get(), *handle, context, visit);
}

std::uint64_t LmdbKVStore::count(std::string_view collection) {
  const std::optional<detail::CollectionHandle> handle = env_->find_collection(collection);
  if (!handle) return 0;
  ReadTxn txn(*env_);
  MDB_stat stat{};
  const int rc = mdb_stat(txn.get(), handle->dbi, &stat);
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
    w.handle = txn.collection(name, /*create=*/false);
    removed = w.handle && w.remove(txn.get(), key, env_->context().with_collection(name));
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
    const std::map<std::string, detail::CollectionHandle> handles =
        open_listed_collections(*env_, collections(), context);
    ReadTxn txn(*env_);
    const CatalogueRecords records = read_catalogue(txn.get(), *catalogue, context);
    check_catalogue_lists_each_collection_once(records, context);
    if (!opened_every_listed_collection(records, handles)) continue;
    check_sequence_records_belong_to_listed_collections(records, context);
    check_named_databases_match_the_catalogue(txn.get(), records, context);
    for (const auto& [id, name] : records.order) {
      const auto next_seq = records.next_seq_of.find(id);
      check_collection_records(txn.get(), handles.at(name),
                               next_seq == records.next_seq_of.end() ? 0 : next_seq->second,
                               context.with_collection(name));
    }
    return;
  }
  throw Error(ErrorCode::kUnavailable,
              detail::lmdb_error_subject(context) + ": verify: collections keep appearing; retry");
}

namespace detail {

// Called by the generated builtin_schemes.cc.
void register_lmdb_scheme() {
  register_builtin_scheme(
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
