#include "kvdex/open.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "kvdex/json_file_store.h"
#include "kvdex/simple_kvstore.h"
#include "test_util.h"

namespace kvdex {
namespace {

TEST(StoreUri, ParsesSchemesAndBarePaths) {
  EXPECT_EQ(parse_store_uri("lmdb:/var/db").scheme, "lmdb");
  EXPECT_EQ(parse_store_uri("lmdb:/var/db").rest, "/var/db");
  EXPECT_EQ(parse_store_uri("json:store.json").scheme, "json");
  EXPECT_EQ(parse_store_uri("storage/docstore.json").scheme, "json");
  EXPECT_EQ(parse_store_uri("storage/docstore.json").rest, "storage/docstore.json");
  EXPECT_EQ(parse_store_uri("./mystore").scheme, "lmdb");
  EXPECT_EQ(parse_store_uri("C:/x").scheme, "lmdb") << "one letter is not a scheme";
  EXPECT_EQ(parse_store_uri("redis://127.0.0.1:6390/0").scheme, "redis");
  EXPECT_EQ(parse_store_uri("redis://127.0.0.1:6390/0").rest, "//127.0.0.1:6390/0");
  EXPECT_EQ(parse_store_uri("memory:").scheme, "memory");
  EXPECT_EQ(parse_store_uri("dir/with:colon").scheme, "lmdb") << "'/' is not a scheme character";
  KVDEX_EXPECT_ERROR(parse_store_uri(""), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(parse_store_uri("json:"), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(parse_store_uri("lmdb:"), ErrorCode::kInvalidArgument);
}

TEST(Open, UnknownSchemesNameTheKnownOnes) {
  try {
    (void)open("nosuch:thing");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("unknown scheme 'nosuch'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("json"), std::string::npos) << e.what();
  }
  const auto schemes = registered_schemes();
  EXPECT_NE(std::find(schemes.begin(), schemes.end(), "memory"), schemes.end());
}

TEST(Open, RegisterSchemeNeverReplacesABuiltinEvenBeforeTheFirstOpen) {
  // ctest runs each test in its own process, so this registration is the first
  // thing this process asks of the registry.
  bool user_factory_called = false;
  KVDEX_EXPECT_ERROR(register_scheme("json",
                                     [&](const StoreUri&, const OpenOptions&) {
                                       user_factory_called = true;
                                       return std::unique_ptr<BaseKVStore>();
                                     }),
                     ErrorCode::kAlreadyExists);
  KVDEX_EXPECT_ERROR(
      register_scheme("memory", [](const StoreUri&,
                                   const OpenOptions&) { return std::unique_ptr<BaseKVStore>(); }),
      ErrorCode::kAlreadyExists);
  testing::TempDir dir;
  auto store = open("json:" + dir.file("s.json"));
  EXPECT_NE(dynamic_cast<JsonFileStore*>(store.get()), nullptr);
  EXPECT_FALSE(user_factory_called);
}

TEST(Open, RegisterSchemeAddsOnceAndChecksTheName) {
  std::string seen;
  register_scheme("kvdex-test+x.1", [&](const StoreUri& uri, const OpenOptions&) {
    seen = uri.rest;
    return std::unique_ptr<BaseKVStore>(std::make_unique<SimpleKVStore>());
  });
  auto store = open("kvdex-test+x.1:some/where");
  EXPECT_EQ(seen, "some/where");
  try {
    register_scheme("kvdex-test+x.1", [](const StoreUri&, const OpenOptions&) {
      return std::unique_ptr<BaseKVStore>();
    });
    ADD_FAILURE() << "a second registration was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kAlreadyExists);
    EXPECT_EQ(std::string(e.what()), "URI scheme 'kvdex-test+x.1' is already registered");
  }
  const auto schemes = registered_schemes();
  EXPECT_NE(std::find(schemes.begin(), schemes.end(), "kvdex-test+x.1"), schemes.end());
  auto make = [](const StoreUri&, const OpenOptions&) { return std::unique_ptr<BaseKVStore>(); };
  for (const char* bad : {"", "x", "Ab", "1ab", "a b", "a:b", "ab/"}) {
    SCOPED_TRACE(bad);
    KVDEX_EXPECT_ERROR(register_scheme(bad, make), ErrorCode::kInvalidArgument);
  }
  KVDEX_EXPECT_ERROR(register_scheme("kvdex-empty", StoreFactory()), ErrorCode::kInvalidArgument);
}

TEST(Open, JsonStoreLoadsAndPersistsItsFile) {
  testing::TempDir dir;
  const std::string path = dir.file("docstore.json");
  {
    auto store = open("json:" + path);
    store->put("k", {{"v", 1}}, "docstore/data");
    store->flush();
    EXPECT_EQ(testing::read_file_bytes(path), R"({"docstore/data": {"k": {"v": 1}}})");
    store->put("k2", {{"v", 2}}, "docstore/data");
  }                         // destroyed: flushed
  auto again = open(path);  // bare .json path
  EXPECT_EQ(again->get("k2", "docstore/data"), (Value{{"v", 2}}));
  EXPECT_EQ(again->collections(), (std::vector<std::string>{"docstore/data"}));
}

TEST(Open, JsonStoreReadOnlyAndMissing) {
  testing::TempDir dir;
  KVDEX_EXPECT_ERROR(open("json:" + dir.file("none.json"), OpenOptions{.create_if_missing = false}),
                     ErrorCode::kNotFound);
  testing::write_file_bytes(dir.file("ro.json"), R"({"data": {"k": {"v": 1}}})");
  auto store = open("json:" + dir.file("ro.json"), OpenOptions{.read_only = true});
  EXPECT_EQ(store->get("k"), (Value{{"v", 1}}));
  KVDEX_EXPECT_ERROR(store->put("k", {{"v", 2}}), ErrorCode::kNotSupported);
  (void)store->get("x", "created/by/read");
  store.reset();
  EXPECT_EQ(testing::read_file_bytes(dir.file("ro.json")), R"({"data": {"k": {"v": 1}}})");
}

TEST(Open, MemoryStoresAreIndependent) {
  auto a = open("memory:");
  auto b = open("memory:");
  a->put("k", {{"v", 1}});
  EXPECT_FALSE(b->get("k").has_value());
}

}  // namespace
}  // namespace kvdex
