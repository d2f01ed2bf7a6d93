// Golden files written by Python's json module (tests/golden/make_golden.py).
#include <gtest/gtest.h>

#include <filesystem>

#include "kvdex/simple_kvstore.h"
#include "test_util.h"

namespace kvdex {
namespace {

namespace fs = std::filesystem;

const fs::path kGolden = fs::path(KVDEX_SOURCE_DIR) / "tests" / "golden";

std::vector<fs::path> files_in(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Golden, CanonicalFilesLoadAndPersistByteForByte) {
  const auto files = files_in(kGolden / "canonical", ".json");
  ASSERT_GE(files.size(), 10u) << "golden files missing under " << kGolden;
  testing::TempDir dir;
  std::size_t files_with_big_integers = 0;
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    const std::string original = testing::read_file_bytes(file.string());
    auto store = SimpleKVStore::from_persist_path(file.string());
    EXPECT_EQ(store->to_json_text(), original);
    const std::string out = dir.file(file.filename().string());
    store->persist(out);
    EXPECT_EQ(testing::read_file_bytes(out), original);
    // Through the typed API as well: decode every value and encode it again.
    // Integers beyond 64 bits have no Value form; only their file says so.
    try {
      auto dict = store->to_dict();
      EXPECT_EQ(SimpleKVStore::from_dict(dict)->to_json_text(), original);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kOutOfRange) << e.what();
      EXPECT_NE(std::string(e.what()).find("does not fit in 64 bits"), std::string::npos)
          << e.what();
      ++files_with_big_integers;
    }
  }
  EXPECT_LE(files_with_big_integers, 2u)
      << "integers.json and nesting.json hold integers beyond 64 bits";
}

TEST(Golden, FilesPersistedByLlamaIndexRoundTripByteForByte) {
  // Written by real llama-index-core 0.14.25 (tools/golden/make_llamaindex_persist.py).
  const fs::path data = fs::path(KVDEX_SOURCE_DIR) / "python" / "tests" / "data";
  const std::vector<fs::path> files = {data / "llamaindex_persist" / "docstore.json",
                                       data / "llamaindex_persist" / "index_store.json",
                                       data / "simple_kvstore" / "kvstore.json"};
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    ASSERT_TRUE(fs::exists(file));
    const std::string original = testing::read_file_bytes(file.string());
    auto store = SimpleKVStore::from_persist_path(file.string());
    EXPECT_EQ(store->to_json_text(), original);
  }
  auto docstore =
      SimpleKVStore::from_persist_path((data / "llamaindex_persist" / "docstore.json").string());
  EXPECT_EQ(
      docstore->collections(),
      (std::vector<std::string>{"docstore/metadata", "docstore/ref_doc_info", "docstore/data"}));
  EXPECT_GT(docstore->count("docstore/data"), 10u);
}

TEST(Golden, NonCanonicalFilesLoadAsPythonLoadsThem) {
  const auto inputs = files_in(kGolden / "noncanonical", ".input.json");
  ASSERT_GE(inputs.size(), 8u);
  for (const fs::path& input : inputs) {
    SCOPED_TRACE(input.string());
    std::string expected_name = input.filename().string();
    expected_name.replace(expected_name.size() - std::string(".input.json").size(),
                          std::string::npos, ".expected.json");
    const std::string expected =
        testing::read_file_bytes((input.parent_path() / expected_name).string());
    auto store = SimpleKVStore::from_persist_path(input.string());
    EXPECT_EQ(store->to_json_text(), expected);
  }
}

TEST(Golden, InvalidFilesFailAtTheOffsetPythonReports) {
  const fs::path manifest_path = kGolden / "invalid" / "manifest.json";
  ASSERT_TRUE(fs::exists(manifest_path));
  const Value manifest = Value::parse(testing::read_file_bytes(manifest_path.string()));
  ASSERT_GE(manifest.size(), 10u);
  for (const Value& entry : manifest) {
    const std::string file = (kGolden / "invalid" / entry["file"].get<std::string>()).string();
    SCOPED_TRACE(file);
    std::size_t expected_offset = 0;
    if (entry.contains("pos") && !entry["pos"].is_null()) {
      expected_offset = entry["pos"].get<std::size_t>();
    } else {
      expected_offset = entry["expected_offset"].get<std::size_t>();
    }
    try {
      (void)SimpleKVStore::from_persist_path(file);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCorruption);
      const std::string message = e.what();
      EXPECT_NE(message.find(file), std::string::npos) << message;
      EXPECT_NE(message.find("at byte " + std::to_string(expected_offset) + " "), std::string::npos)
          << message << " (Python: " << entry.value("python_error", Value()).dump() << ")";
    }
  }
}

}  // namespace
}  // namespace kvdex
