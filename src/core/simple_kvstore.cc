#include "kvdex/simple_kvstore.h"

#include <simdjson.h>

#include <cstring>
#include <map>
#include <optional>

#include "core/json_codec.h"
#include "kvdex/error.h"

namespace kvdex {
namespace {

using Mapping = SimpleKVStore::Mapping;
using Collections = InsertionOrderedMap<std::unique_ptr<Mapping>>;

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

std::string quote_name(std::string_view s) {
  std::string out;
  detail::append_json_string(out, s.size() > 200 ? s.substr(0, 200) : s);
  return out;
}

// The fast path. simdjson's stage 1 (SIMD, picked at run time for this CPU, UTF-8
// validated) finds every structural character; we walk them to slice each value's
// text out of the buffer without building anything. (Debian's simdjson compiles
// its On-Demand front end for the build's baseline target only, which on x86-64 is
// the scalar fallback kernel; stage 1 through the implementation interface keeps
// the runtime dispatch. See docs/design-notes.md.)
//
// Returns false whenever anything is unusual; the exact path then either accepts the
// text as Python would or names the error precisely. Values that are already
// canonical keep pointing into `buffer`.
// The bytes of a persist file, followed by at least SIMDJSON_PADDING readable bytes.
struct PaddedText {
  std::shared_ptr<const void> owner;  // keeps `text` alive; values loaded may share it
  std::string_view text;
};

bool load_with_simdjson(const PaddedText& buffer, std::size_t start, Collections& out) {
  const std::string_view text = buffer.text;
  const std::size_t length = text.size() - start;
  if (length == 0 || length >= 0xFFFFFF00u) return false;  // 32-bit structural offsets
  std::unique_ptr<simdjson::internal::dom_parser_implementation> stage1;
  if (simdjson::get_active_implementation()->create_dom_parser_implementation(
          length, simdjson::DEFAULT_MAX_DEPTH, stage1) != simdjson::SUCCESS) {
    return false;
  }
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data() + start);
  if (stage1->stage1(bytes, length, simdjson::stage1_mode::regular) != simdjson::SUCCESS)
    return false;
  const std::uint32_t* index = stage1->structural_indexes.get();
  const std::uint32_t count = stage1->n_structural_indexes;
  const std::string_view json(text.data() + start, length);

  std::uint32_t i = 0;
  auto at = [&](std::uint32_t k) -> char { return k < count ? json[index[k]] : '\0'; };
  detail::JsonParser key_parser(json);
  std::string scratch;
  auto read_key = [&](std::string& key) -> bool {
    if (at(i) != '"') return false;
    key_parser.set_position(index[i]);
    try {
      key.assign(key_parser.parse_string(scratch));
    } catch (const detail::JsonSyntaxError&) {
      return false;
    }
    ++i;
    if (at(i) != ':') return false;
    ++i;
    return true;
  };

  if (at(i) != '{') return false;
  ++i;
  std::string name;
  std::string key;
  if (at(i) == '}') {
    ++i;
  } else {
    for (;;) {
      if (!read_key(name) || at(i) != '{') return false;
      ++i;
      auto mapping = std::make_unique<Mapping>();
      // Counting the entries first (one pass over the collection's structurals, about
      // 1% of the load) lets the map be built at its final size: growing it re-places
      // every entry at each doubling, a cache miss each on a large collection.
      {
        std::uint32_t entries = 0;
        int depth = 0;
        for (std::uint32_t k = i; k < count; ++k) {
          const char c = json[index[k]];
          if (c == '{' || c == '[') {
            ++depth;
          } else if (c == '}' || c == ']') {
            if (--depth < 0) break;
          } else if (c == ',' && depth == 0) {
            ++entries;
          }
        }
        if (at(i) != '}') mapping->reserve(std::size_t{entries} + 1);
      }
      if (at(i) == '}') {
        ++i;
      } else {
        for (;;) {
          if (!read_key(key) || at(i) != '{') return false;
          // Skip the value: its end is the structural that closes its first brace.
          const std::uint32_t first = i;
          int depth = 0;
          for (; i < count; ++i) {
            const char c = json[index[i]];
            if (c == '{' || c == '[') {
              ++depth;
            } else if (c == '}' || c == ']') {
              if (--depth == 0) break;
            }
          }
          if (i >= count || json[index[i]] != '}') return false;
          const std::string_view raw = json.substr(index[first], index[i] + 1 - index[first]);
          ++i;
          if (detail::is_canonical_object(raw)) {
            mapping->insert_or_assign(key, EncodedValue::adopt_canonical(raw, buffer.owner));
          } else {
            std::string canonical;
            try {
              canonical = detail::canonicalize_object(raw);
            } catch (const detail::JsonSyntaxError&) {
              return false;
            }
            mapping->insert_or_assign(key, EncodedValue::adopt_canonical(canonical, nullptr));
          }
          if (at(i) == ',') {
            ++i;
            continue;
          }
          if (at(i) != '}') return false;
          ++i;
          break;
        }
      }
      out.insert_or_assign(name, std::move(mapping));
      if (at(i) == ',') {
        ++i;
        continue;
      }
      if (at(i) != '}') return false;
      ++i;
      break;
    }
  }
  return i == count;  // nothing but whitespace after the top-level object
}

// The exact path: kvdex's own parser, with json.loads' acceptance and precise errors.
// Python first parses the whole file, then LlamaIndex uses the dict, where a later
// duplicate key replaces an earlier one. So a collection or value that is not an
// object is an error only if nothing later replaces it, and only once the whole file
// has parsed.
void load_exactly(std::string_view text, std::size_t start, std::string_view source,
                  Collections& out) {
  detail::JsonParser parser(text);
  parser.set_position(start);
  auto corrupt = [&](std::size_t at, const std::string& what) -> Error {
    return Error(ErrorCode::kCorruption,
                 std::string(source) + ": " + what + " at " + detail::describe_offset(text, at));
  };
  struct Rejected {
    std::size_t offset;
    std::string message;
  };
  // Not-an-object entries still standing, by collection name, then by key ("" entry
  // of the outer map's value stands for the collection itself).
  std::map<std::string, std::pair<std::optional<Rejected>, std::map<std::string, Rejected>>>
      rejected;
  std::string scratch;
  auto read_key = [&]() {
    if (parser.peek() != '"') {
      parser.fail(parser.position(), "expecting property name enclosed in double quotes");
    }
    std::string key(parser.parse_string(scratch));
    parser.expect(':', "expecting ':' delimiter");
    return key;
  };
  // Calls `member` for each member of the object at the parser's position.
  auto for_each_member = [&](const auto& member) {
    parser.expect('{', "expecting '{'");
    if (parser.peek() == '}') {
      parser.set_position(parser.position() + 1);
      return;
    }
    for (;;) {
      member(read_key());
      const char next = parser.peek();
      if (next == '}') {
        parser.set_position(parser.position() + 1);
        return;
      }
      parser.expect(',', "expecting ',' delimiter");
    }
  };
  try {
    if (parser.peek() != '{') {
      if (parser.at_end()) throw corrupt(parser.position(), "expecting value (the file is empty)");
      throw corrupt(parser.position(), "expecting '{': a persist file holds one JSON object");
    }
    for_each_member([&](std::string name) {
      // Plain references, not a structured binding: the lambda below captures one, which
      // clang before 16 rejects.
      auto& standing = rejected[name];
      std::optional<Rejected>& collection_rejected = standing.first;
      std::map<std::string, Rejected>& keys_rejected = standing.second;
      if (parser.peek() != '{') {
        const std::size_t at = parser.position();
        detail::DiscardHandler discard;
        parser.parse_value(discard);
        collection_rejected =
            Rejected{at, "collection " + quote_name(name) + " is not a JSON object"};
        keys_rejected.clear();
        out.insert_or_assign(name, std::make_unique<Mapping>());  // holds the first position
        return;
      }
      collection_rejected.reset();
      keys_rejected.clear();
      auto mapping = std::make_unique<Mapping>();
      for_each_member([&](std::string key) {
        if (parser.peek() != '{') {
          const std::size_t at = parser.position();
          detail::DiscardHandler discard;
          parser.parse_value(discard);
          keys_rejected[key] = Rejected{at, "value of key " + quote_name(key) + " in collection " +
                                                quote_name(name) + " is not a JSON object"};
          mapping->insert_or_assign(key, EncodedValue());  // holds the first position
          return;
        }
        keys_rejected.erase(key);
        mapping->insert_or_assign(
            key, EncodedValue::adopt_canonical(detail::parse_canonical_value(parser), nullptr));
      });
      out.insert_or_assign(name, std::move(mapping));
    });
    parser.skip_whitespace();
    if (!parser.at_end()) parser.fail(parser.position(), "extra data");
  } catch (const detail::JsonSyntaxError& e) {
    throw corrupt(e.offset, e.message);
  }
  const Rejected* first = nullptr;
  for (const auto& [name, entry] : rejected) {
    if (entry.first && (!first || entry.first->offset < first->offset)) first = &*entry.first;
    for (const auto& [key, r] : entry.second) {
      if (!first || r.offset < first->offset) first = &r;
    }
  }
  if (first) throw corrupt(first->offset, first->message);
}

class LoadedStore : public SimpleKVStore {
 public:
  void adopt(Collections collections) { replace_contents(std::move(collections)); }
};

std::unique_ptr<SimpleKVStore> load(const PaddedText& buffer, std::string_view source) {
  const std::string_view text = buffer.text;
  const std::size_t start = text.starts_with(kUtf8Bom) ? kUtf8Bom.size() : 0;
  Collections collections;
  if (!load_with_simdjson(buffer, start, collections)) {
    collections.clear();
    load_exactly(text, start, source, collections);
  }
  auto store = std::make_unique<LoadedStore>();
  store->adopt(std::move(collections));
  return store;
}

}  // namespace

void write_persist_json(const StoreSnapshot& snapshot,
                        const std::function<void(std::string_view)>& sink) {
  constexpr std::size_t kChunk = 1 << 20;
  constexpr std::size_t kDirect = 1 << 16;  // larger values skip the buffer
  std::string buf;
  buf.reserve(kChunk + kDirect);
  auto flush = [&] {
    if (!buf.empty()) sink(buf);
    buf.clear();
  };
  buf.push_back('{');
  bool first_collection = true;
  for (const auto& [name, entries] : snapshot) {
    if (!first_collection) buf.append(", ");
    first_collection = false;
    detail::append_key(buf, name);
    buf.append(": {");
    bool first_entry = true;
    for (const auto& [key, value] : entries) {
      if (!first_entry) buf.append(", ");
      first_entry = false;
      detail::append_key(buf, key);
      buf.append(": ");
      if (value.size() >= kDirect) {
        flush();
        sink(value.text());
      } else {
        buf.append(value.text());
        if (buf.size() >= kChunk) flush();
      }
    }
    buf.push_back('}');
  }
  buf.push_back('}');
  flush();
}

void SimpleKVStore::persist(const std::string& persist_path, FileSystem* fs) {
  const StoreSnapshot data = snapshot();
  write_file_atomically(fs ? *fs : local_filesystem(), persist_path, [&](WritableFile& file) {
    write_persist_json(data, [&](std::string_view chunk) { file.append(chunk); });
  });
}

std::unique_ptr<SimpleKVStore> SimpleKVStore::from_persist_path(const std::string& persist_path,
                                                                FileSystem* fs) {
  // Read into memory nobody initializes first: zero-filling a large file's buffer
  // costs about a third as much as reading it.
  std::unique_ptr<ReadableFile> file = (fs ? *fs : local_filesystem()).open_readable(persist_path);
  const auto size = static_cast<std::size_t>(file->size());
  std::shared_ptr<char[]> bytes(
      std::make_unique_for_overwrite<char[]>(size + simdjson::SIMDJSON_PADDING));
  std::size_t have = 0;
  while (have < size) {
    const std::size_t got = file->read(bytes.get() + have, size - have);
    if (got == 0) break;
    have += got;
  }
  if (have != size) {
    throw Error(ErrorCode::kIOError, "file '" + persist_path + "' changed size while being read");
  }
  std::memset(bytes.get() + size, 0, simdjson::SIMDJSON_PADDING);
  const std::string_view text(bytes.get(), size);
  return load(PaddedText{std::move(bytes), text}, persist_path);
}

std::string SimpleKVStore::to_json_text() const {
  std::string out;
  write_persist_json(snapshot(), [&](std::string_view chunk) { out.append(chunk); });
  return out;
}

std::unique_ptr<SimpleKVStore> SimpleKVStore::from_json_text(std::string text,
                                                             std::string_view source_name) {
  text.reserve(text.size() + simdjson::SIMDJSON_PADDING);
  auto owner = std::make_shared<const std::string>(std::move(text));
  const std::string_view view = *owner;
  return load(PaddedText{std::move(owner), view}, source_name);
}

Value SimpleKVStore::to_dict() const {
  Value out = Value::object();
  auto& collections = out.get_ref<Value::object_t&>();
  for (const auto& [name, entries] : snapshot()) {
    Value collection = Value::object();
    auto& members = collection.get_ref<Value::object_t&>();
    members.Container::reserve(entries.size());
    for (const auto& [key, value] : entries) members.Container::emplace_back(key, value.decode());
    collections.Container::emplace_back(name, std::move(collection));
  }
  return out;
}

std::unique_ptr<SimpleKVStore> SimpleKVStore::from_dict(const Value& data) {
  if (!data.is_object()) {
    throw Error(
        ErrorCode::kInvalidArgument,
        std::string("from_dict: expected an object of collections, got ") + data.type_name());
  }
  Collections collections;
  for (auto it = data.begin(); it != data.end(); ++it) {
    if (!it.value().is_object()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "from_dict: collection " + quote_name(it.key()) + " is not an object");
    }
    auto mapping = std::make_unique<Mapping>();
    for (auto entry = it.value().begin(); entry != it.value().end(); ++entry) {
      if (!entry.value().is_object()) {
        throw Error(ErrorCode::kInvalidArgument, "from_dict: value of key " +
                                                     quote_name(entry.key()) + " in collection " +
                                                     quote_name(it.key()) + " is not an object");
      }
      mapping->insert_or_assign(entry.key(), EncodedValue::encode(entry.value()));
    }
    collections.insert_or_assign(it.key(), std::move(mapping));
  }
  auto store = std::make_unique<LoadedStore>();
  store->adopt(std::move(collections));
  return store;
}

}  // namespace kvdex
