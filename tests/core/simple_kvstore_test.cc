#include "kvdex/simple_kvstore.h"

#include <gtest/gtest.h>

#include "kvdex/json.h"
#include "test_util.h"
#include "testing/filesystems.h"

namespace kvdex {
namespace {

using testing::MemoryFileSystem;
using testing::TempDir;

TEST(SimpleKVStore, PersistWritesJsonDumpsOfTheNestedDict) {
  SimpleKVStore store;
  store.put("id1", {{"__data__", {{"text", "héllo\n"}, {"score", 0.5}}}, {"__type__", "1"}},
            "docstore/data");
  store.put("id1", {{"doc_hash", "h"}}, "docstore/metadata");
  store.put("x", {{"empty", Value::object()}, {"list", Value::array()}});
  EXPECT_EQ(
      store.to_json_text(),
      R"({"docstore/data": {"id1": {"__data__": {"text": "h\u00e9llo\n", "score": 0.5}, "__type__": "1"}}, )"
      R"("docstore/metadata": {"id1": {"doc_hash": "h"}}, "data": {"x": {"empty": {}, "list": []}}})");
  EXPECT_EQ(SimpleKVStore().to_json_text(), "{}");
}

TEST(SimpleKVStore, PersistAndLoadRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("storage/nested/docstore.json");
  SimpleKVStore store;
  for (int i = 0; i < 1000; ++i) {
    store.put("k" + std::to_string(i), {{"i", i}, {"f", i * 0.1}, {"s", std::string(i % 50, 'z')}},
              "c" + std::to_string(i % 3));
  }
  store.remove("k10", "c1");
  store.persist(path);
  auto loaded = SimpleKVStore::from_persist_path(path);
  EXPECT_EQ(loaded->to_json_text(), store.to_json_text());
  EXPECT_EQ(testing::read_file_bytes(path), store.to_json_text());
  EXPECT_EQ(loaded->collections(), (std::vector<std::string>{"c0", "c1", "c2"}));
  EXPECT_EQ(loaded->get("k7", "c1"),
            (Value{{"i", 7}, {"f", 0.7000000000000001}, {"s", std::string(7, 'z')}}));
  EXPECT_FALSE(loaded->get("k10", "c1").has_value());
  // The loaded store is a normal store.
  loaded->put("new", {{"v", 1}}, "c0");
  EXPECT_TRUE(loaded->remove("k0", "c0"));
  EXPECT_EQ(loaded->get_all("c0").back().first, "new");
}

TEST(SimpleKVStore, LoadsWhatPythonAcceptsAndRewritesItCanonically) {
  // Indented, duplicate keys (last wins, first position), NaN, uppercase escapes, BOM.
  const std::string text =
      "\xEF\xBB\xBF{\n  \"data\": {\n    \"a\": {\"x\":1E2, \"y\": NaN},\n    \"b\": {\"s\": "
      "\"\\u00E9\"},\n"
      "    \"a\": {\"x\": 2}\n  },\n  \"c\\ud800\": {}\n}\n";
  auto store = SimpleKVStore::from_json_text(text, "inline.json");
  EXPECT_EQ(store->to_json_text(),
            R"({"data": {"a": {"x": 2}, "b": {"s": "\u00e9"}}, "c\ud800": {}})");
}

TEST(SimpleKVStore, DuplicateCollectionsKeepTheLastContentsAtTheFirstPosition) {
  auto store = SimpleKVStore::from_json_text(R"({"a": {"k": {}}, "b": {}, "a": {"j": {"v": 1}}})");
  EXPECT_EQ(store->to_json_text(), R"({"a": {"j": {"v": 1}}, "b": {}})");
}

TEST(SimpleKVStore, ANonObjectReplacedByALaterDuplicateIsFine) {
  // json.loads keeps the last value of a duplicate key, at the first key's position.
  auto store = SimpleKVStore::from_json_text(
      R"({"a": 1, "b": {}, "a": {"k": [1], "k": {"v": 2}, "j": {}}})");
  EXPECT_EQ(store->to_json_text(), R"({"a": {"k": {"v": 2}, "j": {}}, "b": {}})");
  KVDEX_EXPECT_ERROR(SimpleKVStore::from_json_text(R"({"a": {}, "b": 1, "a": {"k": 2}})"),
                     ErrorCode::kCorruption);
  try {
    (void)SimpleKVStore::from_json_text(R"({"a": {"k": 2}, "b": 1} x)", "f");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("extra data"), std::string::npos)
        << "a syntax error anywhere is reported before a type error: " << e.what();
  }
}

struct BadFile {
  std::string text;
  std::string expected_fragment;  // must appear in the message
};

TEST(SimpleKVStore, MalformedFilesFailWithFileAndByteOffset) {
  const std::vector<BadFile> cases = {
      {"", "expecting value (the file is empty) at byte 0"},
      {R"({"data": {"k": {"v": 1})", "at byte 23"},
      {R"({"data": {"k": {"v": 1}}}})", "extra data at byte 25"},
      {R"({"data": {"k": {"v": tru}}})", "expecting value at byte 21"},
      {R"({"data": {"k": [1, 2]}})",
       "value of key \"k\" in collection \"data\" is not a JSON object at byte 15"},
      {R"({"data": {"k": 5}})", "is not a JSON object at byte 15"},
      {R"({"data": [1]})", "collection \"data\" is not a JSON object at byte 9"},
      {R"([{"data": {}}])", "a persist file holds one JSON object at byte 0"},
      {"{\"data\": {\"k\": {\"s\": \"a\x01\"}}}", "invalid control character at byte 23"},
      {"{\"data\": {\"k\": {\"v\": 1}},\n \"x\": {\"k\": {\"v\": 01}}}", "(line 2, column 20)"},
  };
  for (const BadFile& c : cases) {
    try {
      (void)SimpleKVStore::from_json_text(c.text, "bad.json");
      ADD_FAILURE() << "accepted " << c.text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption) << c.text;
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("bad.json: ", 0), 0u) << message;
      EXPECT_NE(message.find(c.expected_fragment), std::string::npos) << message;
    }
  }
}

// What a test expects of a file kvdex must refuse: kCorruption naming the file and
// the byte offset, as every malformed file.
void expect_corrupt(const std::string& text, const std::string& fragment) {
  try {
    (void)SimpleKVStore::from_json_text(text, "bad.json");
    ADD_FAILURE() << "accepted " << text.substr(0, 80);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorruption);
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("bad.json: ", 0), 0u) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message.substr(0, 300);
  }
}

TEST(SimpleKVStore, IntegersOverPythonsDigitLimitAreRefusedAtLoad) {
  // json.loads raises ValueError past sys.get_int_max_str_digits() (4,300 by default);
  // the sign does not count.
  const std::string ok = "{\"c\": {\"k\": {\"v\": -" + std::string(4300, '7') + "}}}";
  EXPECT_EQ(SimpleKVStore::from_json_text(ok)->to_json_text(), ok);
  const std::string big = "{\"c\": {\"k\": {\"v\": " + std::string(4301, '7') + "}}}";
  expect_corrupt(big,
                 "Exceeds the limit (4300 digits) for integer string conversion: value has 4301 "
                 "digits at byte 18 (line 1, column 19)");
  // In an array, and in a value that is not canonical (the exact path).
  expect_corrupt("{\"c\": {\"k\": {\"v\": [1,\n" + std::string(4301, '1') + "]}}}",
                 "value has 4301 digits at byte 22 (line 2, column 1)");
  // Floats have no such limit.
  EXPECT_NO_THROW(
      SimpleKVStore::from_json_text("{\"c\": {\"k\": {\"v\": " + std::string(5000, '1') + ".5}}}"));
  // 0 lifts the limit, as sys.set_int_max_str_digits(0).
  json::set_max_int_digits(0);
  std::unique_ptr<SimpleKVStore> unlimited;
  EXPECT_NO_THROW(unlimited = SimpleKVStore::from_json_text(big));
  json::set_max_int_digits(4300);
  ASSERT_TRUE(unlimited);
  EXPECT_EQ(unlimited->to_json_text(), big);
}

std::string nested_file(int value_depth) {
  // {"c": {"k": {"v": [[...]]}}}: the file nests value_depth + 2 levels.
  return "{\"c\": {\"k\": {\"v\": " + std::string(static_cast<std::size_t>(value_depth - 1), '[') +
         std::string(static_cast<std::size_t>(value_depth - 1), ']') + "}}}";
}

TEST(SimpleKVStore, NestingIsCappedWhereLlamaIndexCanStillLoadTheFile) {
  // 900 levels in all (the file's own two included): CPython's json.loads takes 994
  // from a bare interpreter, fewer from deeper in a stack.
  EXPECT_EQ(SimpleKVStore::from_json_text(nested_file(898))->to_json_text(), nested_file(898));
  expect_corrupt(nested_file(899), "nesting too deep at byte 915");
  // The exact path (not canonical text) caps at the same depth.
  std::string spaced = nested_file(899);
  spaced.insert(1, " ");
  expect_corrupt(spaced, "nesting too deep at byte 916");
  // A collection that is not an object nests from the file's second level.
  expect_corrupt("{\"c\": " + std::string(900, '[') + std::string(900, ']') + "}",
                 "nesting too deep at byte 905");
  EXPECT_EQ(EncodedValue::parse(nested_file(898).substr(12, nested_file(898).size() - 14)).text(),
            nested_file(898).substr(12, nested_file(898).size() - 14));
  EXPECT_THROW((void)EncodedValue::parse(nested_file(899).substr(12, nested_file(899).size() - 14)),
               Error);
}

TEST(SimpleKVStore, RawSurrogateBytesThatCollideOnlyWhenJoinedLoadAsPythonReadsThem) {
  // Raw ED A0 BD ED B8 80 is two lone surrogates to Python (bytes decoded with
  // surrogatepass); the escaped pair and F0 9F 98 80 are one character. Python's dict
  // keeps both keys and json.dumps writes both, identically; reading back keeps the last.
  const std::string text =
      "{\"c\": {\"k\": {\"\xED\xA0\xBD\xED\xB8\x80\": 1, \"\xF0\x9F\x98\x80\": 2}}}";
  auto store = SimpleKVStore::from_json_text(text);
  EXPECT_EQ(store->to_json_text(), R"({"c": {"k": {"\ud83d\ude00": 1, "\ud83d\ude00": 2}}})");
  const std::optional<Value> v = store->get("k", "c");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->size(), 1u);
  EXPECT_EQ(v->dump(), "{\"\xF0\x9F\x98\x80\":2}");
}

TEST(SimpleKVStore, ValuesWithKeysThatCollideAsJsonKeepEveryKey) {
  // What json.dumps({1: "a", "1": "b"}) writes; json.loads keeps the last.
  const EncodedValue both = EncodedValue::adopt_canonical(R"({"1": "a", "1": "b"})", nullptr);
  SimpleKVStore store;
  store.put_encoded("k", both);
  EXPECT_EQ(store.to_json_text(), R"({"data": {"k": {"1": "a", "1": "b"}}})");
  EXPECT_EQ(store.get("k")->dump(), R"({"1":"b"})");
  // Many keys take the indexed search: still last wins, first position.
  std::string text = "{";
  for (int i = 0; i < 40; ++i)
    text += "\"k" + std::to_string(i) + "\": " + std::to_string(i) + ", ";
  text += "\"k3\": 99}";
  const Value many = EncodedValue::adopt_canonical(text, nullptr).decode();
  std::vector<std::string> keys;
  for (auto it = many.begin(); it != many.end(); ++it) keys.push_back(it.key());
  ASSERT_EQ(keys.size(), 40u);
  EXPECT_EQ(keys[0], "k0");
  EXPECT_EQ(keys[3], "k3");
  EXPECT_EQ(many.at("k3"), 99);
}

TEST(SimpleKVStore, BomIsReadAsJsonLoadsReadsBytes) {
  // json.loads(b'\xef\xbb\xbf{}') == {}: the persist file and from_json_text read
  // bytes, as EncodedValue::parse does; a second BOM is a character, refused.
  EXPECT_EQ(SimpleKVStore::from_json_text("\xEF\xBB\xBF{}")->to_json_text(), "{}");
  expect_corrupt("\xEF\xBB\xBF\xEF\xBB\xBF{}", "at byte 3");
  EXPECT_EQ(EncodedValue::parse("\xEF\xBB\xBF{\"a\": 1}").text(), R"({"a": 1})");
  EXPECT_EQ(EncodedValue::parse("\xEF\xBB\xBF {\"a\":1}").text(), R"({"a": 1})");
  try {
    (void)EncodedValue::parse("\xEF\xBB\xBF{\"a\": }");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "invalid JSON value: expecting value at byte 9 (line 1, column 10)");
  }
}

TEST(SimpleKVStore, TruncatedPersistFileIsReportedNotHalfLoaded) {
  TempDir dir;
  SimpleKVStore store;
  for (int i = 0; i < 200; ++i) store.put("k" + std::to_string(i), {{"i", i}});
  const std::string full = store.to_json_text();
  for (std::size_t cut : {full.size() / 3, full.size() / 2, full.size() - 1}) {
    testing::write_file_bytes(dir.file("t.json"), full.substr(0, cut));
    try {
      (void)SimpleKVStore::from_persist_path(dir.file("t.json"));
      ADD_FAILURE() << "accepted a file cut at " << cut;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      EXPECT_NE(std::string(e.what()).find(dir.file("t.json")), std::string::npos) << e.what();
    }
  }
  KVDEX_EXPECT_ERROR(SimpleKVStore::from_persist_path(dir.file("none.json")), ErrorCode::kNotFound);
}

TEST(SimpleKVStore, FailedPersistKeepsTheStoreAndTheFile) {
  TempDir dir;
  testing::write_file_bytes(dir.file("blocker"), "x");
  SimpleKVStore store;
  store.put("k", {{"v", 1}});
  KVDEX_EXPECT_ERROR(store.persist(dir.file("blocker/docstore.json")), ErrorCode::kIOError);
  EXPECT_EQ(store.get("k"), (Value{{"v", 1}}));
  EXPECT_EQ(testing::read_file_bytes(dir.file("blocker")), "x");
}

TEST(SimpleKVStore, ToDictAndFromDict) {
  SimpleKVStore store;
  store.put("b", {{"v", 1}});
  store.put("a", {{"v", 2}});
  store.put("z", {{"w", {1, 2}}}, "other");
  const Value dict = store.to_dict();
  EXPECT_EQ(to_python_json(dict), store.to_json_text());
  auto back = SimpleKVStore::from_dict(dict);
  EXPECT_EQ(back->to_json_text(), store.to_json_text());
  KVDEX_EXPECT_ERROR(SimpleKVStore::from_dict(Value::array()), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(SimpleKVStore::from_dict(Value{{"data", 1}}), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(SimpleKVStore::from_dict(Value{{"data", {{"k", 1}}}}),
                     ErrorCode::kInvalidArgument);
}

TEST(SimpleKVStore, PersistThroughAMemoryFileSystem) {
  MemoryFileSystem fs;
  SimpleKVStore store;
  store.put("k", {{"v", 1}});
  store.persist("/dir/kv.json", &fs);
  EXPECT_EQ(fs.contents("/dir/kv.json"), R"({"data": {"k": {"v": 1}}})");
  EXPECT_EQ(SimpleKVStore::from_persist_path("/dir/kv.json", &fs)->get("k"), (Value{{"v", 1}}));
}

TEST(SimpleKVStore, LargeValuesAndManyEntriesSurviveTheFastPath) {
  SimpleKVStore store;
  Value big = Value::object();
  big["text"] = std::string(200000, 'q');
  big["nested"] = {{"a", {1, 2, {{"b", "\xF0\x9F\x98\x80"}}}}};
  store.put("big", big);
  for (int i = 0; i < 20000; ++i) store.put("n" + std::to_string(i), {{"i", i}}, "many");
  const std::string text = store.to_json_text();
  auto loaded = SimpleKVStore::from_json_text(text);
  EXPECT_EQ(loaded->to_json_text(), text);
  EXPECT_EQ(loaded->get("big"), big);
  EXPECT_EQ(loaded->get_all("many").size(), 20000u);
}

}  // namespace
}  // namespace kvdex
