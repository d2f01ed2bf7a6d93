// kvdex — look inside a key-value store, fix it, move it.
//
// Every STORE is a URI opened through kvdex::open: lmdb:PATH (the default for a
// bare path), json:PATH (a LlamaIndex persist file; a bare *.json path too),
// memory:, and the server backends compiled in.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kvdex/json.h"
#include "kvdex/kvdex.h"

namespace {

using kvdex::BaseKVStore;
using kvdex::EncodedKeyValue;
using kvdex::EncodedValue;
using kvdex::Error;
using kvdex::ErrorCode;

// Exit statuses, documented in --help.
constexpr int kExitOk = 0;
constexpr int kExitMissing = 1;
constexpr int kExitUsage = 2;
constexpr int kExitCorruption = 3;
constexpr int kExitIO = 4;
constexpr int kExitUnavailable = 5;
constexpr int kExitNotSupported = 6;
constexpr int kExitResourceExhausted = 7;
constexpr int kExitFailedPrecondition = 8;
constexpr int kExitInternal = 70;
// What a shell reports for a process killed by SIGPIPE (128 + 13).
constexpr int kExitBrokenPipe = 141;

constexpr const char* kExitCodesHelp =
    "Exit status: 0 success; 1 key or collection not found; 2 bad usage or bad input\n"
    "(arguments, URI, JSON, a value out of range); 3 corrupt store or file; 4 I/O error\n"
    "(a store or input file that does not exist or is a directory, permission denied,\n"
    "standard output that cannot be written); 5 server unavailable or timed out;\n"
    "6 operation not supported; 7 resource exhausted (disk full, map full, all LMDB\n"
    "readers busy); 8 store not in a state that allows it (e.g. open read-only);\n"
    "70 internal. When the reader of standard output goes away (| head), kvdex stops\n"
    "quietly, killed by SIGPIPE as other command-line tools are (a shell shows 141).\n"
    "Stores: lmdb:PATH (default for a bare path), json:PATH (LlamaIndex persist file;\n"
    "a bare *.json path too), memory:, redis://HOST:PORT/DB (?cluster=1 for Redis\n"
    "Cluster), postgresql://... (LlamaIndex's table; postgres:// too).\n";

int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return kExitUsage;
    case ErrorCode::kNotFound:
      return kExitIO;
    case ErrorCode::kCorruption:
      return kExitCorruption;
    case ErrorCode::kIOError:
      return kExitIO;
    case ErrorCode::kUnavailable:
      return kExitUnavailable;
    case ErrorCode::kNotSupported:
      return kExitNotSupported;
    case ErrorCode::kOutOfRange:
      return kExitUsage;
    case ErrorCode::kInternal:
      return kExitInternal;
    case ErrorCode::kFailedPrecondition:
      return kExitFailedPrecondition;
    case ErrorCode::kResourceExhausted:
      return kExitResourceExhausted;
    case ErrorCode::kAlreadyExists:
      return kExitUsage;
    case ErrorCode::kDeadlineExceeded:
      return kExitUnavailable;
    case ErrorCode::kPermissionDenied:
      return kExitIO;
  }
  return kExitInternal;
}

// A missing key or collection: reported on one line, exit status 1.
struct Missing {
  std::string message;
};

// Standard output's reader went away (SIGPIPE ignored by whoever started us): end
// quietly, as if SIGPIPE had ended the process.
struct BrokenPipe {};

// Standard output could not be written: an I/O error (exit 4) with the OS's reason,
// whatever that reason is (a full /dev/full too), as coreutils' close_stdout reports.
[[noreturn]] void stdout_failed(int err) {
  if (err == EPIPE) throw BrokenPipe{};
  throw Error(ErrorCode::kIOError, std::string("cannot write to standard output: ") +
                                       (err != 0 ? std::strerror(err) : "write error"));
}

// Every byte kvdex prints on standard output goes through here, checked.
void print(std::string_view data) {
  if (data.empty()) return;
  errno = 0;
  if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size()) stdout_failed(errno);
}

// Flushes and closes standard output, reporting what the buffered writes could not
// (a write to a full disk fails here, after every fwrite succeeded).
void close_stdout() {
  errno = 0;
  const bool failed_before = std::ferror(stdout) != 0;
  if (std::fflush(stdout) != 0 || failed_before) stdout_failed(errno);
  errno = 0;
  if (std::fclose(stdout) != 0) stdout_failed(errno);
}

// Names as `keys` and `collections` show them: as the content of a JSON string
// (\\, \", \n, \t, \u0000...), so a tab, a newline or a NUL in a name cannot pass
// for a separator. Other characters, UTF-8 included, are printed as they are.
std::string escape_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (const char c : name) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  return out;
}

// json.dumps(indent=2) layout of canonical text: strings are copied untouched.
std::string pretty(std::string_view canonical) {
  std::string out;
  out.reserve(canonical.size() * 2);
  int depth = 0;
  auto newline = [&] {
    out.push_back('\n');
    out.append(static_cast<std::size_t>(depth) * 2, ' ');
  };
  for (std::size_t i = 0; i < canonical.size(); ++i) {
    const char c = canonical[i];
    if (c == '"') {
      // Bounded by the text's end whatever it holds (callers check it first, but a
      // printer must not trust that).
      const std::size_t start = i++;
      while (i < canonical.size() && canonical[i] != '"') i += canonical[i] == '\\' ? 2 : 1;
      i = std::min(i, canonical.size() - 1);
      out.append(canonical.substr(start, i - start + 1));
    } else if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      if (i + 1 < canonical.size() && canonical[i + 1] == close) {
        out.push_back(c);
        out.push_back(close);
        ++i;
      } else {
        out.push_back(c);
        ++depth;
        newline();
      }
    } else if (c == '}' || c == ']') {
      depth = std::max(depth - 1, 0);
      newline();
      out.push_back(c);
    } else if (c == ',') {
      out.push_back(',');
      newline();
      ++i;  // the space after the comma
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string quote(std::string_view s) { return kvdex::json::quote(s); }

// Stored text on its way out (get, dump, export, copy): a damaged record must not
// become invalid JSON on stdout or in a file. Exit 3 (kCorruption), naming where.
// (kvdex's LMDB backend checks only a value's shape on its read path; docs/lmdb.md.)
std::string_view checked_text(std::string_view text, std::string_view store,
                              std::string_view collection, std::string_view key) {
  if (kvdex::json::is_dumps_object(text)) [[likely]]
    return text;
  throw Error(ErrorCode::kCorruption,
              "store '" + std::string(store) + "', collection " +
                  kvdex::json::quote_for_message(collection) + ": the value of key " +
                  kvdex::json::quote_for_message(key) +
                  " is not JSON object text as kvdex writes it (a damaged record: see kvdex "
                  "verify)");
}

// A progress line on stderr with rate and ETA, only when stderr is a terminal.
class Progress {
 public:
  Progress(std::string label, std::uint64_t total, std::string unit)
      : label_(std::move(label)),
        total_(total),
        unit_(std::move(unit)),
        enabled_(::isatty(STDERR_FILENO) == 1),
        start_(Clock::now()),
        last_(start_) {}
  ~Progress() { finish(); }

  void add(std::uint64_t n) {
    done_ += n;
    if (!enabled_) return;
    const auto now = Clock::now();
    if (now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    draw(now);
  }

  void finish() {
    if (!enabled_ || finished_) return;
    finished_ = true;
    draw(Clock::now());
    std::fputc('\n', stderr);
  }

 private:
  using Clock = std::chrono::steady_clock;

  static std::string human(double v) {
    char buf[32];
    if (v >= 1e9) {
      std::snprintf(buf, sizeof buf, "%.1fG", v / 1e9);
    } else if (v >= 1e6) {
      std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
    } else if (v >= 1e3) {
      std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
    } else {
      std::snprintf(buf, sizeof buf, "%.0f", v);
    }
    return buf;
  }

  void draw(Clock::time_point now) {
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done_) / seconds : 0;
    std::string line = "\r\033[K" + label_ + " ";
    if (total_ > 0) {
      const double fraction =
          std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
      const int width = 24;
      const int filled = static_cast<int>(fraction * width);
      line += "[" + std::string(static_cast<std::size_t>(filled), '#') +
              std::string(static_cast<std::size_t>(width - filled), '.') + "] ";
      char pct[16];
      std::snprintf(pct, sizeof pct, "%3.0f%% ", fraction * 100);
      line += pct;
      line += human(static_cast<double>(done_)) + "/" + human(static_cast<double>(total_)) + " " +
              unit_;
      if (rate > 0 && done_ < total_) {
        const auto eta = static_cast<long>(static_cast<double>(total_ - done_) / rate);
        char buf[32];
        std::snprintf(buf, sizeof buf, " ETA %ld:%02ld", eta / 60, eta % 60);
        line += ", " + human(rate) + " " + unit_ + "/s" + buf;
      } else {
        line += ", " + human(rate) + " " + unit_ + "/s";
      }
    } else {
      line +=
          human(static_cast<double>(done_)) + " " + unit_ + ", " + human(rate) + " " + unit_ + "/s";
    }
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
  }

  std::string label_;
  std::uint64_t total_;
  std::string unit_;
  bool enabled_;
  bool finished_ = false;
  std::uint64_t done_ = 0;
  Clock::time_point start_;
  Clock::time_point last_;
};

std::unique_ptr<BaseKVStore> open_store(const std::string& uri, bool writable) {
  kvdex::OpenOptions options;
  options.read_only = !writable;
  options.create_if_missing = writable;
  return kvdex::open(uri, options);
}

bool has_collection(BaseKVStore& store, const std::string& collection) {
  const auto names = store.collections();
  return std::find(names.begin(), names.end(), collection) != names.end();
}

std::string read_all(std::istream& in) {
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Streams `source`'s collections into `sink` in batches, in the source's order.
void copy_collection(BaseKVStore& source, const std::string& source_uri, BaseKVStore& destination,
                     const std::string& collection, int batch_size, Progress& progress) {
  std::vector<EncodedKeyValue> batch;
  batch.reserve(static_cast<std::size_t>(batch_size));
  auto flush = [&] {
    destination.put_all_encoded(batch, collection, batch_size);
    progress.add(batch.size());
    batch.clear();
  };
  std::uint64_t copied = 0;
  source.scan(collection, [&](std::string_view key, std::string_view text) {
    batch.emplace_back(
        std::string(key),
        EncodedValue::adopt_canonical(checked_text(text, source_uri, collection, key), nullptr));
    ++copied;
    if (batch.size() >= static_cast<std::size_t>(batch_size)) flush();
  });
  if (!batch.empty()) flush();
  if (copied == 0 && !has_collection(destination, collection)) {
    // LlamaIndex keeps an empty collection in its persist file, so a copy must too.
    // The store API creates a collection only by writing to it; a put undone in the
    // same atomic batch leaves it empty, and touches no entry since it did not exist.
    kvdex::WriteBatch create;
    create.put(collection, std::string(), EncodedValue::adopt_canonical("{}", nullptr));
    create.remove(collection, std::string());
    destination.write(create);
  }
}

// One JSON Lines record, its errors prefixed with FILE:LINE.
kvdex::json::Record parse_record(std::string_view line, std::size_t line_number,
                                 const std::string& file) {
  try {
    return kvdex::json::parse_record(line);
  } catch (const Error& e) {
    throw Error(e.code(), file + ":" + std::to_string(line_number) + ": " + e.what());
  }
}

// Every option of every subcommand; each subcommand reads the ones it defines.
struct Options {
  std::string store_uri;
  std::string key;
  std::string json_arg;
  std::string collection = std::string(kvdex::kDefaultCollection);
  std::string destination_uri;
  std::string file;
  std::vector<std::string> collections;
  bool pretty_output = false;
  bool all_collections = false;
  bool nul_separated = false;
  int batch_size = 1000;
};

Missing missing_key(const Options& o) {
  return Missing{"key " + quote(o.key) + " not found in collection " + quote(o.collection) +
                 " of " + o.store_uri};
}

Missing missing_collection(const std::string& name, const std::string& store_uri) {
  return Missing{"no collection " + quote(name) + " in " + store_uri};
}

// The collections a copy or an export covers: those named (each must exist) or all.
std::vector<std::string> chosen_collections(BaseKVStore& store, const Options& o,
                                            std::uint64_t& total_keys) {
  std::vector<std::string> names;
  if (o.collections.empty()) {
    names = store.collections();
  } else {
    // Named twice is still one collection: copying or exporting it twice would
    // duplicate its records.
    for (const std::string& name : o.collections) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  total_keys = 0;
  for (const std::string& name : names) {
    if (!o.collections.empty() && !has_collection(store, name))
      throw missing_collection(name, o.store_uri);
    total_keys += store.count(name);
  }
  return names;
}

void run_put(const Options& o) {
  const std::string text = o.json_arg == "-" ? read_all(std::cin) : o.json_arg;
  EncodedValue value = [&] {
    try {
      return EncodedValue::parse(text);
    } catch (const Error& e) {
      throw Error(e.code(), "value for key " + quote(o.key) + ": " + e.what());
    }
  }();
  auto store = open_store(o.store_uri, true);
  store->put_encoded(o.key, std::move(value), o.collection);
  store->close();
}

void run_get(const Options& o) {
  auto store = open_store(o.store_uri, false);
  std::optional<EncodedValue> value = store->get_encoded(o.key, o.collection);
  if (!value) throw missing_key(o);
  const std::string_view text = checked_text(value->text(), o.store_uri, o.collection, o.key);
  std::string out = o.pretty_output ? pretty(text) : std::string(text);
  out.push_back('\n');
  print(out);
}

void run_delete(const Options& o) {
  auto store = open_store(o.store_uri, true);
  if (!store->remove(o.key, o.collection)) throw missing_key(o);
  store->close();
}

void run_keys(const Options& o) {
  auto store = open_store(o.store_uri, false);
  if (!has_collection(*store, o.collection)) throw missing_collection(o.collection, o.store_uri);
  store->scan(o.collection, [&](std::string_view k, std::string_view) {
    if (o.nul_separated) {
      print(k);
      print(std::string_view("\0", 1));
    } else {
      print(escape_name(k) + "\n");
    }
  });
}

void run_dump(const Options& o) {
  auto store = open_store(o.store_uri, false);
  std::string out;
  if (o.all_collections) {
    kvdex::StoreSnapshot snapshot;
    for (const std::string& name : store->collections()) {
      std::vector<EncodedKeyValue> entries = store->get_all_encoded(name);
      for (const auto& [key, value] : entries) checked_text(value.text(), o.store_uri, name, key);
      snapshot.emplace_back(name, std::move(entries));
    }
    kvdex::write_persist_json(snapshot, [&](std::string_view chunk) { out.append(chunk); });
  } else {
    if (!has_collection(*store, o.collection)) throw missing_collection(o.collection, o.store_uri);
    out.push_back('{');
    bool first = true;
    store->scan(o.collection, [&](std::string_view k, std::string_view text) {
      if (!first) out.append(", ");
      first = false;
      kvdex::json::append_quoted(out, k);
      out.append(": ");
      out.append(checked_text(text, o.store_uri, o.collection, k));
    });
    out.push_back('}');
  }
  if (o.pretty_output) out = pretty(out);
  out.push_back('\n');
  print(out);
}

void run_collections(const Options& o) {
  auto store = open_store(o.store_uri, false);
  for (const std::string& name : store->collections()) {
    const std::string count = std::to_string(store->count(name));
    // With -0 the name is raw and the count, which holds no tab, comes last.
    print(o.nul_separated ? name + "\t" + count + std::string(1, '\0')
                          : escape_name(name) + "\t" + count + "\n");
  }
}

void run_stats(const Options& o) {
  auto store = open_store(o.store_uri, false);
  std::uint64_t total_keys = 0, total_bytes = 0;
  const auto names = store->collections();
  for (const std::string& name : names) {
    std::uint64_t n = 0, bytes = 0;
    store->scan(name, [&](std::string_view k, std::string_view text) {
      ++n;
      bytes += k.size() + text.size();
    });
    print("collection " + quote(name) + ": " + std::to_string(n) + " keys, " +
          std::to_string(bytes) + " bytes\n");
    total_keys += n;
    total_bytes += bytes;
  }
  print("total: " + std::to_string(names.size()) + " collections, " + std::to_string(total_keys) +
        " keys, " + std::to_string(total_bytes) + " bytes (keys + JSON text)\n");
}

// A path names the same file however it is spelled (./kv, kv/, a symlink to kv):
// compare what it resolves to, as far as it exists.
std::string resolved_path(const std::string& path) {
  std::error_code ec;
  std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ec);
  if (ec) return path;
  std::string text = resolved.lexically_normal().string();
  while (text.size() > 1 && text.back() == '/') text.pop_back();
  return text;
}

bool same_store(const std::string& a, const std::string& b) {
  const kvdex::StoreUri ua = kvdex::parse_store_uri(a);
  const kvdex::StoreUri ub = kvdex::parse_store_uri(b);
  if (ua.scheme != ub.scheme) return false;
  // Two memory: stores are always distinct.
  if (ua.scheme == "memory") return false;
  if (ua.scheme == "lmdb" || ua.scheme == "json")
    return resolved_path(ua.rest) == resolved_path(ub.rest);
  return ua.rest == ub.rest;
}

void run_copy(const Options& o) {
  if (same_store(o.store_uri, o.destination_uri)) {
    throw Error(ErrorCode::kInvalidArgument,
                "copy: SRC and DST are the same store (" + o.store_uri + ")");
  }
  auto source = open_store(o.store_uri, false);
  auto destination = open_store(o.destination_uri, true);
  std::uint64_t total = 0;
  const std::vector<std::string> names = chosen_collections(*source, o, total);
  Progress progress("copy", total, "keys");
  for (const std::string& name : names)
    copy_collection(*source, o.store_uri, *destination, name, o.batch_size, progress);
  // A store with no collections still copies: its file is "{}", as LlamaIndex writes.
  if (names.empty()) destination->write(kvdex::WriteBatch{});
  progress.finish();
  destination->flush();
}

void run_import(const Options& o) {
  std::ifstream file_in;
  std::istream* in = &std::cin;
  std::uint64_t total_bytes = 0;
  if (o.file != "-") {
    kvdex::check_no_nul(o.file, "file name");
    struct stat st;
    if (::stat(o.file.c_str(), &st) != 0) kvdex::throw_errno(errno, "cannot open", o.file);
    // A directory opens and reads as empty: it would import nothing and succeed.
    if (S_ISDIR(st.st_mode)) kvdex::throw_errno(EISDIR, "cannot read", o.file);
    file_in.open(o.file, std::ios::binary);
    if (!file_in) kvdex::throw_errno(errno, "cannot open", o.file);
    file_in.seekg(0, std::ios::end);
    total_bytes = static_cast<std::uint64_t>(file_in.tellg());
    file_in.seekg(0);
    in = &file_in;
  }
  auto store = open_store(o.store_uri, true);
  Progress progress("import", total_bytes, "B");
  kvdex::WriteBatch batch;
  std::string line;
  std::size_t line_number = 0;
  std::uint64_t records = 0;
  auto flush = [&] {
    if (batch.empty()) return;
    store->write(batch);
    batch.clear();
  };
  const std::string shown_file = o.file == "-" ? "<stdin>" : o.file;
  while (std::getline(*in, line)) {
    ++line_number;
    progress.add(line.size() + 1);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    kvdex::json::Record record = parse_record(line, line_number, shown_file);
    batch.put(record.collection, std::move(record.key), std::move(record.value));
    ++records;
    if (batch.size() >= static_cast<std::size_t>(o.batch_size)) flush();
  }
  // getline stops the same way at the end and at a read error: tell them apart.
  if (in->bad()) kvdex::throw_errno(errno, "cannot read", shown_file);
  flush();
  progress.finish();
  store->close();
  std::fprintf(stderr, "imported %llu records\n", static_cast<unsigned long long>(records));
}

// Streams the records of `names` to `write` in chunks of about kChunk bytes.
void write_records(BaseKVStore& store, const std::string& store_uri,
                   const std::vector<std::string>& names, Progress& progress,
                   const std::function<void(std::string_view)>& write) {
  constexpr std::size_t kChunk = 1 << 16;
  std::string buffer;
  for (const std::string& name : names) {
    store.scan(name, [&](std::string_view k, std::string_view text) {
      kvdex::json::append_record(buffer, name, k, checked_text(text, store_uri, name, k));
      progress.add(1);
      if (buffer.size() >= kChunk) {
        write(buffer);
        buffer.clear();
      }
    });
  }
  if (!buffer.empty()) write(buffer);
}

void run_export(const Options& o) {
  auto store = open_store(o.store_uri, false);
  std::uint64_t total = 0;
  const std::vector<std::string> names = chosen_collections(*store, o, total);
  auto export_to = [&](const std::function<void(std::string_view)>& write) {
    Progress progress("export", total, "keys");
    write_records(*store, o.store_uri, names, progress, write);
    progress.finish();
  };
  if (o.file == "-") {
    export_to(print);
    return;
  }
  // A failed export must never leave a partial file under the requested name; and,
  // as for any output file, its directory is not created.
  kvdex::write_file_atomically(
      kvdex::local_filesystem(), o.file,
      [&](kvdex::WritableFile& out) {
        export_to([&](std::string_view chunk) { out.append(chunk); });
      },
      kvdex::ParentDirectories::kMustExist);
}

// An LMDB store is walked page by page in a child process (LmdbKVStore::verify), so
// damage is reported, not fatal; other stores were checked whole when they opened.
void run_verify(const Options& o) {
  auto store = open_store(o.store_uri, false);
#if KVDEX_WITH_LMDB
  if (auto* lmdb = dynamic_cast<kvdex::LmdbKVStore*>(store.get())) lmdb->verify();
#endif
  const std::vector<std::string> names = store->collections();
  std::uint64_t keys = 0;
  for (const std::string& name : names) keys += store->count(name);
  std::printf("%s: sound (%zu collections, %llu keys)\n", o.store_uri.c_str(), names.size(),
              static_cast<unsigned long long>(keys));
}

using Run = void (*)(const Options&);

// CLI::PositiveNumber's message shows the range as 0 to 1.8e308 in full digits.
const CLI::Validator kAtLeastOne(
    [](std::string& text) -> std::string {
      int n = 0;
      if (!CLI::detail::lexical_cast(text, n)) return "'" + text + "' is not an integer";
      return n >= 1 ? std::string() : "must be at least 1 (got " + text + ")";
    },
    "INT>=1");

// Declares the subcommands and their options, bound to `o`; returns each with its
// function.
std::vector<std::pair<CLI::App*, Run>> add_subcommands(CLI::App& app, Options& o) {
  auto add_store = [&](CLI::App* cmd) {
    cmd->add_option("STORE", o.store_uri, "store URI")->required();
  };
  auto add_collection = [&](CLI::App* cmd) {
    cmd->add_option("-c,--collection", o.collection, "collection (default: data)");
  };

  CLI::App* put = app.add_subcommand("put", "store a JSON object under KEY");
  add_store(put);
  put->add_option("KEY", o.key, "key")->required();
  put->add_option("JSON", o.json_arg, "a JSON object, or - to read it from stdin")->required();
  add_collection(put);

  CLI::App* get = app.add_subcommand("get", "print the value of KEY (nothing else)");
  add_store(get);
  get->add_option("KEY", o.key, "key")->required();
  add_collection(get);
  get->add_flag("--pretty", o.pretty_output, "indent the JSON");

  CLI::App* del = app.add_subcommand("delete", "remove KEY (exit 1 if it was not there)");
  add_store(del);
  del->add_option("KEY", o.key, "key")->required();
  add_collection(del);

  CLI::App* keys = app.add_subcommand(
      "keys", "list the keys of a collection, one per line (escaped as in a JSON string)");
  add_store(keys);
  add_collection(keys);
  keys->add_flag("-0,--null", o.nul_separated, "print each key raw, followed by a NUL byte");

  CLI::App* dump = app.add_subcommand("dump", "print a collection as one JSON object");
  add_store(dump);
  add_collection(dump);
  dump->add_flag("--all", o.all_collections, "every collection: {collection: {key: value}}");
  dump->add_flag("--pretty", o.pretty_output, "indent the JSON");

  CLI::App* colls = app.add_subcommand(
      "collections", "list collections (escaped as in a JSON string), a tab, their key counts");
  add_store(colls);
  colls->add_flag("-0,--null", o.nul_separated,
                  "print each name raw, a tab, the count, then a NUL byte");

  CLI::App* stats = app.add_subcommand("stats", "count collections, keys and bytes");
  add_store(stats);

  CLI::App* copy = app.add_subcommand("copy", "copy collections from SRC to DST in batches");
  copy->add_option("SRC", o.store_uri, "source store URI")->required();
  copy->add_option("DST", o.destination_uri, "destination store URI")->required();
  copy->add_option("-c,--collection", o.collections, "copy only these collections (repeatable)");
  copy->add_option("--batch-size", o.batch_size, "pairs per write batch (default 1000)")
      ->check(kAtLeastOne);

  CLI::App* import = app.add_subcommand("import", "load JSON Lines records into STORE");
  add_store(import);
  import
      ->add_option("FILE", o.file,
                   "JSON Lines file ({\"collection\", \"key\", \"value\"} per line), or -")
      ->required();
  import->add_option("--batch-size", o.batch_size, "records per write batch (default 1000)")
      ->check(kAtLeastOne);

  CLI::App* exp = app.add_subcommand("export", "write STORE as JSON Lines, streaming");
  add_store(exp);
  exp->add_option("FILE", o.file, "output file, or - for stdout")->required();
  exp->add_option("-c,--collection", o.collections, "export only these collections (repeatable)");

  CLI::App* verify =
      app.add_subcommand("verify", "check every page and record of STORE (exit 3 if damaged)");
  add_store(verify);

  return {
      {put, run_put},       {get, run_get},           {del, run_delete},    {keys, run_keys},
      {dump, run_dump},     {colls, run_collections}, {stats, run_stats},   {copy, run_copy},
      {import, run_import}, {exp, run_export},        {verify, run_verify},
  };
}

}  // namespace

namespace {

int run_main(int argc, char** argv) {
  CLI::App app{
      "kvdex: inspect, edit, copy, import and export kvdex and LlamaIndex key-value stores"};
  app.name("kvdex");
  app.set_version_flag("--version", std::string("kvdex ") + KVDEX_VERSION_STRING);
  app.footer(kExitCodesHelp);
  app.require_subcommand(1);
  app.fallthrough();
  Options options;
  const std::vector<std::pair<CLI::App*, Run>> subcommands = add_subcommands(app, options);

  // The first argument that is not an option names the command (kvdex itself takes
  // no option with a value): CLI11 would only say that a subcommand is required.
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    if (arg.starts_with("-")) continue;
    const bool known = std::any_of(subcommands.begin(), subcommands.end(), [&](const auto& entry) {
      return entry.first->check_name(argv[i]);
    });
    if (!known) {
      std::string names;
      for (const auto& entry : subcommands)
        names += (names.empty() ? "" : ", ") + entry.first->get_name();
      std::cerr << "kvdex: unknown command " << quote(arg) << " (commands: " << names
                << "; see kvdex --help)\n";
      return kExitUsage;
    }
    break;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "kvdex: " << e.what() << " (see kvdex --help)\n";
    return kExitUsage;
  }

  try {
    for (const auto& [command, run] : subcommands) {
      if (*command) run(options);
    }
  } catch (const Missing& m) {
    std::cerr << "kvdex: " << m.message << "\n";
    return kExitMissing;
  } catch (const BrokenPipe&) {
    return kExitBrokenPipe;
  } catch (const Error& e) {
    std::cerr << "kvdex: " << e.what() << "\n";
    return exit_code_for(e.code());
  } catch (const std::exception& e) {
    std::cerr << "kvdex: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  // A reader that stops reading (| head) ends kvdex as it ends cat or grep, even when
  // whoever started kvdex ignored SIGPIPE.
  ::signal(SIGPIPE, SIG_DFL);
  const int status = run_main(argc, argv);
  try {
    close_stdout();  // --help and --version print too
  } catch (const BrokenPipe&) {
    return kExitBrokenPipe;
  } catch (const Error& e) {
    // A failed command has said why already; a write error of its own output was
    // reported with it.
    if (status != kExitOk) return status;
    std::cerr << "kvdex: " << e.what() << "\n";
    return kExitIO;
  }
  return status;
}
