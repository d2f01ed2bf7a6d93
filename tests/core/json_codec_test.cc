#include "core/json_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kvdex/value.h"
#include "test_util.h"

namespace kvdex::detail {
namespace {

std::string py_float(double d) {
  std::string out;
  append_python_float(out, d);
  return out;
}

std::string py_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

TEST(PythonFloat, MatchesReprLayout) {
  // Expected strings are what CPython's repr() prints.
  EXPECT_EQ(py_float(0.0), "0.0");
  EXPECT_EQ(py_float(-0.0), "-0.0");
  EXPECT_EQ(py_float(1.0), "1.0");
  EXPECT_EQ(py_float(100.0), "100.0");
  EXPECT_EQ(py_float(0.1), "0.1");
  EXPECT_EQ(py_float(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(py_float(1e-05), "1e-05");
  EXPECT_EQ(py_float(1.5e-05), "1.5e-05");
  EXPECT_EQ(py_float(0.0001), "0.0001");
  EXPECT_EQ(py_float(1e16), "1e+16");
  EXPECT_EQ(py_float(1e15), "1000000000000000.0");
  EXPECT_EQ(py_float(123456789012345678.0), "1.2345678901234568e+17");
  EXPECT_EQ(py_float(9007199254740993.0), "9007199254740992.0");
  EXPECT_EQ(py_float(5e-324), "5e-324");
  EXPECT_EQ(py_float(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(py_float(2.5e100), "2.5e+100");
  EXPECT_EQ(py_float(-3.14), "-3.14");
  EXPECT_EQ(py_float(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(py_float(std::nan("")), "NaN");
  EXPECT_EQ(py_float(std::numeric_limits<double>::infinity()), "Infinity");
  EXPECT_EQ(py_float(-std::numeric_limits<double>::infinity()), "-Infinity");
}

TEST(PythonFloat, ParsesLikePythonFloat) {
  EXPECT_EQ(parse_python_float("1e400"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(parse_python_float("-1e400"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(parse_python_float("1e-400"), 0.0);
  EXPECT_EQ(parse_python_float("5e-324"), 5e-324);
  EXPECT_EQ(parse_python_float("2.2250738585072011e-308"), 2.2250738585072011e-308);
  EXPECT_EQ(parse_python_float("1E5"), 100000.0);
}

TEST(JsonString, EscapesAsEnsureAscii) {
  EXPECT_EQ(py_string("plain"), R"("plain")");
  EXPECT_EQ(py_string("q\"b\\s/"), R"("q\"b\\s/")");
  EXPECT_EQ(py_string("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(py_string(std::string("\x00\x01\x1f\x7f", 4)), R"("\u0000\u0001\u001f\u007f")");
  EXPECT_EQ(py_string("é"), R"("\u00e9")");
  EXPECT_EQ(py_string("日本"), R"("\u65e5\u672c")");
  EXPECT_EQ(py_string("\xF0\x9F\x98\x80"), R"("\ud83d\ude00")");
  EXPECT_EQ(py_string("\xF4\x8F\xBF\xBF"), R"("\udbff\udfff")");
  EXPECT_EQ(py_string("\xED\xA0\x80"), R"("\ud800")") << "a lone surrogate (WTF-8)";
  EXPECT_EQ(py_string("\xE2\x80\xA8"), R"("\u2028")");
}

TEST(JsonString, RejectsInvalidUtf8) {
  KVDEX_EXPECT_ERROR(py_string("\xC0\x80"), ErrorCode::kInvalidArgument);  // overlong
  KVDEX_EXPECT_ERROR(py_string("\xFF"), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(py_string("ab\xE2\x82"), ErrorCode::kInvalidArgument);        // truncated
  KVDEX_EXPECT_ERROR(py_string("\xF4\x90\x80\x80"), ErrorCode::kInvalidArgument);  // > U+10FFFF
}

TEST(PythonJson, WritesValuesAsJsonDumps) {
  const Value v = Value::parse(R"({"a": [1, 2.5, "x", null, true, false, {}], "b": {"c": []}})");
  EXPECT_EQ(to_python_json(v), R"({"a": [1, 2.5, "x", null, true, false, {}], "b": {"c": []}})");
  EXPECT_EQ(to_python_json(Value(-9223372036854775807LL - 1)), "-9223372036854775808");
  EXPECT_EQ(to_python_json(Value(18446744073709551615ULL)), "18446744073709551615");
  EXPECT_EQ(to_python_json(Value(2.0)), "2.0");
  KVDEX_EXPECT_ERROR(to_python_json(Value::binary({1, 2})), ErrorCode::kInvalidArgument);
}

TEST(PythonJson, ReadsWhatJsonLoadsAccepts) {
  EXPECT_EQ(to_python_json(from_python_json(" {\"a\" :1 , \"b\":[ ]}\n")), R"({"a": 1, "b": []})");
  Value v = from_python_json(R"({"n": NaN, "i": Infinity, "m": -Infinity})");
  EXPECT_TRUE(std::isnan(v["n"].get<double>()));
  EXPECT_EQ(v["i"].get<double>(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(v["m"].get<double>(), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(from_python_json(R"("\ud83d\ude00")").get<std::string>(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(from_python_json(R"("\uD83D\uDE00")").get<std::string>(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(from_python_json(R"("\ud800x")").get<std::string>(), "\xED\xA0\x80x");
  EXPECT_EQ(from_python_json(R"("\/")").get<std::string>(), "/");
  // Duplicate keys: the last value, at the first key's position.
  EXPECT_EQ(to_python_json(from_python_json(R"({"a": 1, "b": 2, "a": 3})")), R"({"a": 3, "b": 2})");
  EXPECT_EQ(from_python_json("-0").get<std::int64_t>(), 0);
  EXPECT_EQ(from_python_json("1E2").get<double>(), 100.0);
  KVDEX_EXPECT_ERROR(from_python_json("123456789012345678901234567890"), ErrorCode::kOutOfRange);
}

struct BadJson {
  std::string text;
  std::size_t offset;
};

TEST(PythonJson, RejectsWhatJsonLoadsRejectsWithTheOffset) {
  const std::vector<BadJson> cases = {
      {"", 0},         {"{", 1},       {"{\"a\" 1}", 5}, {"{\"a\": 1,}", 8}, {"[1,]", 3},
      {"{'a': 1}", 1}, {"\"\\x\"", 1}, {"\"\\u12\"", 2}, {"\"a\tb\"", 2},    {"01", 1},
      {"+1", 0},       {".5", 0},      {"1.", 1},        {"nan", 0},         {"True", 0},
      {"{} x", 3},     {"\"abc", 0},   {"[1 2]", 3},     {"\"\xFF\"", 1},
  };
  for (const BadJson& c : cases) {
    try {
      (void)canonicalize_any(c.text);
      ADD_FAILURE() << "accepted: " << c.text;
    } catch (const JsonSyntaxError& e) {
      EXPECT_EQ(e.offset, c.offset) << c.text << ": " << e.message;
    }
  }
}

TEST(PythonJson, DeepNestingUpToTheLimit) {
  std::string ok(kMaxJsonDepth, '[');
  ok += std::string(kMaxJsonDepth, ']');
  EXPECT_EQ(canonicalize_any(ok), ok);
  const std::string too_deep = "[" + ok + "]";
  EXPECT_THROW((void)canonicalize_any(too_deep), JsonSyntaxError);
}

TEST(CanonicalCheck, AcceptsExactlyJsonDumpsOutput) {
  EXPECT_TRUE(is_canonical_object("{}"));
  EXPECT_TRUE(is_canonical_object(R"({"a": 1, "b": [1, 2.5, "x\n\u00e9"], "c": {"d": null}})"));
  EXPECT_TRUE(is_canonical_object(R"({"f": 1e-05, "g": -0.0, "n": NaN, "i": -Infinity})"));
  EXPECT_TRUE(is_canonical_object(R"({"s": "\ud83d", "t": "\u007f\u0000"})"));
  EXPECT_TRUE(is_canonical_object(R"({"big": 1234567890123456789012345678901234567890})"));
  EXPECT_FALSE(is_canonical_object(R"({"a":1})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": 1,"b": 2})"));
  EXPECT_FALSE(is_canonical_object(R"( {"a": 1})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": 1} )"));
  EXPECT_FALSE(is_canonical_object(R"({"a": 1E5})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": 1.50})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": -0})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": 1e400})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": "\u00E9"})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": "\u0041"})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": "\u000a"})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": "\/"})"));
  EXPECT_FALSE(is_canonical_object("{\"a\": \"\xC3\xA9\"}"));
  EXPECT_FALSE(is_canonical_object("{\"a\": \"tab\there\"}"));
  EXPECT_FALSE(is_canonical_object(R"({"a": 1, "a": 2})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": tru})"));
  EXPECT_FALSE(is_canonical_object(R"({"a": nan})"));
  EXPECT_FALSE(is_canonical_object(R"([1])"));
  EXPECT_FALSE(is_canonical_object(R"({"a": 1)"));
  std::string many = "{";
  for (int i = 0; i < 40; ++i)
    many += (i ? ", " : "") + std::string("\"k") + std::to_string(i) + "\": 1";
  EXPECT_TRUE(is_canonical_object(many + "}"));
  EXPECT_FALSE(is_canonical_object(many + ", \"k17\": 2}")) << "duplicate in a large object";
}

TEST(EncodedValue, ParseCanonicalizes) {
  EXPECT_EQ(EncodedValue::parse("{\"b\":1,\"a\":[1.50,\"\\u00E9\"]}").text(),
            R"({"b": 1, "a": [1.5, "\u00e9"]})");
  EXPECT_EQ(EncodedValue().text(), "{}");
  KVDEX_EXPECT_ERROR(EncodedValue::parse("[1]"), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(EncodedValue::parse("{\"a\": }"), ErrorCode::kInvalidArgument);
  try {
    (void)EncodedValue::parse("{\"a\":\n tru}");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte 7 (line 2, column 2)"), std::string::npos)
        << e.what();
  }
}

TEST(EncodedValue, EncodeRejectsNonObjects) {
  KVDEX_EXPECT_ERROR(EncodedValue::encode(Value::array()), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(EncodedValue::encode(Value("x")), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(EncodedValue::encode(Value{{"bad", "\xFF"}}), ErrorCode::kInvalidArgument);
}

TEST(EncodedValue, DecodeKeepsOrderOfLargeObjects) {
  Value big = Value::object();
  for (int i = 0; i < 5000; ++i) big["k" + std::to_string(4999 - i)] = i;
  const EncodedValue encoded = EncodedValue::encode(big);
  const Value back = encoded.decode();
  EXPECT_EQ(back, big);
  EXPECT_EQ(back.begin().key(), "k4999");
}

// Canonical text comes from a store; when it does not parse, the store holds bad
// bytes: corruption (not an internal error), with the offset.
TEST(EncodedValue, MalformedStoredTextIsCorruption) {
  for (std::string_view text : {R"({"a": tru})", R"({"a": 1)", "", R"({"a" 1})"}) {
    try {
      (void)decode_canonical(text);
      ADD_FAILURE() << "expected an error for " << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption) << e.what();
      EXPECT_NE(std::string(e.what()).find("stored value is not valid JSON at"), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace
}  // namespace kvdex::detail
