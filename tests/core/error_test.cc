#include "kvdex/error.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <set>
#include <string>

namespace kvdex {
namespace {

TEST(ErrorCodes, NumbersAndNamesAreStable) {
  // A released number or name never changes meaning: Python, the CLI and stored
  // logs rely on them.
  EXPECT_EQ(static_cast<int>(ErrorCode::kInvalidArgument), 1);
  EXPECT_EQ(static_cast<int>(ErrorCode::kNotFound), 2);
  EXPECT_EQ(static_cast<int>(ErrorCode::kCorruption), 3);
  EXPECT_EQ(static_cast<int>(ErrorCode::kIOError), 4);
  EXPECT_EQ(static_cast<int>(ErrorCode::kUnavailable), 5);
  EXPECT_EQ(static_cast<int>(ErrorCode::kNotSupported), 6);
  EXPECT_EQ(static_cast<int>(ErrorCode::kOutOfRange), 7);
  EXPECT_EQ(static_cast<int>(ErrorCode::kInternal), 8);
  EXPECT_EQ(static_cast<int>(ErrorCode::kFailedPrecondition), 9);
  EXPECT_EQ(static_cast<int>(ErrorCode::kResourceExhausted), 10);
  EXPECT_EQ(static_cast<int>(ErrorCode::kAlreadyExists), 11);
  EXPECT_EQ(static_cast<int>(ErrorCode::kDeadlineExceeded), 12);
  EXPECT_EQ(static_cast<int>(ErrorCode::kPermissionDenied), 13);
  EXPECT_EQ(error_code_name(ErrorCode::kFailedPrecondition), "failed_precondition");
  EXPECT_EQ(error_code_name(ErrorCode::kResourceExhausted), "resource_exhausted");
  EXPECT_EQ(error_code_name(static_cast<ErrorCode>(999)), "unknown");
}

TEST(ErrorCodes, EveryCodeHasADistinctNameAndNumber) {
  std::set<std::string_view> names;
  std::set<int> numbers;
  for (ErrorCode code : kAllErrorCodes) {
    EXPECT_NE(error_code_name(code), "unknown");
    names.insert(error_code_name(code));
    numbers.insert(static_cast<int>(code));
  }
  EXPECT_EQ(names.size(), std::size(kAllErrorCodes));
  EXPECT_EQ(numbers.size(), std::size(kAllErrorCodes));
  EXPECT_EQ(std::size(kAllErrorCodes), 13u);
}

TEST(ErrorCodes, ErrnoBecomesTheMostSpecificCode) {
  EXPECT_EQ(error_code_for_errno(ENOENT), ErrorCode::kNotFound);
  EXPECT_EQ(error_code_for_errno(ENOSPC), ErrorCode::kResourceExhausted);
  EXPECT_EQ(error_code_for_errno(EDQUOT), ErrorCode::kResourceExhausted);
  EXPECT_EQ(error_code_for_errno(EFBIG), ErrorCode::kResourceExhausted);
  EXPECT_EQ(error_code_for_errno(EMFILE), ErrorCode::kResourceExhausted);
  EXPECT_EQ(error_code_for_errno(EACCES), ErrorCode::kPermissionDenied);
  EXPECT_EQ(error_code_for_errno(EIO), ErrorCode::kIOError);
  try {
    throw_errno(ENOSPC, "cannot write", "/tmp/x.json");
    FAIL() << "throw_errno returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    EXPECT_EQ(std::string(e.what()), "cannot write '/tmp/x.json': No space left on device");
  }
}

}  // namespace
}  // namespace kvdex
