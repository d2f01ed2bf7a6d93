#include "kvdex/filesystem.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

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

std::vector<std::string> entries_of(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(LocalFileSystem, AtomicWriteGoesThroughASymlinkToItsTarget) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("real"));
  testing::write_file_bytes(dir.file("real/store.json"), "old");
  // A relative link, followed by a link to it: both are resolved.
  std::filesystem::create_symlink("real/store.json", dir.file("link.json"));
  std::filesystem::create_symlink(dir.file("link.json"), dir.file("link2.json"));
  write_file_atomically(local_filesystem(), dir.file("link2.json"),
                        [](WritableFile& f) { f.append("new"); });
  EXPECT_TRUE(std::filesystem::is_symlink(dir.file("link.json")));
  EXPECT_TRUE(std::filesystem::is_symlink(dir.file("link2.json")));
  EXPECT_EQ(testing::read_file_bytes(dir.file("real/store.json")), "new");
  EXPECT_EQ(entries_of(dir.file("real")), std::vector<std::string>{"store.json"});
  // A dangling link creates its target.
  std::filesystem::create_symlink("real/later.json", dir.file("dangling.json"));
  write_file_atomically(local_filesystem(), dir.file("dangling.json"),
                        [](WritableFile& f) { f.append("made"); });
  EXPECT_TRUE(std::filesystem::is_symlink(dir.file("dangling.json")));
  EXPECT_EQ(testing::read_file_bytes(dir.file("real/later.json")), "made");
  // A loop is an error, not a hang.
  std::filesystem::create_symlink("loop-b", dir.file("loop-a"));
  std::filesystem::create_symlink("loop-a", dir.file("loop-b"));
  KVDEX_EXPECT_ERROR(write_file_atomically(local_filesystem(), dir.file("loop-a"),
                                           [](WritableFile& f) { f.append("x"); }),
                     ErrorCode::kIOError);
}

TEST(LocalFileSystem, AtomicWriteKeepsTheModeAndOwnerOfTheFile) {
  TempDir dir;
  const std::string path = dir.file("private.json");
  testing::write_file_bytes(path, "old");
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown(path.c_str(), 12345, 23456), 0);
  }
  SimpleKVStore store;
  store.put("k", {{"secret", 1}});
  store.persist(path);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  if (::geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 12345u);
    EXPECT_EQ(st.st_gid, 23456u);
  }
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  store.persist(path);
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

// The pid of a process that has exited (and been reaped), so kill(pid, 0) is ESRCH.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

TEST(LocalFileSystem, AtomicWriteRemovesTheTemporariesOfDeadWritersOnly) {
  TempDir dir;
  const std::string path = dir.file("store.json");
  const std::string dead = std::to_string(dead_pid());
  const std::string live = std::to_string(::getppid());  // alive while the test runs
  testing::write_file_bytes(dir.file(".store.json.kvdex-tmp-" + dead + "-3"), "partial");
  testing::write_file_bytes(dir.file("store.json.tmp-" + dead + "-0"), "older kvdex");
  testing::write_file_bytes(dir.file(".store.json.kvdex-tmp-" + live + "-7"), "in progress");
  testing::write_file_bytes(dir.file(".other.json.kvdex-tmp-" + dead + "-1"), "not ours");
  testing::write_file_bytes(dir.file(".store.json.kvdex-tmp-x" + dead + "-1"), "not a temp");
  write_file_atomically(local_filesystem(), path, [](WritableFile& f) { f.append("{}"); });
  EXPECT_EQ(entries_of(dir.path()),
            (std::vector<std::string>{".other.json.kvdex-tmp-" + dead + "-1",
                                      ".store.json.kvdex-tmp-" + live + "-7",
                                      ".store.json.kvdex-tmp-x" + dead + "-1", "store.json"}));
}

TEST(LocalFileSystem, TemporariesAreNamedRecognisably) {
  EXPECT_EQ(temporary_file_prefix("/a/b/store.json"), "/a/b/.store.json.kvdex-tmp-");
  EXPECT_EQ(temporary_file_prefix("store.json"), ".store.json.kvdex-tmp-");
  EXPECT_EQ(temporary_file_prefix("/store.json"), "/.store.json.kvdex-tmp-");
}

TEST(LocalFileSystem, APathWithANulByteIsRefused) {
  TempDir dir;
  const std::string path = dir.file("a") + std::string(1, '\0') + "b";
  KVDEX_EXPECT_ERROR(local_filesystem().exists(path), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(read_whole_file(local_filesystem(), path), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(
      write_file_atomically(local_filesystem(), path, [](WritableFile& f) { f.append("x"); }),
      ErrorCode::kInvalidArgument);
  SimpleKVStore store;
  KVDEX_EXPECT_ERROR(store.persist(path), ErrorCode::kInvalidArgument);
  KVDEX_EXPECT_ERROR(SimpleKVStore::from_persist_path(path), ErrorCode::kInvalidArgument);
  EXPECT_EQ(entries_of(dir.path()), std::vector<std::string>{}) << "'a' was not created";
  try {
    check_no_nul(path, "path");
    ADD_FAILURE() << "accepted a NUL byte";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds a NUL byte"), std::string::npos) << e.what();
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
