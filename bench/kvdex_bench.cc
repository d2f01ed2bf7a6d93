// kvdex_bench — the C++ side of the benchmark harness (bench/run.py drives it).
//
// Every mode prints one JSON object per measurement on stdout:
//   {"impl": ..., "store": ..., "workload": ..., "op": ..., "n": ..., "seconds": ...,
//    "bytes": ..., "rss_mb": ...}
// The workload is read from a persist file written by bench/workloads.py, so the C++
// and Python sides measure the same bytes.
//
//   kvdex_bench store  --uri URI --workload-file F --workload A --collection C [--threads T]
//   kvdex_bench load   --workload-file F --workload A [--persist-dir D]
//                      (a fresh process: peak RSS; then persist what it loaded into D)
//   kvdex_bench open   --uri lmdb:PATH --workload A
//   kvdex_bench raw-simdjson --workload-file F --workload A
//   kvdex_bench raw-write    --dir D --bytes N
//   kvdex_bench raw-lmdb     --dir D --workload-file F --workload A --collection C
//   kvdex_bench raw-redis    --workload-file F --workload A [--redis-host H --redis-port P]
//                            [--put-limit L --sample S --delete-sample D]
//   kvdex_bench kvdex-redis  (the same flags: kvdex's RedisKVStore beside raw-redis)
//   kvdex_bench raw-postgres --workload-file F --workload A [--pg-conninfo "host=... port=..."]
//                            [--put-limit L --sample S --delete-sample D]
//   kvdex_bench redis-store  --uri URI --label L --workload-file F --workload A
//                            [--put-limit L --sample S]   (kvdex's Redis stores, any URI)
//   kvdex_bench kvdex-postgres --workload-file F --workload A [--pg-conninfo ...] [same flags]
//   kvdex_bench kvdex-postgres-scan --workload A --collection C [--pg-conninfo ...]
//   kvdex_bench modes        (the modes this binary was built with, one a line)
//
// The server modes load at most --put-limit pairs (a prefix of the workload) and time
// per-key gets on --sample keys drawn at random from them, deletes on the first
// --delete-sample of those (PostgreSQL commits, so fsyncs, every single delete):
// LlamaIndex's stores, measured beside them, manage about a thousand round trips a
// second, and the default run must stay within minutes. Each row's n says how many keys
// it covers.
#include <fcntl.h>
#include <simdjson.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kvdex/kvdex.h"

#ifdef KVDEX_BENCH_WITH_LMDB
#include <lmdb.h>
#endif
#ifdef KVDEX_BENCH_WITH_HIREDIS
#include <hiredis/hiredis.h>
#endif
#ifdef KVDEX_BENCH_WITH_LIBPQ
#include <libpq-fe.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// VmHWM, not getrusage: ru_maxrss survives exec, so a child of a large parent
// (the Python driver) would report the parent's peak.
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

double current_rss_mb() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) /
         (1024.0 * 1024.0);
}

std::map<std::string, std::string> parse_flags(int argc, char** argv, int first) {
  std::map<std::string, std::string> flags;
  for (int i = first; i + 1 < argc; i += 2) flags[argv[i]] = argv[i + 1];
  return flags;
}

struct Emitter {
  std::string impl = "kvdex-cpp";
  std::string store;
  std::string workload;

  void emit(const std::string& op, std::size_t n, double seconds, double bytes = 0,
            double rss_mb = -1, const std::string& extra = "") const {
    std::printf(
        "{\"impl\": \"%s\", \"store\": \"%s\", \"workload\": \"%s\", \"op\": \"%s\", \"n\": %zu, "
        "\"seconds\": %.6f, \"bytes\": %.0f, \"rss_mb\": %.1f%s}\n",
        impl.c_str(), store.c_str(), workload.c_str(), op.c_str(), n, seconds, bytes,
        rss_mb < 0 ? peak_rss_mb() : rss_mb, extra.c_str());
    std::fflush(stdout);
  }
};

// The workload: every (key, value) of the file's one collection.
std::vector<kvdex::EncodedKeyValue> read_workload(const std::string& file,
                                                  std::string* collection) {
  auto store = kvdex::SimpleKVStore::from_persist_path(file);
  const auto names = store->collections();
  if (names.size() != 1)
    throw kvdex::Error(kvdex::ErrorCode::kInvalidArgument,
                       "workload file must hold one collection");
  *collection = names[0];
  return store->get_all_encoded(names[0]);
}

std::vector<std::size_t> shuffled_indexes(std::size_t n) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(42);
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

double payload_bytes(const std::vector<kvdex::EncodedKeyValue>& pairs) {
  double bytes = 0;
  for (const auto& [k, v] : pairs) bytes += static_cast<double>(k.size() + v.size());
  return bytes;
}

// The encoded API only: what a binding or the CLI uses, and all that fits in memory
// at 10x workload A.
int bench_store_encoded(const std::map<std::string, std::string>& flags, const std::string& uri,
                        const std::string& collection,
                        const std::vector<kvdex::EncodedKeyValue>& pairs) {
  Emitter out;
  out.workload = flags.at("--workload");
  out.store = kvdex::parse_store_uri(uri).scheme;
  const double bytes = payload_bytes(pairs);
  const std::size_t n = pairs.size();
  auto store = kvdex::open(uri);
  auto start = Clock::now();
  store->put_all_encoded(pairs, collection, 1000);
  store->flush();
  out.emit("put_all_encoded(1000)", n, seconds_since(start), bytes);
  const auto order = shuffled_indexes(n);
  start = Clock::now();
  std::size_t found = 0;
  for (std::size_t i : order) found += store->get_encoded(pairs[i].first, collection).has_value();
  out.emit("get_encoded", found, seconds_since(start), bytes);
  start = Clock::now();
  std::size_t seen = 0;
  store->scan(collection, [&](std::string_view, std::string_view) { ++seen; });
  out.emit("scan", seen, seconds_since(start), bytes);
  if (auto* simple = dynamic_cast<kvdex::SimpleKVStore*>(store.get())) {
    const std::string path = flags.count("--persist-path") ? flags.at("--persist-path")
                                                           : "/tmp/kvdex_bench_persist.json";
    start = Clock::now();
    simple->persist(path);
    out.emit("persist", n, seconds_since(start),
             static_cast<double>(std::filesystem::file_size(path)));
    std::filesystem::remove(path);
  }
  return 0;
}

int bench_store(const std::map<std::string, std::string>& flags) {
  const std::string uri = flags.at("--uri");
  std::string collection;
  const auto encoded = read_workload(flags.at("--workload-file"), &collection);
  const int threads = flags.count("--threads") ? std::stoi(flags.at("--threads")) : 1;
  // Typed Values cost several times their JSON size in memory; at 10x workload A
  // (--encoded-only) the typed operations are left out and the encoded API measured.
  const bool encoded_only = flags.count("--encoded-only") && flags.at("--encoded-only") == "1";
  if (encoded_only) return bench_store_encoded(flags, uri, collection, encoded);
  std::vector<kvdex::KeyValue> typed;
  typed.reserve(encoded.size());
  for (const auto& [k, v] : encoded) typed.emplace_back(k, v.decode());
  const double bytes = payload_bytes(encoded);
  Emitter out;
  out.workload = flags.at("--workload");
  out.store = kvdex::parse_store_uri(uri).scheme;
  const std::size_t n = typed.size();
  const std::string tag = threads > 1 ? "@" + std::to_string(threads) + "t" : "";

  auto run_threads_over = [&](std::size_t count, auto&& body) {
    // Splits [0, count) into `threads` contiguous slices.
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const std::size_t begin =
            count * static_cast<std::size_t>(t) / static_cast<std::size_t>(threads);
        const std::size_t end =
            count * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(threads);
        body(begin, end);
      });
    }
    for (auto& th : pool) th.join();
  };
  auto run_threads = [&](auto&& body) { run_threads_over(n, body); };

  {
    auto store = kvdex::open(uri);
    // Single writes to a store that fsyncs every commit run at the disk's flush rate;
    // --max-single-writes measures them on a prefix and loads the rest in batches.
    const std::size_t single =
        flags.count("--max-single-writes")
            ? std::min<std::size_t>(n, std::stoull(flags.at("--max-single-writes")))
            : n;
    auto start = Clock::now();
    run_threads_over(single, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) store->put(typed[i].first, typed[i].second, collection);
    });
    out.emit("put" + tag, single, seconds_since(start),
             bytes * static_cast<double>(single) / static_cast<double>(n));
    if (single < n) {
      std::vector<kvdex::KeyValue> rest(typed.begin() + static_cast<std::ptrdiff_t>(single),
                                        typed.end());
      store->put_all(rest, collection, 1000);
    }

    const auto order = shuffled_indexes(n);
    start = Clock::now();
    std::atomic<std::size_t> found_total{0};
    run_threads([&](std::size_t b, std::size_t e) {
      std::size_t local = 0;
      for (std::size_t i = b; i < e; ++i)
        local += store->get(typed[order[i]].first, collection).has_value();
      found_total += local;
    });
    out.emit("get" + tag, found_total.load(), seconds_since(start), bytes);

    if (threads == 1) {
      start = Clock::now();
      std::size_t raw_found = 0;
      for (std::size_t i : order)
        raw_found += store->get_encoded(typed[i].first, collection).has_value();
      out.emit("get_encoded", raw_found, seconds_since(start), bytes);

      start = Clock::now();
      const auto all = store->get_all(collection);
      out.emit("get_all", all.size(), seconds_since(start), bytes);

      if (auto* simple = dynamic_cast<kvdex::SimpleKVStore*>(store.get())) {
        const std::string path = flags.count("--persist-path") ? flags.at("--persist-path")
                                                               : "/tmp/kvdex_bench_persist.json";
        start = Clock::now();
        simple->persist(path);
        const double file_bytes = static_cast<double>(std::filesystem::file_size(path));
        out.emit("persist", n, seconds_since(start), file_bytes);
        std::filesystem::remove(path);
      }
    }

    start = Clock::now();
    std::atomic<std::size_t> removed{0};
    run_threads_over(single, [&](std::size_t b, std::size_t e) {
      std::size_t local = 0;
      for (std::size_t i = b; i < e; ++i) local += store->remove(typed[i].first, collection);
      removed += local;
    });
    out.emit("remove" + tag, removed.load(), seconds_since(start), 0);
  }
  if (threads == 1) {
    // Into a new store, as raw-lmdb's put_all: the store above still holds the keys,
    // and overwrites are another operation (an extra lookup each).
    const kvdex::StoreUri parsed = kvdex::parse_store_uri(uri);
    const std::string fresh_dir = parsed.scheme == "lmdb" ? parsed.rest + ".put_all" : "";
    {
      auto store = kvdex::open(fresh_dir.empty() ? uri : "lmdb:" + fresh_dir);
      const auto start = Clock::now();
      store->put_all(typed, collection, 1000);
      store->flush();
      out.emit("put_all(1000)", n, seconds_since(start), bytes);
    }
    if (!fresh_dir.empty()) std::filesystem::remove_all(fresh_dir);
  }
  return 0;
}

int bench_load(const std::map<std::string, std::string>& flags) {
  const std::string file = flags.at("--workload-file");
  Emitter out;
  out.workload = flags.at("--workload");
  out.store = "simple";
  const double file_bytes = static_cast<double>(std::filesystem::file_size(file));
  const double before = current_rss_mb();
  const auto start = Clock::now();
  auto store = kvdex::SimpleKVStore::from_persist_path(file);
  const double elapsed = seconds_since(start);
  // Peak RSS of the load itself: the process's high-water mark less what it held before.
  out.emit("load", store->count(store->collections().at(0)), elapsed, file_bytes,
           peak_rss_mb() - before);
  out.emit("resident", 0, 0, file_bytes, current_rss_mb() - before);
  // Persist what was loaded (--persist-dir): the store as a loaded program holds it,
  // measured in this small process so that run.py can alternate it with raw-write.
  if (flags.count("--persist-dir")) {
    const std::string path = flags.at("--persist-dir") + "/kvdex_bench_persist.json";
    const auto persist_start = Clock::now();
    store->persist(path);
    out.emit("persist", store->count(store->collections().at(0)), seconds_since(persist_start),
             static_cast<double>(std::filesystem::file_size(path)));
    std::filesystem::remove(path);
  }
  return 0;
}

int bench_open(const std::map<std::string, std::string>& flags) {
  Emitter out;
  out.workload = flags.at("--workload");
  out.store = kvdex::parse_store_uri(flags.at("--uri")).scheme;
  const auto start = Clock::now();
  auto store = kvdex::open(flags.at("--uri"));
  out.emit("open", 1, seconds_since(start));
  return 0;
}

int bench_raw_simdjson(const std::map<std::string, std::string>& flags) {
  Emitter out;
  out.impl = "raw-simdjson";
  out.store = "simdjson-dom";
  out.workload = flags.at("--workload");
  // Cold, as a program that parses a file once: read it, parse it with a new parser.
  {
    const auto start = Clock::now();
    simdjson::padded_string cold_text = simdjson::padded_string::load(flags.at("--workload-file"));
    simdjson::dom::parser cold_parser;
    auto doc = cold_parser.parse(cold_text);
    if (doc.error()) throw std::runtime_error(simdjson::error_message(doc.error()));
    out.emit("read+parse", 1, seconds_since(start), static_cast<double>(cold_text.size()));
  }
  simdjson::padded_string text = simdjson::padded_string::load(flags.at("--workload-file"));
  simdjson::dom::parser parser;
  (void)parser.parse(text);  // warm: allocation outside the measurement
  double best = 1e9;
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    auto doc = parser.parse(text);
    if (doc.error()) throw std::runtime_error(simdjson::error_message(doc.error()));
    best = std::min(best, seconds_since(start));
  }
  out.emit("parse", 1, best, static_cast<double>(text.size()));
  return 0;
}

int bench_raw_write(const std::map<std::string, std::string>& flags) {
  Emitter out;
  out.impl = "raw-posix";
  out.store = "file";
  out.workload = "-";
  const std::size_t total = std::stoull(flags.at("--bytes"));
  const std::string path = flags.at("--dir") + "/raw_write.bin";
  std::vector<char> chunk(1 << 20, 'x');
  const auto start = Clock::now();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  for (std::size_t written = 0; written < total; written += chunk.size()) {
    if (::write(fd, chunk.data(), chunk.size()) < 0) return 1;
  }
  ::fdatasync(fd);
  ::close(fd);
  out.emit("write+fsync", 1, seconds_since(start), static_cast<double>(total));
  std::filesystem::remove(path);
  return 0;
}

#ifdef KVDEX_BENCH_WITH_LMDB
void check(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string(what) + ": " + mdb_strerror(rc));
}

// The same bytes kvdex stores (key -> canonical JSON), straight through LMDB's C API.
int bench_raw_lmdb(const std::map<std::string, std::string>& flags) {
  Emitter out;
  out.impl = "raw-lmdb";
  out.store = "lmdb";
  out.workload = flags.at("--workload");
  std::string collection;
  const auto pairs = read_workload(flags.at("--workload-file"), &collection);
  const double bytes = payload_bytes(pairs);
  const std::string dir = flags.at("--dir");
  std::filesystem::create_directories(dir);
  MDB_env* env = nullptr;
  check(mdb_env_create(&env), "env_create");
  check(mdb_env_set_mapsize(env, std::size_t{64} << 30), "set_mapsize");
  check(mdb_env_set_maxdbs(env, 4), "set_maxdbs");
  check(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0644), "env_open");
  MDB_dbi dbi;
  {
    MDB_txn* txn;
    check(mdb_txn_begin(env, nullptr, 0, &txn), "txn_begin");
    check(mdb_dbi_open(txn, "data", MDB_CREATE, &dbi), "dbi_open");
    check(mdb_txn_commit(txn), "commit");
  }
  auto start = Clock::now();
  for (std::size_t i = 0; i < pairs.size(); i += 1000) {
    MDB_txn* txn;
    check(mdb_txn_begin(env, nullptr, 0, &txn), "txn_begin");
    for (std::size_t j = i; j < std::min(pairs.size(), i + 1000); ++j) {
      MDB_val k{pairs[j].first.size(), const_cast<char*>(pairs[j].first.data())};
      MDB_val v{pairs[j].second.size(), const_cast<char*>(pairs[j].second.text().data())};
      check(mdb_put(txn, dbi, &k, &v, 0), "put");
    }
    check(mdb_txn_commit(txn), "commit");
  }
  out.emit("put_all(1000)", pairs.size(), seconds_since(start), bytes);
  const auto order = shuffled_indexes(pairs.size());
  start = Clock::now();
  MDB_txn* txn;
  std::size_t total = 0;
  for (std::size_t i : order) {
    check(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), "txn_begin");
    MDB_val k{pairs[i].first.size(), const_cast<char*>(pairs[i].first.data())};
    MDB_val v;
    check(mdb_get(txn, dbi, &k, &v), "get");
    std::string copy(static_cast<const char*>(v.mv_data), v.mv_size);  // what a get returns
    total += copy.size();
    mdb_txn_abort(txn);
  }
  out.emit("get", pairs.size(), seconds_since(start), static_cast<double>(total));
  mdb_env_close(env);
  std::filesystem::remove_all(dir);
  return 0;
}
#endif

#if defined(KVDEX_BENCH_WITH_HIREDIS) || defined(KVDEX_BENCH_WITH_LIBPQ)
std::string flag_or(const std::map<std::string, std::string>& flags, const std::string& name,
                    const std::string& fallback) {
  const auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

// What the server modes share: the workload's pairs (a prefix of at most --put-limit),
// --sample of their indexes in random order for the gets, and the first
// --delete-sample of those for the deletes.
struct ServerWorkload {
  std::string collection;
  std::vector<kvdex::EncodedKeyValue> pairs;
  std::vector<std::size_t> sample;
  std::vector<std::size_t> deletes;
  double bytes = 0;
};

ServerWorkload read_server_workload(const std::map<std::string, std::string>& flags) {
  ServerWorkload w;
  w.pairs = read_workload(flags.at("--workload-file"), &w.collection);
  const std::size_t limit = std::stoull(flag_or(flags, "--put-limit", "0"));
  if (limit > 0 && w.pairs.size() > limit)
    w.pairs.erase(w.pairs.begin() + static_cast<std::ptrdiff_t>(limit), w.pairs.end());
  w.bytes = payload_bytes(w.pairs);
  w.sample = shuffled_indexes(w.pairs.size());
  const std::size_t sample = std::stoull(flag_or(flags, "--sample", "0"));
  if (sample > 0 && w.sample.size() > sample)
    w.sample.erase(w.sample.begin() + static_cast<std::ptrdiff_t>(sample), w.sample.end());
  const std::size_t deletes = std::stoull(flag_or(flags, "--delete-sample", "0"));
  w.deletes = w.sample;
  if (deletes > 0 && w.deletes.size() > deletes)
    w.deletes.erase(w.deletes.begin() + static_cast<std::ptrdiff_t>(deletes), w.deletes.end());
  return w;
}

// A get that found fewer keys than it asked for measured something else: fail loudly.
void expect_count(const char* what, std::size_t got, std::size_t want) {
  if (got != want)
    throw std::runtime_error(std::string(what) + ": " + std::to_string(got) + " of " +
                             std::to_string(want) + " keys");
}
#endif

#ifdef KVDEX_BENCH_WITH_HIREDIS
struct RedisReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyFree>;

// One blocking hiredis connection: the raw engine as a single client sees it.
class RedisConnection {
 public:
  RedisConnection(const std::string& host, int port)
      : where_("Redis at " + host + ":" + std::to_string(port)) {
    const timeval timeout{10, 0};
    ctx_.reset(redisConnectWithTimeout(host.c_str(), port, timeout));
    if (!ctx_) throw std::runtime_error("cannot allocate a connection to " + where_);
    if (ctx_->err)
      throw std::runtime_error("cannot connect to " + where_ + ": " + ctx_->errstr +
                               " (start it with scripts/servers.sh start redis)");
  }

  // Queues a command; nothing is sent until a reply is read (that is the pipelining).
  void append(std::initializer_list<std::string_view> args) {
    argv_.clear();
    lengths_.clear();
    for (const auto arg : args) {
      argv_.push_back(arg.data());
      lengths_.push_back(arg.size());
    }
    if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv_.size()), argv_.data(),
                               lengths_.data()) != REDIS_OK)
      fail("queueing a command");
  }

  RedisReply reply() {
    void* raw = nullptr;
    if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) fail("reading a reply");
    RedisReply r(static_cast<redisReply*>(raw));
    if (r->type == REDIS_REPLY_ERROR)
      throw std::runtime_error(where_ + " answered " + std::string(r->str, r->len));
    return r;
  }

  RedisReply command(std::initializer_list<std::string_view> args) {
    append(args);
    return reply();
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(where_ + ": " + what + ": " + ctx_->errstr);
  }

  struct ContextFree {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::string where_;
  std::unique_ptr<redisContext, ContextFree> ctx_;
  std::vector<const char*> argv_;
  std::vector<std::size_t> lengths_;
};

std::string_view reply_text(const redisReply* r) { return {r->str, r->len}; }

// LlamaIndex's Redis layout (RedisKVStore): one hash per collection, named by the
// collection string; field = key; value = the JSON text.
int bench_raw_redis(const std::map<std::string, std::string>& flags) {
  Emitter out;
  out.impl = "raw-redis";
  out.store = "redis";
  out.workload = flags.at("--workload");
  const auto w = read_server_workload(flags);
  const std::string& hash = w.collection;
  const std::size_t n = w.pairs.size();
  RedisConnection redis(flag_or(flags, "--redis-host", "127.0.0.1"),
                        std::stoi(flag_or(flags, "--redis-port", "16379")));
  redis.command({"DEL", hash});

  // put_all: each batch is MULTI, 1,000 HSETs, EXEC sent in one write; the next batch
  // waits for EXEC's reply, as a put_all that reports each batch's outcome must.
  auto start = Clock::now();
  for (std::size_t i = 0; i < n; i += 1000) {
    const std::size_t end = std::min(n, i + 1000);
    redis.append({"MULTI"});
    for (std::size_t j = i; j < end; ++j)
      redis.append({"HSET", hash, w.pairs[j].first, w.pairs[j].second.text()});
    redis.append({"EXEC"});
    redis.reply();
    for (std::size_t j = i; j < end; ++j) redis.reply();
    const auto exec = redis.reply();
    if (exec->type != REDIS_REPLY_ARRAY || exec->elements != end - i)
      throw std::runtime_error("raw-redis: EXEC of a put_all batch was aborted");
    for (std::size_t j = 0; j < exec->elements; ++j)
      if (exec->element[j]->type == REDIS_REPLY_ERROR)
        throw std::runtime_error("raw-redis: HSET failed: " +
                                 std::string(reply_text(exec->element[j])));
  }
  out.emit("put_all(1000)", n, seconds_since(start), w.bytes);

  // get: one HGET per round trip, what a synchronous get does.
  start = Clock::now();
  std::size_t found = 0;
  double got = 0;
  for (std::size_t i : w.sample) {
    const auto r = redis.command({"HGET", hash, w.pairs[i].first});
    if (r->type != REDIS_REPLY_STRING) continue;
    const std::string copy(reply_text(r.get()));  // what a get returns
    got += static_cast<double>(copy.size());
    ++found;
  }
  out.emit("get", found, seconds_since(start), got);
  expect_count("raw-redis get", found, w.sample.size());

  // The same keys with 1,000 HGETs in flight: what batched or concurrent gets can reach.
  start = Clock::now();
  found = 0;
  got = 0;
  for (std::size_t i = 0; i < w.sample.size(); i += 1000) {
    const std::size_t end = std::min(w.sample.size(), i + 1000);
    for (std::size_t j = i; j < end; ++j) redis.append({"HGET", hash, w.pairs[w.sample[j]].first});
    for (std::size_t j = i; j < end; ++j) {
      const auto r = redis.reply();
      if (r->type != REDIS_REPLY_STRING) continue;
      const std::string copy(reply_text(r.get()));
      got += static_cast<double>(copy.size());
      ++found;
    }
  }
  out.emit("get(pipelined 1000)", found, seconds_since(start), got);
  expect_count("raw-redis pipelined get", found, w.sample.size());

  using Pairs = std::vector<std::pair<std::string, std::string>>;
  auto collect = [](const redisReply* array, Pairs* into) {
    for (std::size_t j = 0; j + 1 < array->elements; j += 2)
      into->emplace_back(reply_text(array->element[j]), reply_text(array->element[j + 1]));
  };
  // get_all in one reply: the fastest, but it holds the server for the whole hash.
  start = Clock::now();
  {
    Pairs all;
    const auto r = redis.command({"HGETALL", hash});
    all.reserve(r->elements / 2);
    collect(r.get(), &all);
    out.emit("get_all(HGETALL)", all.size(), seconds_since(start), w.bytes);
    expect_count("raw-redis HGETALL", all.size(), n);
  }
  // get_all by HSCAN, as LlamaIndex's RedisKVStore does, 1,000 fields a call.
  start = Clock::now();
  {
    Pairs all;
    std::string cursor = "0";
    do {
      const auto r = redis.command({"HSCAN", hash, cursor, "COUNT", "1000"});
      cursor = reply_text(r->element[0]);
      collect(r->element[1], &all);
    } while (cursor != "0");
    out.emit("get_all(HSCAN 1000)", all.size(), seconds_since(start), w.bytes);
  }

  start = Clock::now();
  long long removed = 0;
  for (std::size_t i : w.deletes)
    removed += redis.command({"HDEL", hash, w.pairs[i].first})->integer;
  out.emit("remove", static_cast<std::size_t>(removed), seconds_since(start));
  redis.command({"DEL", hash});
  return 0;
}

// kvdex's RedisKVStore on the same server, pairs and samples as raw-redis (the
// library's redis:// backend; this binary links kvdex, so it has it when hiredis is).
int bench_kvdex_redis(const std::map<std::string, std::string>& flags) {
  Emitter out;
  out.impl = "kvdex";
  out.store = "redis";
  out.workload = flags.at("--workload");
  const auto w = read_server_workload(flags);
  const std::string& hash = w.collection;
  const std::size_t n = w.pairs.size();
  const std::string uri = "redis://" + flag_or(flags, "--redis-host", "127.0.0.1") + ":" +
                          flag_or(flags, "--redis-port", "16379") + "/0";
  auto owner = kvdex::open(uri);
  auto& store = *owner;
  RedisConnection admin(flag_or(flags, "--redis-host", "127.0.0.1"),
                        std::stoi(flag_or(flags, "--redis-port", "16379")));
  admin.command({"DEL", hash});
  store.get_encoded("kvdex-bench-warm-up", hash);  // connects: not put_all's cost

  // put_all: batches of 1,000, each one MULTI/EXEC, pipelined (8 MiB windows).
  auto start = Clock::now();
  store.put_all_encoded(w.pairs, hash, 1000);
  out.emit("put_all(1000)", n, seconds_since(start), w.bytes);

  start = Clock::now();
  std::size_t found = 0;
  double got = 0;
  for (std::size_t i : w.sample) {
    const auto v = store.get_encoded(w.pairs[i].first, hash);
    if (!v) continue;
    got += static_cast<double>(v->size());
    ++found;
  }
  out.emit("get_encoded", found, seconds_since(start), got);
  expect_count("kvdex redis get_encoded", found, w.sample.size());

  start = Clock::now();
  found = 0;
  for (std::size_t i : w.sample) found += store.get(w.pairs[i].first, hash).has_value();
  out.emit("get", found, seconds_since(start), got);

  // Single round trips vary with scheduling on a loaded machine more than the two
  // clients differ: the same sample again, alternating raw hiredis and kvdex in rounds
  // of 500 gets in this one process, so both see the same conditions.
  {
    double raw_seconds = 0, kvdex_seconds = 0;
    std::size_t raw_found = 0, kvdex_found = 0;
    for (std::size_t begin = 0; begin < w.sample.size(); begin += 500) {
      const std::size_t end = std::min(w.sample.size(), begin + 500);
      auto t = Clock::now();
      for (std::size_t j = begin; j < end; ++j) {
        const auto r = admin.command({"HGET", hash, w.pairs[w.sample[j]].first});
        if (r->type != REDIS_REPLY_STRING) continue;
        const std::string copy(reply_text(r.get()));
        raw_found += copy.empty() ? 0 : 1;
      }
      raw_seconds += seconds_since(t);
      t = Clock::now();
      for (std::size_t j = begin; j < end; ++j)
        kvdex_found += store.get_encoded(w.pairs[w.sample[j]].first, hash).has_value();
      kvdex_seconds += seconds_since(t);
    }
    out.emit("get (raw hiredis, interleaved)", raw_found, raw_seconds, got);
    out.emit("get_encoded (interleaved)", kvdex_found, kvdex_seconds, got);
  }

  // Every sampled get in flight at once: aget_encoded pipelined on the async connections.
  start = Clock::now();
  {
    std::vector<kvdex::Future<std::optional<kvdex::EncodedValue>>> futures;
    futures.reserve(w.sample.size());
    for (std::size_t i : w.sample) futures.push_back(store.aget_encoded(w.pairs[i].first, hash));
    found = 0;
    for (auto& f : futures) found += f.get().has_value();
  }
  out.emit("aget_encoded x all in flight", found, seconds_since(start), got);
  expect_count("kvdex redis aget", found, w.sample.size());

  start = Clock::now();
  {
    const auto all = store.get_all_encoded(hash);
    out.emit("get_all_encoded", all.size(), seconds_since(start), w.bytes);
    expect_count("kvdex redis get_all_encoded", all.size(), n);
  }
  start = Clock::now();
  {
    const auto all = store.get_all(hash);
    out.emit("get_all", all.size(), seconds_since(start), w.bytes);
  }

  start = Clock::now();
  std::size_t removed = 0;
  for (std::size_t i : w.deletes) removed += store.remove(w.pairs[i].first, hash) ? 1 : 0;
  out.emit("remove", removed, seconds_since(start));
  admin.command({"DEL", hash});
  return 0;
}
#endif

#ifdef KVDEX_BENCH_WITH_LIBPQ
struct PgResultFree {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultFree>;

class PgConnection {
 public:
  explicit PgConnection(const std::string& conninfo)
      : where_("PostgreSQL (" + conninfo + ")"), conn_(PQconnectdb(conninfo.c_str())) {
    if (!conn_) throw std::runtime_error("cannot allocate a connection to " + where_);
    if (PQstatus(conn_.get()) != CONNECTION_OK)
      throw std::runtime_error("cannot connect to " + where_ + ": " + error() +
                               " (start it with scripts/servers.sh start postgres)");
  }

  PGconn* get() const { return conn_.get(); }

  PgResult check(PGresult* raw, const std::string& what) const {
    PgResult r(raw);
    const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      throw std::runtime_error(where_ + ": " + what + ": " + error());
    return r;
  }

  PgResult exec(const std::string& sql) const { return check(PQexec(get(), sql.c_str()), sql); }

  void prepare(const std::string& name, const std::string& sql, int params) const {
    check(PQprepare(get(), name.c_str(), sql.c_str(), params, nullptr), "PREPARE " + name);
  }

  // Parameters go in binary format, which for varchar and json is their text as is,
  // with a length: values are slices of the workload file without a NUL after them,
  // passed in place.
  PgResult exec_prepared(const std::string& name, const std::vector<std::string_view>& params) {
    bind(params);
    return check(PQexecPrepared(get(), name.c_str(), static_cast<int>(params.size()),
                                values_.data(), lengths_.data(), formats_.data(), 0),
                 "EXECUTE " + name);
  }

  PgResult exec_params(const std::string& sql, const std::vector<std::string_view>& params) {
    bind(params);
    return check(PQexecParams(get(), sql.c_str(), static_cast<int>(params.size()), nullptr,
                              values_.data(), lengths_.data(), formats_.data(), 0),
                 sql.substr(0, 60));
  }

  // Queues a prepared statement in pipeline mode.
  void send_prepared(const std::string& name, const std::vector<std::string_view>& params) {
    bind(params);
    if (PQsendQueryPrepared(get(), name.c_str(), static_cast<int>(params.size()), values_.data(),
                            lengths_.data(), formats_.data(), 0) != 1)
      throw std::runtime_error(where_ + ": queueing EXECUTE " + name + ": " + error());
  }

  std::string error() const {
    std::string message = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return message;
  }

 private:
  struct ConnFree {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  void bind(const std::vector<std::string_view>& params) {
    values_.clear();
    lengths_.clear();
    for (const auto p : params) {
      values_.push_back(p.data());
      lengths_.push_back(static_cast<int>(p.size()));
    }
    formats_.assign(params.size(), 1);
  }

  std::string where_;
  std::unique_ptr<PGconn, ConnFree> conn_;
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

// LlamaIndex's PostgresKVStore table, as SQLAlchemy creates it (its redundant index
// included: every insert pays for it in both).
constexpr const char* kPgDropTable = "DROP TABLE IF EXISTS public.data_kvstore";
constexpr const char* kPgCreateTable =
    "CREATE TABLE public.data_kvstore (id SERIAL NOT NULL, key VARCHAR NOT NULL, "
    "namespace VARCHAR NOT NULL, value JSON, PRIMARY KEY (id), "
    "CONSTRAINT \"data_kvstore:unique_key_namespace\" UNIQUE (key, namespace))";
constexpr const char* kPgCreateIndex =
    "CREATE INDEX \"data_kvstore:idx_key_namespace\" ON public.data_kvstore (key, namespace)";

// $1 is the namespace, shared by every row; $2k and $2k+1 are row k's key and value.
std::string pg_upsert_sql(std::size_t rows) {
  std::string sql = "INSERT INTO public.data_kvstore (key, namespace, value) VALUES ";
  for (std::size_t r = 0; r < rows; ++r) {
    if (r > 0) sql += ", ";
    sql += "($" + std::to_string(2 * r + 2) + ", $1, $" + std::to_string(2 * r + 3) + ")";
  }
  return sql + " ON CONFLICT (key, namespace) DO UPDATE SET value = EXCLUDED.value";
}

int bench_raw_postgres(const std::map<std::string, std::string>& flags) {
  Emitter out;
  out.impl = "raw-postgres";
  out.store = "postgres";
  out.workload = flags.at("--workload");
  const auto w = read_server_workload(flags);
  const std::size_t n = w.pairs.size();
  PgConnection pg(
      flag_or(flags, "--pg-conninfo", "host=127.0.0.1 port=15432 dbname=kvdex user=postgres"));
  pg.exec("SET client_min_messages = warning");  // no NOTICE when there is no table to drop
  pg.exec(kPgDropTable);
  pg.exec(kPgCreateTable);
  pg.exec(kPgCreateIndex);

  // put_all: one parameterized multi-row upsert per batch of 1,000, each its own
  // transaction (a batch is atomic, as kvdex's contract asks and LlamaIndex commits).
  pg.prepare("upsert1000", pg_upsert_sql(1000), 0);
  std::vector<std::string_view> params;
  auto start = Clock::now();
  for (std::size_t i = 0; i < n; i += 1000) {
    const std::size_t end = std::min(n, i + 1000);
    params.assign({w.collection});
    for (std::size_t j = i; j < end; ++j) {
      params.push_back(w.pairs[j].first);
      params.push_back(w.pairs[j].second.text());
    }
    if (end - i == 1000) {
      pg.exec_prepared("upsert1000", params);
    } else {
      pg.exec_params(pg_upsert_sql(end - i), params);
    }
  }
  out.emit("put_all(1000)", n, seconds_since(start), w.bytes);

  pg.prepare("get", "SELECT value FROM public.data_kvstore WHERE key = $1 AND namespace = $2", 0);
  start = Clock::now();
  std::size_t found = 0;
  double got = 0;
  for (std::size_t i : w.sample) {
    const auto& key = w.pairs[i].first;
    const auto r = pg.exec_prepared("get", {key, w.collection});
    if (PQntuples(r.get()) != 1) continue;
    const std::string copy(PQgetvalue(r.get(), 0, 0), PQgetlength(r.get(), 0, 0));
    got += static_cast<double>(copy.size());
    ++found;
  }
  out.emit("get", found, seconds_since(start), got);
  expect_count("raw-postgres get", found, w.sample.size());

  // The same keys through libpq's pipeline mode, 1,000 queries in flight.
  start = Clock::now();
  found = 0;
  got = 0;
  if (PQenterPipelineMode(pg.get()) != 1)
    throw std::runtime_error("raw-postgres: cannot enter pipeline mode: " + pg.error());
  for (std::size_t i = 0; i < w.sample.size(); i += 1000) {
    const std::size_t end = std::min(w.sample.size(), i + 1000);
    for (std::size_t j = i; j < end; ++j) {
      pg.send_prepared("get", {w.pairs[w.sample[j]].first, w.collection});
    }
    if (PQpipelineSync(pg.get()) != 1)
      throw std::runtime_error("raw-postgres: pipeline sync: " + pg.error());
    for (std::size_t j = i; j < end; ++j) {
      const auto r = pg.check(PQgetResult(pg.get()), "pipelined get");
      if (PQntuples(r.get()) == 1) {
        const std::string copy(PQgetvalue(r.get(), 0, 0), PQgetlength(r.get(), 0, 0));
        got += static_cast<double>(copy.size());
        ++found;
      }
      PgResult end_of_query(PQgetResult(pg.get()));  // nullptr closes each query's results
    }
    PgResult sync(PQgetResult(pg.get()));
    if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC)
      throw std::runtime_error("raw-postgres: pipeline out of step: " + pg.error());
  }
  if (PQexitPipelineMode(pg.get()) != 1)
    throw std::runtime_error("raw-postgres: cannot leave pipeline mode: " + pg.error());
  out.emit("get(pipelined 1000)", found, seconds_since(start), got);
  expect_count("raw-postgres pipelined get", found, w.sample.size());

  start = Clock::now();
  {
    const auto r = pg.exec_params("SELECT key, value FROM public.data_kvstore WHERE namespace = $1",
                                  {w.collection});
    const int rows = PQntuples(r.get());
    std::vector<std::pair<std::string, std::string>> all;
    all.reserve(static_cast<std::size_t>(rows));
    for (int row = 0; row < rows; ++row)
      all.emplace_back(std::string(PQgetvalue(r.get(), row, 0), PQgetlength(r.get(), row, 0)),
                       std::string(PQgetvalue(r.get(), row, 1), PQgetlength(r.get(), row, 1)));
    out.emit("get_all", all.size(), seconds_since(start), w.bytes);
    expect_count("raw-postgres get_all", all.size(), n);
  }

  pg.prepare("delete", "DELETE FROM public.data_kvstore WHERE key = $1 AND namespace = $2", 0);
  start = Clock::now();
  std::size_t removed = 0;
  for (std::size_t i : w.deletes) {
    const auto& key = w.pairs[i].first;
    const auto r = pg.exec_prepared("delete", {key, w.collection});
    removed += std::strtoul(PQcmdTuples(r.get()), nullptr, 10);
  }
  out.emit("remove", removed, seconds_since(start));
  pg.exec(kPgDropTable);
  return 0;
}

// kvdex's PostgresKVStore on the same server, table layout, pairs and samples as
// raw-postgres (the encoded API: the same bytes in and out). get(pipelined) issues
// every sampled aget_encoded at once and waits for all, as a gather would; scan
// streams the collection (single-row mode) and reports the process's peak RSS.
int bench_kvdex_postgres(const std::map<std::string, std::string>& flags) {
  Emitter out;
  out.impl = "kvdex";
  out.store = "postgres";
  out.workload = flags.at("--workload");
  const auto w = read_server_workload(flags);
  const std::size_t n = w.pairs.size();
  const std::string conninfo =
      flag_or(flags, "--pg-conninfo", "host=127.0.0.1 port=15432 dbname=kvdex user=postgres");
  {
    PgConnection pg(conninfo);
    pg.exec("SET client_min_messages = warning");
    pg.exec(kPgDropTable);
  }
  kvdex::PostgresKVStore store(conninfo, {.table_name = "kvstore"});

  auto start = Clock::now();
  store.put_all_encoded(w.pairs, w.collection, 1000);
  out.emit("put_all(1000)", n, seconds_since(start), w.bytes);

  start = Clock::now();
  std::size_t found = 0;
  double got = 0;
  for (std::size_t i : w.sample) {
    const auto value = store.get_encoded(w.pairs[i].first, w.collection);
    if (!value) continue;
    got += static_cast<double>(value->size());
    ++found;
  }
  out.emit("get", found, seconds_since(start), got);
  expect_count("kvdex postgres get", found, w.sample.size());

  start = Clock::now();
  found = 0;
  got = 0;
  {
    std::vector<kvdex::Future<std::optional<kvdex::EncodedValue>>> futures;
    futures.reserve(w.sample.size());
    for (std::size_t i : w.sample)
      futures.push_back(store.aget_encoded(w.pairs[i].first, w.collection));
    for (auto& future : futures) {
      const auto value = future.get();
      if (!value) continue;
      got += static_cast<double>(value->size());
      ++found;
    }
  }
  out.emit("get(pipelined, gathered)", found, seconds_since(start), got);
  expect_count("kvdex postgres pipelined get", found, w.sample.size());

  start = Clock::now();
  {
    const auto all = store.get_all_encoded(w.collection);
    out.emit("get_all", all.size(), seconds_since(start), w.bytes);
    expect_count("kvdex postgres get_all", all.size(), n);
  }

  start = Clock::now();
  std::size_t removed = 0;
  for (std::size_t i : w.deletes) removed += store.remove(w.pairs[i].first, w.collection);
  out.emit("remove", removed, seconds_since(start));
  // The table stays for kvdex-postgres-scan, which drops it.
  return 0;
}

// Streams the collection kvdex-postgres left behind in a process that holds nothing
// else: its peak RSS is the scan's (single-row mode: a row at a time), not the
// collection's. Drops the table afterwards.
int bench_kvdex_postgres_scan(const std::map<std::string, std::string>& flags) {
  Emitter out;
  out.impl = "kvdex";
  out.store = "postgres";
  out.workload = flags.at("--workload");
  const std::string conninfo =
      flag_or(flags, "--pg-conninfo", "host=127.0.0.1 port=15432 dbname=kvdex user=postgres");
  const std::string collection = flags.at("--collection");
  {
    kvdex::PostgresKVStore store(conninfo, {.table_name = "kvstore", .perform_setup = false});
    const double before = current_rss_mb();
    const auto start = Clock::now();
    std::size_t seen = 0;
    double bytes = 0;
    store.scan(collection, [&](std::string_view key, std::string_view value) {
      ++seen;
      bytes += static_cast<double>(key.size() + value.size());
    });
    out.emit("scan (own process)", seen, seconds_since(start), bytes, peak_rss_mb(),
             ", \"rss_before_mb\": " + std::to_string(before));
  }
  PgConnection(conninfo).exec(kPgDropTable);
  return 0;
}
#endif

}  // namespace

#ifdef KVDEX_BENCH_WITH_HIREDIS
// kvdex's Redis stores through kvdex::open (one Redis, a Redis Cluster, either layout):
// put_all in batches of 1000 into an empty collection, get_all, then per-key gets on the
// sample. --label names the setup in the rows' "store" column; the caller flushes the
// servers first.
int bench_redis_store(const std::map<std::string, std::string>& flags) {
  const ServerWorkload w = read_server_workload(flags);
  Emitter out{
      .impl = "kvdex-cpp", .store = flags.at("--label"), .workload = flags.at("--workload")};
  std::unique_ptr<kvdex::BaseKVStore> store = kvdex::open(flags.at("--uri"));
  auto start = Clock::now();
  store->put_all_encoded(w.pairs, w.collection, 1000);
  out.emit("put_all(1000)", w.pairs.size(), seconds_since(start), w.bytes);
  start = Clock::now();
  const std::vector<kvdex::EncodedKeyValue> all = store->get_all_encoded(w.collection);
  out.emit("get_all", all.size(), seconds_since(start), w.bytes);
  expect_count("kvdex redis get_all", all.size(), w.pairs.size());
  start = Clock::now();
  std::size_t found = 0;
  for (std::size_t i : w.sample)
    found += store->get_encoded(w.pairs[i].first, w.collection) ? 1 : 0;
  out.emit("get", w.sample.size(), seconds_since(start));
  expect_count("kvdex redis get", found, w.sample.size());
  return 0;
}
#endif

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kvdex_bench MODE --flag value ... (see the file comment)\n");
    return 2;
  }
  const std::string mode = argv[1];
  const auto flags = parse_flags(argc, argv, 2);
  try {
    if (mode == "store") return bench_store(flags);
    if (mode == "load") return bench_load(flags);
    if (mode == "open") return bench_open(flags);
    if (mode == "raw-simdjson") return bench_raw_simdjson(flags);
    if (mode == "raw-write") return bench_raw_write(flags);
#ifdef KVDEX_BENCH_WITH_LMDB
    if (mode == "raw-lmdb") return bench_raw_lmdb(flags);
#endif
#ifdef KVDEX_BENCH_WITH_HIREDIS
    if (mode == "raw-redis") return bench_raw_redis(flags);
    if (mode == "redis-store") return bench_redis_store(flags);
    if (mode == "kvdex-redis") return bench_kvdex_redis(flags);
#endif
#ifdef KVDEX_BENCH_WITH_LIBPQ
    if (mode == "raw-postgres") return bench_raw_postgres(flags);
    if (mode == "kvdex-postgres") return bench_kvdex_postgres(flags);
    if (mode == "kvdex-postgres-scan") return bench_kvdex_postgres_scan(flags);
#endif
    if (mode == "modes") {
      // bench/run.py asks, so rows of a mode this build lacks are reported as missing.
      std::printf("store\nload\nopen\nraw-simdjson\nraw-write\n");
#ifdef KVDEX_BENCH_WITH_LMDB
      std::printf("raw-lmdb\n");
#endif
#ifdef KVDEX_BENCH_WITH_HIREDIS
      std::printf("raw-redis\nkvdex-redis\nredis-store\n");
#endif
#ifdef KVDEX_BENCH_WITH_LIBPQ
      std::printf("raw-postgres\nkvdex-postgres\nkvdex-postgres-scan\n");
#endif
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvdex_bench %s: %s\n", mode.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "kvdex_bench: unknown mode %s\n", mode.c_str());
  return 2;
}
