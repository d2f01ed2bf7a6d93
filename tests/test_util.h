// Helpers shared by kvdex's C++ tests.
#ifndef KVDEX_TESTS_TEST_UTIL_H_
#define KVDEX_TESTS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "kvdex/error.h"

// Asserts that `statement` throws kvdex::Error with exactly `expected_code` (never
// "some error": abseil's status matchers have no NotOk on purpose).
#define KVDEX_EXPECT_ERROR(statement, expected_code)                                       \
  do {                                                                                     \
    try {                                                                                  \
      statement;                                                                           \
      ADD_FAILURE() << "expected kvdex::Error(" << ::kvdex::error_code_name(expected_code) \
                    << ") from " #statement;                                               \
    } catch (const ::kvdex::Error& kvdex_error_) {                                         \
      EXPECT_EQ(kvdex_error_.code(), expected_code) << kvdex_error_.what();                \
    }                                                                                      \
  } while (0)

namespace kvdex::testing {

// A fresh directory under the system temp dir, removed with its contents when the
// object dies.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("kvdex-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file_bytes(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

}  // namespace kvdex::testing

#endif  // KVDEX_TESTS_TEST_UTIL_H_
