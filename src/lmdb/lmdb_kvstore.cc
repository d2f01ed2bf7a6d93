#include "kvdex/lmdb_kvstore.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "core/json_codec.h"
#include "core/scheme_registry.h"
#include "kvdex/error.h"
#include "kvdex/filesystem.h"
#include "kvdex/json.h"
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

// A stored value is EncodedValue text. On the read path only its shape is checked:
// the full single-pass check (detail::is_dumps_object) costs about 1.6 us per 1.6 KB
// value, more than doubling get_encoded and making scan 8x slower (docs/lmdb.md,
// "Checking values"); consumers that hand text on check it where it leaves kvdex
// (the kvdex CLI, the Python package's decoder, EncodedValue::decode), and verify()
// parses every value. Debug builds check fully here, as EncodedValue::adopt_canonical
// would (it reports a broken claim as kInternal, but damaged stored data is
// kCorruption naming the store and key).
std::string_view checked_value(std::string_view text, std::string_view key,
                               const LmdbErrorContext& context) {
#ifdef NDEBUG
  constexpr bool kCheckFully = false;
#else
  constexpr bool kCheckFully = true;
#endif
  if (text.size() < 2 || text.front() != '{' || text.back() != '}' ||
      (kCheckFully && !json::is_dumps_object(text))) [[unlikely]] {
    throw_lmdb_corruption(
        "the value of key '" + detail::escape_for_message(key) + "' is not JSON object text",
        context);
  }
  return text;
}

// A key handed out by get_all_encoded or scan is text (WriteBatch::put refuses other
// keys, so one that is not was written by an older kvdex or damaged).
void check_key(std::string_view key, const LmdbErrorContext& context) {
  if (!detail::is_wtf8(key)) [[unlikely]]
    throw_lmdb_corruption(detail::describe_invalid_name(key, "key"), context);
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

// The collection's counters, from its catalogue record (zero if absent).
detail::CollectionCounters read_counters(MDB_txn* txn, MDB_dbi catalogue, std::uint64_t id,
                                         const LmdbErrorContext& context) {
  const std::string record_key = detail::seq_record_key(id);
  MDB_val k = as_val(record_key);
  MDB_val d;
  const int rc = mdb_get(txn, catalogue, &k, &d);
  if (rc == MDB_NOTFOUND) return {};
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "read catalogue", context);
  const std::optional<detail::CollectionCounters> counters = detail::decode_counters(as_view(d));
  if (!counters) throw_lmdb_corruption("malformed sequence record in the catalogue", context);
  return *counters;
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
// walk of the collection's keyspace, then the entries put in sequence-number order.
// `expected` (the catalogue's count) sizes the buffer.
template <class Fn>
void walk(MDB_txn* txn, const detail::CollectionHandle& handle, std::uint64_t expected,
          const LmdbErrorContext& context, Fn&& fn) {
  const KeyCodec codec = handle.codec();
  std::vector<OrderedEntry> entries;
  // A damaged count must not make us allocate the world.
  entries.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(expected, 1u << 24)));
  LmdbCursor cursor(txn, handle.dbi, context);
  MDB_val k = as_val(codec.tag());
  MDB_val d;
  int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_SET_RANGE);
  for (; rc == MDB_SUCCESS && codec.owns(k); rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
    const std::optional<KeyCodec::Entry> entry = codec.decode(k, d);
    const std::optional<Payload> payload = entry ? split_payload(entry->payload) : std::nullopt;
    if (!payload) throw_lmdb_corruption("malformed record", context);
    entries.push_back({payload->seq, entry->key, payload->text});
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read", context);
  if (entries.size() >= UINT32_MAX) {
    throw Error(ErrorCode::kNotSupported,
                detail::lmdb_error_subject(context) + ": over 4 billion entries in a collection");
  }
  into_insertion_order(entries, context);
  for (const OrderedEntry& e : entries) {
    check_key(e.key, context);
    fn(e.key, checked_value(e.text, e.key, context));
  }
}

// Per collection of a write transaction: its handle and its counters, read from the
// catalogue at the first insert or removal and written back once, at the end. A new
// key is then one insert into the data database, as in raw LMDB (format 2 kept a
// second B-tree of sequence numbers and wrote twice the pages per commit).
struct CollectionWriter {
  std::optional<detail::CollectionHandle> handle;
  bool looked_up = false;
  std::optional<detail::CollectionCounters> counters;  // read once per transaction
  bool changed = false;

  detail::CollectionCounters& load(MDB_txn* txn, MDB_dbi catalogue,
                                   const LmdbErrorContext& context) {
    if (!counters) counters = read_counters(txn, catalogue, handle->id, context);
    return *counters;
  }

  std::uint64_t take_seq(MDB_txn* txn, MDB_dbi catalogue, const LmdbErrorContext& context) {
    detail::CollectionCounters& c = load(txn, catalogue, context);
    if (c.next_seq == UINT64_MAX) throw_lmdb_corruption("sequence numbers exhausted", context);
    changed = true;
    ++c.count;
    return c.next_seq++;
  }

  void put(MDB_txn* txn, MDB_dbi catalogue, std::string_view key, std::string_view text,
           const LmdbErrorContext& context) {
    char old_seq[detail::kSeqBytes];
    const KeyCodec::Reserved r = handle->codec().reserve(
        txn, handle->dbi, key, detail::kSeqBytes + text.size(), old_seq, nullptr, context);
    if (r.existed) {  // an overwrite keeps its place: same sequence number
      std::memcpy(r.payload, old_seq, detail::kSeqBytes);
    } else {
      detail::store_u64(r.payload, take_seq(txn, catalogue, context));
    }
    std::memcpy(r.payload + detail::kSeqBytes, text.data(), text.size());
  }

  bool remove(MDB_txn* txn, MDB_dbi catalogue, std::string_view key,
              const LmdbErrorContext& context) {
    char seq_bytes[detail::kSeqBytes];
    if (!handle->codec().remove(txn, handle->dbi, key, seq_bytes, context)) return false;
    detail::CollectionCounters& c = load(txn, catalogue, context);
    if (c.count == 0) {
      throw_lmdb_corruption("the catalogue counts fewer keys than the collection holds", context);
    }
    --c.count;
    changed = true;
    return true;
  }

  // Writes the counters back to the catalogue, before the commit.
  void finish(MDB_txn* txn, MDB_dbi catalogue, const LmdbErrorContext& context) const {
    if (!changed) return;
    const std::string record_key = detail::seq_record_key(handle->id);
    const std::string value = detail::encode_counters(*counters);
    MDB_val k = as_val(record_key);
    MDB_val d = as_val(value);
    const int rc = mdb_put(txn, catalogue, &k, &d, 0);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "put", context);
  }
};

// ---- verify() ---------------------------------------------------------------------

// The catalogue's records, decoded (each record's own shape already checked).
struct CatalogueRecords {
  std::optional<std::string> format;
  std::optional<std::uint64_t> next_id;
  std::map<std::uint64_t, std::string> order;                       // collection id -> name
  std::map<std::string, std::uint64_t> by_name;                     // name -> collection id
  std::map<std::uint64_t, detail::CollectionCounters> counters_of;  // collection id -> counters
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
    const std::optional<detail::CollectionCounters> counters = detail::decode_counters(as_view(d));
    if (!id || !counters) {
      throw_lmdb_corruption("malformed sequence record in the catalogue", context);
    }
    out.counters_of.emplace(*id, *counters);
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

// The format and next-id records exist, order and name records are one bijection
// between ids below the next id and names, and every sequence record belongs to a
// listed collection.
void check_catalogue(const CatalogueRecords& records, const LmdbErrorContext& context) {
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
    if (!detail::is_wtf8(name)) {
      throw_lmdb_corruption(
          "the catalogue lists a " + detail::describe_invalid_name(name, "collection name"),
          context);
    }
    auto it = records.by_name.find(name);
    if (it == records.by_name.end() || it->second != id || id >= *records.next_id) {
      throw_lmdb_corruption("order and name records of the catalogue disagree",
                            context.with_collection(name));
    }
  }
  for (const auto& [id, counters] : records.counters_of) {
    if (!records.order.contains(id)) {
      throw_lmdb_corruption("the catalogue has a sequence record for collection id " +
                                std::to_string(id) + ", which it does not list",
                            context);
    }
  }
}

// The main database names exactly the catalogue and the data database.
void check_named_databases(MDB_txn* txn, const LmdbErrorContext& context) {
  MDB_dbi main = 0;
  int rc = mdb_dbi_open(txn, nullptr, 0, &main);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open main database", context);
  LmdbCursor cursor(txn, main, context);
  MDB_val k;
  MDB_val d;
  for (rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST); rc == MDB_SUCCESS;
       rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
    const std::string_view name = as_view(k);
    if (name != detail::kCatalogueName && name != detail::kDataName) {
      throw_lmdb_corruption(
          "the store holds a database kvdex does not write: '" + shorten_for_message(name) + "'",
          context);
    }
  }
  if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read main database", context);
}

// The value text is what json.dumps writes for an object (repeated keys included:
// Python writes {1: "a", "1": "b"} with two "1" members, and so does kvdex).
void check_canonical_value(std::string_view text, const std::string& shown,
                           const LmdbErrorContext& where) {
  if (json::is_dumps_object(text)) return;
  try {
    (void)EncodedValue::parse(text);
  } catch (const Error& e) {
    throw_lmdb_corruption("the value of key '" + shown + "' is not a JSON object: " + e.what(),
                          where);
  }
  throw_lmdb_corruption("the value of key '" + shown + "' is not canonical", where);
}

// One collection's records met so far by the walk of the data database.
struct CollectionTally {
  std::uint64_t id = 0;
  std::string_view name;
  detail::CollectionCounters counters;  // the catalogue's
  std::vector<std::uint64_t> seqs;      // to find duplicates
};

void finish_tally(CollectionTally& tally, const LmdbErrorContext& where) {
  if (tally.seqs.size() != tally.counters.count) {
    throw_lmdb_corruption("the catalogue counts " + std::to_string(tally.counters.count) +
                              " keys but the collection holds " + std::to_string(tally.seqs.size()),
                          where);
  }
  std::sort(tally.seqs.begin(), tally.seqs.end());
  const auto duplicate = std::adjacent_find(tally.seqs.begin(), tally.seqs.end());
  if (duplicate != tally.seqs.end()) {
    throw_lmdb_corruption("two records share sequence number " + std::to_string(*duplicate), where);
  }
}

// Every record of the data database: tagged with a listed collection, placed under
// its key, canonical, with a sequence number of its own below the collection's next
// one; and each collection holds as many keys as the catalogue counts.
void check_data_records(MDB_txn* txn, MDB_dbi data, const CatalogueRecords& records,
                        const LmdbErrorContext& context) {
  std::map<std::uint64_t, std::uint64_t> counted;  // id -> records met
  std::optional<CollectionTally> tally;
  auto close_tally = [&] {
    if (!tally) return;
    finish_tally(*tally, context.with_collection(tally->name));
    counted.emplace(tally->id, tally->seqs.size());
  };
  LmdbCursor cursor(txn, data, context);
  MDB_val k;
  MDB_val d;
  int rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_FIRST);
  for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT)) {
    if (k.mv_size < detail::kCollectionTagBytes) {
      throw_lmdb_corruption("the data database holds a key without a collection id", context);
    }
    const std::uint64_t id = detail::load_u64(static_cast<const char*>(k.mv_data));
    if (!tally || tally->id != id) {
      close_tally();
      const auto listed = records.order.find(id);
      if (listed == records.order.end()) {
        throw_lmdb_corruption("the data database holds records of collection id " +
                                  std::to_string(id) + ", which the catalogue does not list",
                              context);
      }
      const auto counters = records.counters_of.find(id);
      tally = CollectionTally{
          id,
          listed->second,
          counters == records.counters_of.end() ? detail::CollectionCounters{} : counters->second,
          {}};
    }
    const LmdbErrorContext where = context.with_collection(tally->name);
    const KeyCodec codec(
        std::string_view(static_cast<const char*>(k.mv_data), detail::kCollectionTagBytes));
    const std::optional<KeyCodec::Entry> entry = codec.decode(k, d);
    if (!entry) throw_lmdb_corruption("malformed record", where);
    const std::string shown = detail::escape_for_message(entry->key);
    if (!codec.placed_correctly(k, entry->key)) {
      throw_lmdb_corruption("key '" + shown + "' is stored under the wrong LMDB key", where);
    }
    const std::optional<Payload> payload = split_payload(entry->payload);
    if (!payload) throw_lmdb_corruption("the record of key '" + shown + "' is too short", where);
    if (payload->seq >= tally->counters.next_seq) {
      throw_lmdb_corruption("key '" + shown + "' has sequence number " +
                                std::to_string(payload->seq) +
                                ", not below the collection's next (" +
                                std::to_string(tally->counters.next_seq) + ")",
                            where);
    }
    check_key(entry->key, where);
    check_canonical_value(payload->text, shown, where);
    tally->seqs.push_back(payload->seq);
  }
  if (rc != MDB_NOTFOUND) throw_lmdb_error(rc, "read", context);
  close_tally();
  for (const auto& [id, counters] : records.counters_of) {
    if (!counted.contains(id) && counters.count != 0) {
      throw_lmdb_corruption("the catalogue counts " + std::to_string(counters.count) +
                                " keys but the collection holds none",
                            context.with_collection(records.order.at(id)));
    }
  }
}

// Everything verify() checks, in the snapshot `txn`. `stage` hears what is walked
// next (so a crash can be placed).
void verify_snapshot(MDB_txn* txn, const LmdbErrorContext& context,
                     const std::function<void(const std::string&)>& stage) {
  stage("the main database");
  check_named_databases(txn, context);
  MDB_dbi catalogue = 0;
  int rc = mdb_dbi_open(txn, std::string(detail::kCatalogueName).c_str(), 0, &catalogue);
  if (rc == MDB_NOTFOUND) return;  // nothing was ever written (the names were checked)
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open catalogue", context);
  MDB_dbi data = 0;
  rc = mdb_dbi_open(txn, std::string(detail::kDataName).c_str(), 0, &data);
  if (rc == MDB_NOTFOUND) throw_lmdb_corruption("the data database is missing", context);
  if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open data database", context);
  stage("the catalogue");
  const CatalogueRecords records = read_catalogue(txn, catalogue, context);
  check_catalogue(records, context);
  stage("the data database");
  check_data_records(txn, data, records, context);
}

// The child's report to the parent, through a pipe: records of a type byte, a u32
// length and that many bytes. 's' is the stage being walked; 'a' an LMDB assertion;
// 'e' an Error (first byte its code); 'o' the store is sound.
int verify_report_fd = -1;
constexpr int kChildAssertionExit = 86;

void send_report(char type, std::string_view body) noexcept {
  std::string record(5, '\0');
  record[0] = type;
  const auto n = static_cast<std::uint32_t>(body.size());
  std::memcpy(record.data() + 1, &n, 4);
  record.append(body);
  std::size_t done = 0;
  while (done < record.size()) {
    const ssize_t w = ::write(verify_report_fd, record.data() + done, record.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    done += static_cast<std::size_t>(w);
  }
}

// In the child, an assertion is a finding: report it and end there (LMDB would print
// and abort, perhaps dumping core).
void report_assertion_to_parent(MDB_env*, const char* message) {
  send_report('a', message != nullptr ? message : "?");
  ::_exit(kChildAssertionExit);
}

// The child of verify(): opens the store afresh (an environment must not be used
// across fork()), checks one snapshot and reports. Never returns.
[[noreturn]] void verify_in_child(const std::string& path, unsigned max_readers, int fd) {
  verify_report_fd = fd;
  // The library prints nothing, not even from its child; and a child killed by a
  // fault leaves no core file behind.
  const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDERR_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
  }
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  const LmdbErrorContext context{path, {}, false};
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  try {
    int rc = mdb_env_create(&env);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "create environment", context);
    mdb_env_set_assert(env, &report_assertion_to_parent);
    rc = mdb_env_set_maxdbs(env, 2);
    if (rc == MDB_SUCCESS) rc = mdb_env_set_maxreaders(env, max_readers);
    if (rc == MDB_SUCCESS) rc = mdb_env_open(env, path.c_str(), MDB_RDONLY | MDB_NOTLS, 0644);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "open", context);
    rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS) throw_lmdb_error(rc, "begin read transaction", context);
    verify_snapshot(txn, context, [](const std::string& stage) { send_report('s', stage); });
    send_report('o', {});
  } catch (const Error& e) {
    send_report('e', std::string(1, static_cast<char>(e.code())) + e.what());
  } catch (const std::exception& e) {
    send_report('e', std::string(1, static_cast<char>(ErrorCode::kInternal)) + e.what());
  }
  if (txn != nullptr) mdb_txn_abort(txn);  // frees the reader slot
  if (env != nullptr) mdb_env_close(env);
  ::_exit(0);
}

// What the child said and how it ended.
struct ChildOutcome {
  std::string stage;      // the last stage it announced
  std::string assertion;  // an LMDB assertion it met
  std::optional<Error> error;
  bool sound = false;
  int status = 0;  // waitpid's
};

ChildOutcome read_child_report(int fd) {
  std::string bytes;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(buf, static_cast<std::size_t>(n));
  }
  ChildOutcome out;
  std::size_t at = 0;
  while (bytes.size() - at >= 5) {
    const char type = bytes[at];
    std::uint32_t n = 0;
    std::memcpy(&n, bytes.data() + at + 1, 4);
    if (bytes.size() - at - 5 < n) break;  // cut short by the child's death
    const std::string body = bytes.substr(at + 5, n);
    at += 5 + n;
    if (type == 's') {
      out.stage = body;
    } else if (type == 'a') {
      out.assertion = body;
    } else if (type == 'e' && !body.empty()) {
      out.error.emplace(static_cast<ErrorCode>(static_cast<unsigned char>(body[0])),
                        body.substr(1));
    } else if (type == 'o') {
      out.sound = true;
    }
  }
  return out;
}

}  // namespace

LmdbKVStore::LmdbKVStore(const std::string& path, const LmdbOptions& options)
    // Before LMDB sees the path: it would stop at the NUL and open another store.
    : path_((check_no_nul(path, "lmdb store path"), path)),
      read_only_(options.read_only),
      env_(detail::LmdbEnv::acquire(path, options)) {}

LmdbKVStore::~LmdbKVStore() { wait_for_pending_operations(); }

void LmdbKVStore::check_open() const {
  if (closed_.load(std::memory_order_acquire)) [[unlikely]] {
    throw Error(ErrorCode::kFailedPrecondition, "lmdb store '" + path_ + "' is closed");
  }
}

void LmdbKVStore::close() {
  if (closed_.load(std::memory_order_acquire)) return;
  wait_for_pending_operations();
  flush();
  closed_.store(true, std::memory_order_release);
}

void LmdbKVStore::check_writable() const {
  check_open();
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
        if (w.handle) w.remove(txn.get(), catalogue, op.key, context);
      }
    }
    for (std::size_t i = 0; i < writers.size(); ++i) {
      writers[i].finish(txn.get(), catalogue, env_->context().with_collection(names[i]));
    }
  });
}

std::optional<EncodedValue> LmdbKVStore::get_encoded(std::string_view key,
                                                     std::string_view collection) {
  check_open();
  const std::optional<detail::CollectionHandle> handle = env_->find_collection(collection);
  if (!handle) return std::nullopt;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  ReadTxn txn(*env_);
  const std::optional<std::string_view> payload =
      handle->codec().get(txn.get(), handle->dbi, key, context);  // one B-tree lookup
  if (!payload) return std::nullopt;
  const std::optional<Payload> record = split_payload(*payload);
  if (!record) throw_lmdb_corruption("record too short", context);
  return copy_value(checked_value(record->text, key, context));
}

std::vector<EncodedKeyValue> LmdbKVStore::get_all_encoded(std::string_view collection) {
  check_open();
  std::vector<EncodedKeyValue> out;
  const std::optional<detail::CollectionHandle> handle = env_->find_collection(collection);
  if (!handle) return out;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  const MDB_dbi catalogue = *env_->catalogue();  // a collection exists: so does the catalogue
  ReadTxn txn(*env_);
  const std::uint64_t expected = read_counters(txn.get(), catalogue, handle->id, context).count;
  out.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(expected, 1u << 24)));
  walk(txn.get(), *handle, expected, context, [&](std::string_view key, std::string_view text) {
    out.emplace_back(std::string(key), copy_value(text));
  });
  return out;
}

void LmdbKVStore::scan(std::string_view collection, const ScanVisitor& visit) {
  check_open();
  const std::optional<detail::CollectionHandle> handle = env_->find_collection(collection);
  if (!handle) return;
  const LmdbErrorContext context = env_->context().with_collection(collection);
  const MDB_dbi catalogue = *env_->catalogue();
  ReadTxn txn(*env_);
  const std::uint64_t expected = read_counters(txn.get(), catalogue, handle->id, context).count;
  walk(txn.get(), *handle, expected, context, visit);
}

std::uint64_t LmdbKVStore::count(std::string_view collection) {
  check_open();
  const std::optional<detail::CollectionHandle> handle = env_->find_collection(collection);
  if (!handle) return 0;
  const MDB_dbi catalogue = *env_->catalogue();
  ReadTxn txn(*env_);
  return read_counters(txn.get(), catalogue, handle->id,
                       env_->context().with_collection(collection))
      .count;
}

bool LmdbKVStore::remove(std::string_view key, std::string_view collection) {
  check_writable();
  if (!env_->find_collection(collection)) return false;  // never creates a collection
  const std::string name(collection);
  bool removed = false;
  env_->write(std::span<const std::string>(&name, 1), key.size() + 96, [&](detail::WriteTxn& txn) {
    CollectionWriter w;
    w.handle = txn.collection(name, /*create=*/false);
    const LmdbErrorContext context = env_->context().with_collection(name);
    removed = w.handle && w.remove(txn.get(), txn.catalogue(), key, context);
    if (removed) w.finish(txn.get(), txn.catalogue(), context);
  });
  return removed;
}

std::vector<std::string> LmdbKVStore::collections() {
  check_open();
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
    if (!detail::is_wtf8(as_view(d))) [[unlikely]] {
      throw_lmdb_corruption(
          "the catalogue lists a " + detail::describe_invalid_name(as_view(d), "collection name"),
          context);
    }
    names.emplace_back(as_view(d));
    rc = mdb_cursor_get(cursor.get(), &k, &d, MDB_NEXT);
  }
  if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) throw_lmdb_error(rc, "list collections", context);
  return names;
}

void LmdbKVStore::flush() {
  check_open();
  if (!read_only_) env_->sync();
}

std::size_t LmdbKVStore::clear_stale_readers() {
  check_open();
  return env_->clear_stale_readers();
}

LmdbStats LmdbKVStore::stats() {
  check_open();
  return env_->stats();
}

// The walk runs in a child process: LMDB follows page numbers and node offsets without
// checking them, so a damaged page can make it fail an assert() (abort) or read
// outside the map (SIGSEGV, or SIGBUS past the end of a truncated file). In the
// child, that ends the child; here it becomes kCorruption, and the caller lives on.
void LmdbKVStore::verify() {
  check_open();
  const LmdbErrorContext context = env_->context();
  env_->check_data_file_size();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, "verify: cannot create a pipe for", path_);
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw_errno(err, "verify: cannot start the checking process for", path_);
  }
  if (pid == 0) {
    ::close(fds[0]);
    verify_in_child(path_, env_->stats().max_readers, fds[1]);
  }
  ::close(fds[1]);
  ChildOutcome outcome = read_child_report(fds[0]);
  ::close(fds[0]);
  while (::waitpid(pid, &outcome.status, 0) < 0 && errno == EINTR) {
  }
  try {
    clear_stale_readers();  // a child that died holds a reader slot
  } catch (const Error&) {
    // The report below matters more; the slot is cleared by the next check anyway.
  }
  if (WIFEXITED(outcome.status) && WEXITSTATUS(outcome.status) == 0) {
    if (outcome.error) throw *outcome.error;
    if (outcome.sound) return;
  }
  std::string what = "verify: the walk of " +
                     (outcome.stage.empty() ? std::string("the store") : outcome.stage) + " ";
  if (!outcome.assertion.empty()) {
    what += "failed LMDB's assertion '" + outcome.assertion + "'";
  } else if (WIFSIGNALED(outcome.status)) {
    what += "died of signal " + std::to_string(WTERMSIG(outcome.status)) + " (" +
            strsignal(WTERMSIG(outcome.status)) + ")";
  } else {
    what += "ended without a report (status " + std::to_string(outcome.status) + ")";
  }
  what +=
      ": a page of data.mdb is damaged (zeroed, overwritten or cut off); restore the "
      "store from a copy";
  throw_lmdb_corruption(what, context);
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
