// kvdex — look inside a key-value store, fix it, move it.
//
// Every STORE is a URI opened through kvdex::open: lmdb:PATH (the default for a
// bare path), json:PATH (a LlamaIndex persist file; a bare *.json path too),
// memory:, and the server backends compiled in.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/json_codec.h"
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

constexpr const char* kExitCodesHelp =
    "Exit status: 0 success; 1 key or collection not found; 2 bad usage or bad input\n"
    "(arguments, URI, JSON); 3 corrupt store or file; 4 I/O error (including a store\n"
    "that does not exist, permission denied); 5 server unavailable or timed out;\n"
    "6 operation not supported; 7 resource exhausted (disk full, map full, all LMDB\n"
    "readers busy); 8 store not in a state that allows it (e.g. open read-only);\n"
    "70 internal.\n"
    "Stores: lmdb:PATH (default for a bare path), json:PATH (LlamaIndex persist file;\n"
    "a bare *.json path too), memory:, redis://..., postgresql://... when built in.\n";

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
      const std::size_t start = i++;
      while (canonical[i] != '"') i += canonical[i] == '\\' ? 2 : 1;
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
      --depth;
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

std::string quote(std::string_view s) {
  std::string out;
  kvdex::detail::append_json_string(out, s);
  return out;
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
void copy_collection(BaseKVStore& source, BaseKVStore& destination, const std::string& collection,
                     int batch_size, Progress& progress) {
  std::vector<EncodedKeyValue> batch;
  batch.reserve(static_cast<std::size_t>(batch_size));
  auto flush = [&] {
    destination.put_all_encoded(batch, collection, batch_size);
    progress.add(batch.size());
    batch.clear();
  };
  source.scan(collection, [&](std::string_view key, std::string_view text) {
    batch.emplace_back(std::string(key), EncodedValue::adopt_canonical(text, nullptr));
    if (batch.size() >= static_cast<std::size_t>(batch_size)) flush();
  });
  if (!batch.empty()) flush();
}

// One JSON Lines record: {"collection": C, "key": K, "value": V}.
struct Record {
  std::string collection;
  std::string key;
  EncodedValue value;
};

Record parse_record(std::string_view line, std::size_t line_number, const std::string& file) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument,
                 file + ":" + std::to_string(line_number) + ": " + why);
  };
  std::string canonical;
  try {
    canonical = kvdex::detail::canonicalize_object(line);
  } catch (const kvdex::detail::JsonSyntaxError& e) {
    throw bad(e.message + " at " + kvdex::detail::describe_offset(line, e.offset));
  }
  kvdex::detail::JsonParser parser(canonical);
  kvdex::detail::DiscardHandler skip;
  std::optional<std::string> collection, key;
  std::optional<EncodedValue> value;
  std::string scratch;
  parser.expect('{', "expecting '{'");
  while (parser.peek() != '}') {
    if (parser.peek() == ',') parser.set_position(parser.position() + 1);
    parser.skip_whitespace();
    const std::string field(parser.parse_string(scratch));
    parser.expect(':', "expecting ':'");
    parser.skip_whitespace();
    const std::size_t start = parser.position();
    if (field == "collection" || field == "key") {
      if (parser.peek() != '"') throw bad("\"" + field + "\" must be a string");
      (field == "collection" ? collection : key) = std::string(parser.parse_string(scratch));
    } else {
      parser.parse_value(skip);
      if (field == "value") {
        const std::string_view raw =
            std::string_view(canonical).substr(start, parser.position() - start);
        if (raw.empty() || raw[0] != '{') throw bad("\"value\" must be a JSON object");
        value = EncodedValue::adopt_canonical(raw, nullptr);
      }
    }
  }
  if (!key) throw bad("missing \"key\"");
  if (!value) throw bad("missing \"value\"");
  return Record{collection.value_or(std::string(kvdex::kDefaultCollection)), *key, *value};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "kvdex: inspect, edit, copy, import and export kvdex and LlamaIndex key-value stores"};
  app.name("kvdex");
  app.set_version_flag("--version", std::string("kvdex ") + KVDEX_VERSION_STRING);
  app.footer(kExitCodesHelp);
  app.require_subcommand(1);
  app.fallthrough();

  std::string store_uri, key, json_arg, collection = std::string(kvdex::kDefaultCollection);
  std::string destination_uri, file;
  std::vector<std::string> collections;
  bool pretty_output = false, all_collections = false;
  int batch_size = 1000;

  auto add_store = [&](CLI::App* cmd) {
    cmd->add_option("STORE", store_uri, "store URI")->required();
  };
  auto add_collection = [&](CLI::App* cmd) {
    cmd->add_option("-c,--collection", collection, "collection (default: data)");
  };

  CLI::App* put = app.add_subcommand("put", "store a JSON object under KEY");
  add_store(put);
  put->add_option("KEY", key, "key")->required();
  put->add_option("JSON", json_arg, "a JSON object, or - to read it from stdin")->required();
  add_collection(put);

  CLI::App* get = app.add_subcommand("get", "print the value of KEY (nothing else)");
  add_store(get);
  get->add_option("KEY", key, "key")->required();
  add_collection(get);
  get->add_flag("--pretty", pretty_output, "indent the JSON");

  CLI::App* del = app.add_subcommand("delete", "remove KEY (exit 1 if it was not there)");
  add_store(del);
  del->add_option("KEY", key, "key")->required();
  add_collection(del);

  CLI::App* keys = app.add_subcommand("keys", "list the keys of a collection, one per line");
  add_store(keys);
  add_collection(keys);

  CLI::App* dump = app.add_subcommand("dump", "print a collection as one JSON object");
  add_store(dump);
  add_collection(dump);
  dump->add_flag("--all", all_collections, "every collection: {collection: {key: value}}");
  dump->add_flag("--pretty", pretty_output, "indent the JSON");

  CLI::App* colls = app.add_subcommand("collections", "list collections with their key counts");
  add_store(colls);

  CLI::App* stats = app.add_subcommand("stats", "count collections, keys and bytes");
  add_store(stats);

  CLI::App* copy = app.add_subcommand("copy", "copy collections from SRC to DST in batches");
  copy->add_option("SRC", store_uri, "source store URI")->required();
  copy->add_option("DST", destination_uri, "destination store URI")->required();
  copy->add_option("-c,--collection", collections, "copy only these collections (repeatable)");
  copy->add_option("--batch-size", batch_size, "pairs per write batch (default 1000)")
      ->check(CLI::PositiveNumber);

  CLI::App* import = app.add_subcommand("import", "load JSON Lines records into STORE");
  add_store(import);
  import
      ->add_option("FILE", file,
                   "JSON Lines file ({\"collection\", \"key\", \"value\"} per line), or -")
      ->required();
  import->add_option("--batch-size", batch_size, "records per write batch (default 1000)")
      ->check(CLI::PositiveNumber);

  CLI::App* exp = app.add_subcommand("export", "write STORE as JSON Lines, streaming");
  add_store(exp);
  exp->add_option("FILE", file, "output file, or - for stdout")->required();
  exp->add_option("-c,--collection", collections, "export only these collections (repeatable)");

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
    if (*put) {
      const std::string text = json_arg == "-" ? read_all(std::cin) : json_arg;
      EncodedValue value = [&] {
        try {
          return EncodedValue::parse(text);
        } catch (const Error& e) {
          throw Error(e.code(), "value for key " + quote(key) + ": " + e.what());
        }
      }();
      auto store = open_store(store_uri, true);
      store->put_encoded(key, std::move(value), collection);
      store->flush();
    } else if (*get) {
      auto store = open_store(store_uri, false);
      std::optional<EncodedValue> value = store->get_encoded(key, collection);
      if (!value)
        throw Missing{"key " + quote(key) + " not found in collection " + quote(collection) +
                      " of " + store_uri};
      const std::string out = pretty_output ? pretty(value->text()) : std::string(value->text());
      std::fwrite(out.data(), 1, out.size(), stdout);
      std::fputc('\n', stdout);
    } else if (*del) {
      auto store = open_store(store_uri, true);
      if (!store->remove(key, collection)) {
        throw Missing{"key " + quote(key) + " not found in collection " + quote(collection) +
                      " of " + store_uri};
      }
      store->flush();
    } else if (*keys) {
      auto store = open_store(store_uri, false);
      if (!has_collection(*store, collection))
        throw Missing{"no collection " + quote(collection) + " in " + store_uri};
      store->scan(collection, [](std::string_view k, std::string_view) {
        std::fwrite(k.data(), 1, k.size(), stdout);
        std::fputc('\n', stdout);
      });
    } else if (*dump) {
      auto store = open_store(store_uri, false);
      std::string out;
      if (all_collections) {
        kvdex::StoreSnapshot snapshot;
        for (const std::string& name : store->collections()) {
          snapshot.emplace_back(name, store->get_all_encoded(name));
        }
        kvdex::write_persist_json(snapshot, [&](std::string_view chunk) { out.append(chunk); });
      } else {
        if (!has_collection(*store, collection))
          throw Missing{"no collection " + quote(collection) + " in " + store_uri};
        out.push_back('{');
        bool first = true;
        store->scan(collection, [&](std::string_view k, std::string_view text) {
          if (!first) out.append(", ");
          first = false;
          kvdex::detail::append_json_string(out, k);
          out.append(": ");
          out.append(text);
        });
        out.push_back('}');
      }
      if (pretty_output) out = pretty(out);
      out.push_back('\n');
      std::fwrite(out.data(), 1, out.size(), stdout);
    } else if (*colls) {
      auto store = open_store(store_uri, false);
      for (const std::string& name : store->collections()) {
        std::printf("%s\t%llu\n", name.c_str(),
                    static_cast<unsigned long long>(store->count(name)));
      }
    } else if (*stats) {
      auto store = open_store(store_uri, false);
      std::uint64_t total_keys = 0, total_bytes = 0;
      const auto names = store->collections();
      for (const std::string& name : names) {
        std::uint64_t n = 0, bytes = 0;
        store->scan(name, [&](std::string_view k, std::string_view text) {
          ++n;
          bytes += k.size() + text.size();
        });
        std::printf("collection %s: %llu keys, %llu bytes\n", quote(name).c_str(),
                    static_cast<unsigned long long>(n), static_cast<unsigned long long>(bytes));
        total_keys += n;
        total_bytes += bytes;
      }
      std::printf("total: %zu collections, %llu keys, %llu bytes (keys + JSON text)\n",
                  names.size(), static_cast<unsigned long long>(total_keys),
                  static_cast<unsigned long long>(total_bytes));
    } else if (*copy) {
      if (kvdex::parse_store_uri(store_uri).rest == kvdex::parse_store_uri(destination_uri).rest &&
          kvdex::parse_store_uri(store_uri).scheme ==
              kvdex::parse_store_uri(destination_uri).scheme &&
          kvdex::parse_store_uri(store_uri).scheme != "memory") {
        throw Error(ErrorCode::kInvalidArgument,
                    "copy: SRC and DST are the same store (" + store_uri + ")");
      }
      auto source = open_store(store_uri, false);
      auto destination = open_store(destination_uri, true);
      std::vector<std::string> names = collections.empty() ? source->collections() : collections;
      std::uint64_t total = 0;
      for (const std::string& name : names) {
        if (!collections.empty() && !has_collection(*source, name)) {
          throw Missing{"no collection " + quote(name) + " in " + store_uri};
        }
        total += source->count(name);
      }
      Progress progress("copy", total, "keys");
      for (const std::string& name : names)
        copy_collection(*source, *destination, name, batch_size, progress);
      progress.finish();
      destination->flush();
    } else if (*import) {
      std::ifstream file_in;
      std::istream* in = &std::cin;
      std::uint64_t total_bytes = 0;
      if (file != "-") {
        file_in.open(file, std::ios::binary);
        if (!file_in) kvdex::throw_errno(errno, "cannot open", file);
        file_in.seekg(0, std::ios::end);
        total_bytes = static_cast<std::uint64_t>(file_in.tellg());
        file_in.seekg(0);
        in = &file_in;
      }
      auto store = open_store(store_uri, true);
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
      while (std::getline(*in, line)) {
        ++line_number;
        progress.add(line.size() + 1);
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        Record record = parse_record(line, line_number, file == "-" ? "<stdin>" : file);
        batch.put(record.collection, std::move(record.key), std::move(record.value));
        ++records;
        if (batch.size() >= static_cast<std::size_t>(batch_size)) flush();
      }
      flush();
      progress.finish();
      store->flush();
      std::fprintf(stderr, "imported %llu records\n", static_cast<unsigned long long>(records));
    } else if (*exp) {
      auto store = open_store(store_uri, false);
      std::vector<std::string> names = collections.empty() ? store->collections() : collections;
      std::uint64_t total = 0;
      for (const std::string& name : names) {
        if (!collections.empty() && !has_collection(*store, name)) {
          throw Missing{"no collection " + quote(name) + " in " + store_uri};
        }
        total += store->count(name);
      }
      std::FILE* out = stdout;
      std::string temp;
      // Written beside the target and renamed at the end, so a failed export never
      // leaves a partial file under the requested name.
      struct TempGuard {
        std::string* path;
        std::FILE** file;
        ~TempGuard() {
          if (!path->empty()) {
            if (*file != stdout) std::fclose(*file);
            std::remove(path->c_str());
          }
        }
      } guard{&temp, &out};
      if (file != "-") {
        temp = file + ".tmp-" + std::to_string(::getpid());
        out = std::fopen(temp.c_str(), "wb");
        if (out == nullptr) {
          temp.clear();
          kvdex::throw_errno(errno, "cannot create", file);
        }
      }
      Progress progress("export", total, "keys");
      std::string buffer;
      for (const std::string& name : names) {
        store->scan(name, [&](std::string_view k, std::string_view text) {
          buffer.clear();
          buffer.append("{\"collection\": ");
          kvdex::detail::append_json_string(buffer, name);
          buffer.append(", \"key\": ");
          kvdex::detail::append_json_string(buffer, k);
          buffer.append(", \"value\": ");
          buffer.append(text);
          buffer.append("}\n");
          if (std::fwrite(buffer.data(), 1, buffer.size(), out) != buffer.size()) {
            kvdex::throw_errno(errno, "cannot write", file);
          }
          progress.add(1);
        });
      }
      progress.finish();
      if (out != stdout) {
        if (std::fflush(out) != 0 || ::fsync(fileno(out)) != 0)
          kvdex::throw_errno(errno, "cannot write", file);
        std::fclose(out);
        out = stdout;
        if (std::rename(temp.c_str(), file.c_str()) != 0)
          kvdex::throw_errno(errno, "cannot rename to", file);
        temp.clear();
      }
    }
  } catch (const Missing& m) {
    std::cerr << "kvdex: " << m.message << "\n";
    return kExitMissing;
  } catch (const Error& e) {
    std::cerr << "kvdex: " << e.what() << "\n";
    return exit_code_for(e.code());
  } catch (const std::exception& e) {
    std::cerr << "kvdex: internal error: " << e.what() << "\n";
    return kExitInternal;
  }
  return kExitOk;
}
