#include "kvdex/filesystem.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "kvdex/simple_kvstore.h"
#include "test_util.h"
#include "testing/filesystems.h"

namespace kvdex {
namespace {

using testing::FaultInjectionFileSystem;
using testing::FsOp;
using testing::MemoryFileSystem;
using testing::TempDir;

TEST(LocalFileSystem, AtomicWriteCreatesParentsAndReplaces) {
  TempDir dir;
  const std::string path = dir.file("a/b/c/file.json");
  write_file_atomically(local_filesystem(), path, [](WritableFile& f) { f.append("first"); });
  EXPECT_EQ(read_whole_file(local_filesystem(), path), "first");
  write_file_atomically(local_filesystem(), path, [](WritableFile& f) {
    f.append("sec");
    f.append("ond");
  });
  EXPECT_EQ(read_whole_file(local_filesystem(), path), "second");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.file("a/b/c")))
    ++entries;
  EXPECT_EQ(entries, 1u) << "no temporary file is left behind";
}

TEST(LocalFileSystem, ReadWholeFileKeepsPaddingAllocated) {
  TempDir dir;
  testing::write_file_bytes(dir.file("f"), "abc");
  const std::string data = read_whole_file(local_filesystem(), dir.file("f"), 64);
  EXPECT_EQ(data, "abc");
  EXPECT_GE(data.capacity(), 3u + 64u);
}

TEST(LocalFileSystem, ErrorsNameThePathAndKind) {
  TempDir dir;
  KVDEX_EXPECT_ERROR(read_whole_file(local_filesystem(), dir.file("missing")),
                     ErrorCode::kNotFound);
  KVDEX_EXPECT_ERROR(read_whole_file(local_filesystem(), dir.path()), ErrorCode::kIOError);
  testing::write_file_bytes(dir.file("plain"), "x");
  // A parent that is a file: the write must fail cleanly, whoever runs the test.
  try {
    write_file_atomically(local_filesystem(), dir.file("plain/sub.json"),
                          [](WritableFile& f) { f.append("x"); });
    ADD_FAILURE() << "wrote below a regular file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIOError);
    EXPECT_NE(std::string(e.what()).find("plain"), std::string::npos) << e.what();
  }
}

TEST(MemoryFileSystem, AtomicWriteAndRead) {
  MemoryFileSystem fs;
  write_file_atomically(fs, "/x/y.json", [](WritableFile& f) { f.append("{}"); });
  EXPECT_EQ(fs.contents("/x/y.json"), "{}");
  EXPECT_TRUE(fs.exists("/x"));
  EXPECT_EQ(fs.file_count(), 1u);
  KVDEX_EXPECT_ERROR(fs.contents("/nope"), ErrorCode::kNotFound);
}

// Every step of a persist is made to fail in turn; each time the call must throw
// and the file on disk must be the complete old one (or, when only the final
// directory sync failed, the complete new one), never anything in between.
void check_every_step_of_persist_fails_safely(FileSystem& base, const std::string& path,
                                              const std::function<std::string()>& read_back) {
  FaultInjectionFileSystem fs(base);
  SimpleKVStore old_store;
  old_store.put("k", {{"v", "old"}}, "docstore/data");
  old_store.persist(path, &fs);
  const std::string old_bytes = read_back();

  SimpleKVStore new_store;
  for (int i = 0; i < 3000; ++i) {  // several MB, so the writer appends more than once
    new_store.put("key" + std::to_string(i), {{"text", std::string(1000, 'a' + i % 26)}},
                  "docstore/data");
  }
  fs.reset_count();
  new_store.persist(path, &fs);
  const long steps = fs.operation_count();
  const std::string new_bytes = read_back();
  ASSERT_GE(steps, 7) << "create dirs, open, appends, sync, close, rename, sync dir";
  ASSERT_NE(old_bytes, new_bytes);

  for (long failing = 0; failing < steps; ++failing) {
    old_store.persist(path, &fs);  // back to the old file
    fs.reset_count();
    fs.fail_operation(failing);
    EXPECT_THROW(new_store.persist(path, &fs), Error) << "step " << failing;
    fs.fail_operation(-1);
    const std::string now = read_back();
    if (failing == steps - 1) {
      EXPECT_EQ(now, new_bytes) << "only the directory sync failed: the rename was done";
    } else {
      EXPECT_EQ(now, old_bytes) << "step " << failing;
    }
    auto reloaded = SimpleKVStore::from_persist_path(path, &base);
    EXPECT_EQ(reloaded->to_json_text(), now);
  }
}

TEST(FaultInjection, EveryFailingStepOfPersistLeavesTheOldFileOnDisk) {
  TempDir dir;
  const std::string path = dir.file("storage/docstore.json");
  check_every_step_of_persist_fails_safely(local_filesystem(), path,
                                           [&] { return testing::read_file_bytes(path); });
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.file("storage")))
    ++entries;
  EXPECT_EQ(entries, 1u) << "failed persists leave no temporary files";
}

TEST(FaultInjection, EveryFailingStepOfPersistLeavesTheOldFileInMemory) {
  MemoryFileSystem memory;
  check_every_step_of_persist_fails_safely(
      memory, "/storage/docstore.json", [&] { return memory.contents("/storage/docstore.json"); });
  EXPECT_EQ(memory.file_count(), 1u);
}

TEST(FaultInjection, AFailedReadReportsTheError) {
  MemoryFileSystem memory;
  memory.set_contents("/f.json", R"({"data": {}})");
  FaultInjectionFileSystem fs(memory);
  fs.fail_operation(1);  // the first read() after open
  KVDEX_EXPECT_ERROR(SimpleKVStore::from_persist_path("/f.json", &fs), ErrorCode::kIOError);
  EXPECT_EQ(SimpleKVStore::from_persist_path("/f.json", &fs)->to_json_text(), R"({"data": {}})");
}

}  // namespace
}  // namespace kvdex
