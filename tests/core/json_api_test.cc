// The public JSON API (kvdex/json.h), the message shortening (kvdex/error.h) and the
// file helpers added for the CLI (kvdex/filesystem.h): exact outputs and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kvdex/error.h"
#include "kvdex/filesystem.h"
#include "kvdex/json.h"
#include "testing/filesystems.h"

namespace kvdex::json {
namespace {

// Runs `f`, which must throw a kvdex::Error; returns it.
template <class F>
Error error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no kvdex::Error thrown";
  return Error(ErrorCode::kInternal, "none");
}

// Runs `f`, which must throw a SyntaxError; returns it.
template <class F>
SyntaxError syntax_error_of(F&& f) {
  try {
    f();
  } catch (const SyntaxError& e) {
    return e;
  }
  ADD_FAILURE() << "no SyntaxError thrown";
  return SyntaxError("", 0, "none");
}

TEST(JsonQuote, EscapesAsJsonDumps) {
  EXPECT_EQ(quote(""), "\"\"");
  EXPECT_EQ(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quote("\n\r\t\b\f\x01\x7f"), "\"\\n\\r\\t\\b\\f\\u0001\\u007f\"");
  EXPECT_EQ(quote("caf\xC3\xA9"), "\"caf\\u00e9\"");
  EXPECT_EQ(quote("\xF0\x9F\x98\x80"), "\"\\ud83d\\ude00\"");
  EXPECT_EQ(quote("\xED\xA0\x80"), "\"\\ud800\"");  // a lone surrogate (WTF-8)
  std::string out = "x";
  append_quoted(out, "k");
  EXPECT_EQ(out, "x\"k\"");
}

TEST(JsonQuote, RejectsBytesThatAreNotWtf8) {
  const Error e = error_of([] { quote("ab\xFF"); });
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_STREQ(e.what(), "string is not valid UTF-8 at byte 2 of the string");
}

TEST(JsonWrite, UEscapeAndFloat) {
  std::string out;
  append_u_escape(out, 0xABCD);
  append_u_escape(out, 0x1F);
  EXPECT_EQ(out, "\\uabcd\\u001f");
  auto repr = [](double d) {
    std::string s;
    append_float(s, d);
    return s;
  };
  EXPECT_EQ(repr(0.1), "0.1");
  EXPECT_EQ(repr(1e16), "1e+16");
  EXPECT_EQ(repr(1e-05), "1e-05");
  EXPECT_EQ(repr(100.0), "100.0");
  EXPECT_EQ(repr(-0.0), "-0.0");
  EXPECT_EQ(repr(std::nan("")), "NaN");
  EXPECT_EQ(repr(-std::numeric_limits<double>::infinity()), "-Infinity");
}

TEST(ErrorMessages, ShortenForMessage) {
  EXPECT_EQ(kMaxShownBytes, 120u);
  EXPECT_EQ(shorten_for_message(""), "");
  EXPECT_EQ(shorten_for_message(std::string(120, 'a')), std::string(120, 'a'));
  EXPECT_EQ(shorten_for_message(std::string(121, 'a')), std::string(120, 'a') + "...(121 bytes)");
  // 119 'a', then a 2-byte character over the limit: it is not cut in two.
  EXPECT_EQ(shorten_for_message(std::string(119, 'a') + "\xC3\xA9" + "b"),
            std::string(119, 'a') + "...(122 bytes)");
}

TEST(ErrorMessages, QuoteForMessage) {
  EXPECT_EQ(quote_for_message("docstore/data"), "\"docstore/data\"");
  EXPECT_EQ(quote_for_message("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(quote_for_message("x\xFFy\xC3\xA9"), "\"x\\ufffdy\\u00e9\"");
  EXPECT_EQ(quote_for_message(std::string(200, 'k')),
            "\"" + std::string(120, 'k') + "\"...(200 bytes)");
}

TEST(JsonErrors, DescribeOffset) {
  EXPECT_EQ(describe_offset("abc", 0), "byte 0 (line 1, column 1)");
  EXPECT_EQ(describe_offset("ab\ncd", 4), "byte 4 (line 2, column 2)");
  EXPECT_EQ(describe_offset("ab", 10), "byte 2 (line 1, column 3)");
}

TEST(JsonErrors, SyntaxErrorIsAnInvalidArgumentNamingTheOffset) {
  const SyntaxError e("{\n  x", 4, "expecting property name enclosed in double quotes");
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(e.offset(), 4u);
  EXPECT_EQ(e.reason(), "expecting property name enclosed in double quotes");
  EXPECT_STREQ(e.what(),
               "expecting property name enclosed in double quotes at byte 4 (line 2, column 3)");
}

TEST(JsonCanonicalize, AnyValue) {
  EXPECT_EQ(canonicalize(" [1.50, {\"a\": 1, \"a\": 2}] "), "[1.5, {\"a\": 2}]");
  EXPECT_EQ(canonicalize("{\"b\":1,\"a\":[true,null,NaN,-Infinity,1E2]}"),
            "{\"b\": 1, \"a\": [true, null, NaN, -Infinity, 100.0]}");
  EXPECT_EQ(canonicalize("\"\\u00E9\""), "\"\\u00e9\"");
  EXPECT_EQ(canonicalize("-0"), "0");
  EXPECT_EQ(canonicalize("123456789012345678901234567890"), "123456789012345678901234567890");
}

TEST(JsonCanonicalize, ErrorsNameTheByteOffset) {
  struct Case {
    const char* text;
    std::size_t offset;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"", 0, "expecting value at byte 0 (line 1, column 1)"},
      {"[1, 2", 5, "expecting ',' delimiter at byte 5 (line 1, column 6)"},
      {"[1,]", 3, "expecting value at byte 3 (line 1, column 4)"},
      {"{\"a\": 1} x", 9, "extra data at byte 9 (line 1, column 10)"},
      {"{\n  \"a\": tru}", 9, "expecting value at byte 9 (line 2, column 8)"},
      {"{\"a\" 1}", 5, "expecting ':' delimiter at byte 5 (line 1, column 6)"},
      {"{1: 2}", 1,
       "expecting property name enclosed in double quotes at byte 1 (line 1, column 2)"},
      {"\"ab", 0, "unterminated string starting at 0 at byte 0 (line 1, column 1)"},
      {"\"\\x\"", 1, "invalid \\escape at byte 1 (line 1, column 2)"},
      {"\"\\u12\"", 2, "invalid \\uXXXX escape at byte 2 (line 1, column 3)"},
      {"\"a\x01\"", 2, "invalid control character at byte 2 (line 1, column 3)"},
      {"\"\xFF\"", 1, "invalid UTF-8 at byte 1 (line 1, column 2)"},
      {"1.x", 1, "extra data at byte 1 (line 1, column 2)"},
  };
  for (const Case& c : cases) {
    const SyntaxError e = syntax_error_of([&] { canonicalize(c.text); });
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << c.text;
    EXPECT_EQ(e.offset(), c.offset) << c.text;
    EXPECT_STREQ(e.what(), c.message) << c.text;
  }
  const SyntaxError deep = syntax_error_of([] { canonicalize(std::string(901, '[')); });
  EXPECT_STREQ(deep.what(), "nesting too deep at byte 900 (line 1, column 901)");
}

TEST(JsonCanonicalize, ObjectOnly) {
  EXPECT_EQ(canonicalize_object("\t{\"z\":{}, \"y\":[]}\n"), "{\"z\": {}, \"y\": []}");
  const SyntaxError e = syntax_error_of([] { canonicalize_object("  [1]"); });
  EXPECT_EQ(e.offset(), 2u);
  EXPECT_STREQ(e.what(), "not a JSON object at byte 2 (line 1, column 3)");
  // A syntax error anywhere wins over the type, as json.loads parses first.
  EXPECT_STREQ(syntax_error_of([] { canonicalize_object("[1,"); }).what(),
               "expecting value at byte 3 (line 1, column 4)");
}

TEST(JsonCanonicalize, IsCanonicalObject) {
  EXPECT_TRUE(is_canonical_object("{\"a\": 1, \"b\": [1.5, \"\\u00e9\"]}"));
  EXPECT_TRUE(is_canonical_object("{}"));
  EXPECT_FALSE(is_canonical_object("{\"a\":1}"));
  EXPECT_FALSE(is_canonical_object(" {}"));
  EXPECT_FALSE(is_canonical_object("[1]"));
  EXPECT_FALSE(is_canonical_object("{\"a\": 1.50}"));
  EXPECT_FALSE(is_canonical_object("{\"a\": 1, \"a\": 2}"));
  EXPECT_FALSE(is_canonical_object("{\"a\": 1."));
}

// Records the events of a parse as text.
class Recorder final : public Handler {
 public:
  std::vector<std::string> events;
  void start_object() override { events.push_back("{"); }
  void key(std::string_view k) override { events.push_back("key:" + std::string(k)); }
  void end_object() override { events.push_back("}"); }
  void start_array() override { events.push_back("["); }
  void end_array() override { events.push_back("]"); }
  void string(std::string_view s) override { events.push_back("str:" + std::string(s)); }
  void integer(std::string_view d) override {
    if (d == "666") throw std::runtime_error("handler refused");
    events.push_back("int:" + std::string(d));
  }
  void floating(double v) override {
    std::string s;
    append_float(s, v);
    events.push_back("float:" + s);
  }
  void boolean(bool b) override { events.push_back(b ? "true" : "false"); }
  void null() override { events.push_back("null"); }
};

TEST(JsonParse, ReportsEveryPartInOrder) {
  Recorder r;
  parse(
      " {\"a\": [1, -2.5e0, \"x\\u00e9\", true, false, null, NaN, 123456789012345678901],"
      " \"a\": {}} ",
      r);
  const std::vector<std::string> expected = {"{",
                                             "key:a",
                                             "[",
                                             "int:1",
                                             "float:-2.5",
                                             "str:x\xC3\xA9",
                                             "true",
                                             "false",
                                             "null",
                                             "float:NaN",
                                             "int:123456789012345678901",
                                             "]",
                                             "key:a",
                                             "{",
                                             "}",
                                             "}"};
  EXPECT_EQ(r.events, expected);
}

TEST(JsonParse, ErrorsAndHandlerExceptions) {
  Recorder r;
  const SyntaxError e = syntax_error_of([&] { parse("{\"a\": 1} {", r); });
  EXPECT_STREQ(e.what(), "extra data at byte 9 (line 1, column 10)");
  Recorder r2;
  EXPECT_THROW(parse("[1, 666]", r2), std::runtime_error);
  EXPECT_EQ(r2.events, (std::vector<std::string>{"[", "int:1"}));
}

TEST(JsonScan, CharacterClasses) {
  EXPECT_TRUE(is_plain_ascii('a'));
  EXPECT_TRUE(is_plain_ascii(' '));
  EXPECT_TRUE(is_plain_ascii('~'));
  EXPECT_FALSE(is_plain_ascii('"'));
  EXPECT_FALSE(is_plain_ascii('\\'));
  EXPECT_FALSE(is_plain_ascii(0x1f));
  EXPECT_FALSE(is_plain_ascii(0x7f));
  EXPECT_FALSE(is_plain_ascii(0xc3));
  EXPECT_TRUE(is_digit('0'));
  EXPECT_TRUE(is_digit('9'));
  EXPECT_FALSE(is_digit('a'));
  EXPECT_EQ(hex_value('0'), 0);
  EXPECT_EQ(hex_value('a'), 10);
  EXPECT_EQ(hex_value('F'), 15);
  EXPECT_EQ(hex_value('g'), -1);
}

TEST(JsonScan, PlainAsciiRunStopsAtTheFirstSpecialByte) {
  auto run = [](const std::string& s) { return plain_ascii_run(s.data(), s.data() + s.size()); };
  EXPECT_EQ(run(""), 0u);
  EXPECT_EQ(run("abc\"def"), 3u);
  EXPECT_EQ(run("\xC3\xA9"), 0u);
  // Every length and position, across the 16- and 32-byte steps.
  for (std::size_t length = 0; length < 80; ++length) {
    EXPECT_EQ(run(std::string(length, 'x')), length);
    for (const char special : {'"', '\\', '\n', '\x7f', '\x80'}) {
      for (std::size_t at = 0; at < length; ++at) {
        std::string s(length, 'x');
        s[at] = special;
        EXPECT_EQ(run(s), at) << "length " << length << " special at " << at;
      }
    }
  }
}

TEST(JsonScan, NumberGrammar) {
  struct Case {
    const char* text;
    std::size_t length;
    bool is_float;
  };
  const std::vector<Case> cases = {
      {"0", 1, false},  {"-12,", 3, false},  {"01", 1, false},  {"-12.5e+3,", 8, true},
      {"0.5", 3, true}, {"12E-2]", 5, true}, {"1e5", 3, true},  {"1.x", 1, false},
      {"1.", 1, false}, {"1e", 1, false},    {"1e+", 1, false}, {"-", 0, false},
      {"+1", 0, false}, {".5", 0, false},    {"", 0, false},    {"-Infinity", 0, false},
  };
  for (const Case& c : cases) {
    const std::string text = c.text;
    const NumberToken token = scan_number(text.data(), text.data() + text.size());
    EXPECT_EQ(static_cast<std::size_t>(token.end - text.data()), c.length) << c.text;
    if (c.length > 0) {
      EXPECT_EQ(token.is_float, c.is_float) << c.text;
    }
  }
}

TEST(JsonScan, ParseFloatAsPython) {
  EXPECT_EQ(parse_float("1.5"), 1.5);
  EXPECT_EQ(parse_float("12"), 12.0);
  EXPECT_EQ(parse_float("1e400"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(parse_float("-1e400"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(parse_float("1e-400"), 0.0);
  EXPECT_EQ(parse_float("5e-324"), 5e-324);
}

TEST(JsonLines, AppendRecord) {
  std::string out;
  append_record(out, "c\xC3\xA9", "k\"", "{\"v\": 1}");
  EXPECT_EQ(out, "{\"collection\": \"c\\u00e9\", \"key\": \"k\\\"\", \"value\": {\"v\": 1}}\n");
  const Error e = error_of([] {
    std::string s;
    append_record(s, "data", "\xFF", "{}");
  });
  EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
}

TEST(JsonLines, ParseRecordRoundTrips) {
  std::string line;
  append_record(line, "docstore/data", "n\xC3\xA9", "{\"text\": \"hi\", \"x\": [1.5]}");
  const Record r = parse_record(line);
  EXPECT_EQ(r.collection, "docstore/data");
  EXPECT_EQ(r.key, "n\xC3\xA9");
  EXPECT_EQ(r.value.text(), "{\"text\": \"hi\", \"x\": [1.5]}");
}

TEST(JsonLines, ParseRecordAcceptsAnyJsonObject) {
  const Record r = parse_record(
      "{\"value\":{\"b\":1.50}, \"extra\": [1, {}], \"key\":\"a\", \"key\": \"b\"}\r\n");
  EXPECT_EQ(r.collection, "data");
  EXPECT_EQ(r.key, "b");
  EXPECT_EQ(r.value.text(), "{\"b\": 1.5}");
}

TEST(JsonLines, ParseRecordErrors) {
  struct Case {
    const char* line;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"not json", "expecting value at byte 0 (line 1, column 1)"},
      {"{\"key\": \"a\",}",
       "expecting property name enclosed in double quotes at byte 12 (line 1, "
       "column 13)"},
      {"[1]", "not a JSON object at byte 0 (line 1, column 1)"},
      {"{\"key\": \"b\", \"value\": [1]}", "\"value\" must be a JSON object"},
      {"{\"key\": 1, \"value\": {}}", "\"key\" must be a string"},
      {"{\"collection\": null, \"key\": \"k\", \"value\": {}}", "\"collection\" must be a string"},
      {"{\"value\": {}}", "missing \"key\""},
      {"{\"key\": \"k\"}", "missing \"value\""},
      {"{}", "missing \"key\""},
  };
  for (const Case& c : cases) {
    const Error e = error_of([&] { parse_record(c.line); });
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << c.line;
    EXPECT_STREQ(e.what(), c.message) << c.line;
  }
}

}  // namespace
}  // namespace kvdex::json

namespace kvdex {
namespace {

using testing::MemoryFileSystem;

TEST(FileHelpers, ReadWholeFileShared) {
  MemoryFileSystem fs;
  fs.set_contents("f", "abc");
  const FileBytes bytes = read_whole_file_shared(fs, "f", 4);
  ASSERT_EQ(bytes.size, 3u);
  EXPECT_EQ(std::string(bytes.data.get(), 7), std::string("abc\0\0\0\0", 7));
  try {
    read_whole_file_shared(fs, "missing");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_STREQ(e.what(), "cannot open 'missing': no such file");
  }
}

TEST(FileHelpers, AtomicWriteCanRequireTheDirectory) {
  MemoryFileSystem fs;
  auto write_x = [](WritableFile& f) { f.append("x"); };
  try {
    write_file_atomically(fs, "nodir/f", write_x, ParentDirectories::kMustExist);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_STREQ(e.what(), "cannot write 'nodir/f': no such directory 'nodir'");
  }
  EXPECT_EQ(fs.file_count(), 0u);
  write_file_atomically(fs, "plain", write_x, ParentDirectories::kMustExist);
  EXPECT_EQ(fs.contents("plain"), "x");
  fs.create_directories("dir");
  write_file_atomically(fs, "dir/f", write_x, ParentDirectories::kMustExist);
  EXPECT_EQ(fs.contents("dir/f"), "x");
  write_file_atomically(fs, "new/sub/f", write_x);  // kCreate by default
  EXPECT_EQ(fs.contents("new/sub/f"), "x");
}

}  // namespace
}  // namespace kvdex
