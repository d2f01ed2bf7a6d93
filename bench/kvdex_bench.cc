// kvdex_bench — the C++ side of the benchmark harness (bench/run.py drives it).
//
// Every mode prints one JSON object per measurement on stdout:
//   {"impl": ..., "store": ..., "workload": ..., "op": ..., "n": ..., "seconds": ...,
//    "bytes": ..., "rss_mb": ...}
// The workload is read from a persist file written by bench/workloads.py, so the C++
// and Python sides measure the same bytes.
//
//   kvdex_bench store  --uri URI --workload-file F --workload A --collection C [--threads T]
//   kvdex_bench load   --workload-file F --workload A        (a fresh process: peak RSS)
//   kvdex_bench open   --uri lmdb:PATH --workload A
//   kvdex_bench raw-simdjson --workload-file F --workload A
//   kvdex_bench raw-write    --dir D --bytes N
//   kvdex_bench raw-lmdb     --dir D --workload-file F --workload A --collection C
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
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kvdex/kvdex.h"

#ifdef KVDEX_BENCH_WITH_LMDB
#include <lmdb.h>
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
    auto store = kvdex::open(uri);
    const auto start = Clock::now();
    store->put_all(typed, collection, 1000);
    store->flush();
    out.emit("put_all(1000)", n, seconds_since(start), bytes);
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

}  // namespace

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
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kvdex_bench %s: %s\n", mode.c_str(), e.what());
    return 1;
  }
  std::fprintf(stderr, "kvdex_bench: unknown mode %s\n", mode.c_str());
  return 2;
}
