#include "kvdex/future.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "test_util.h"

namespace kvdex {
namespace {

TEST(Future, GetReturnsTheValueSetFromAnotherThread) {
  Promise<int> promise;
  Future<int> future = promise.future();
  EXPECT_FALSE(future.ready());
  std::thread t([p = std::move(promise)]() mutable { p.set_value(42); });
  EXPECT_EQ(future.get(), 42);
  t.join();
}

TEST(Future, CallbacksRunOnceWhetherAddedBeforeOrAfterCompletion) {
  Promise<void> promise;
  Future<void> future = promise.future();
  std::atomic<int> calls{0};
  future.on_ready([&] { ++calls; });
  future.on_ready([&] { ++calls; });
  EXPECT_EQ(calls.load(), 0);
  promise.set_value();
  EXPECT_EQ(calls.load(), 2);
  future.on_ready([&] { ++calls; });  // already complete: runs now, here
  EXPECT_EQ(calls.load(), 3);
  promise.set_value();  // a second completion is ignored
  EXPECT_EQ(calls.load(), 3);
}

TEST(Future, ErrorsAreRethrownByGet) {
  Future<int> future = run_async(
      default_executor(), []() -> int { throw Error(ErrorCode::kUnavailable, "server down"); });
  KVDEX_EXPECT_ERROR(future.get(), ErrorCode::kUnavailable);
}

TEST(Future, ABrokenPromiseCompletesWithInternal) {
  Future<int> future;
  {
    Promise<int> promise;
    future = promise.future();
  }
  KVDEX_EXPECT_ERROR(future.get(), ErrorCode::kInternal);
}

TEST(Future, RunAsyncDoesNotRunOnTheCaller) {
  const auto caller = std::this_thread::get_id();
  Future<std::thread::id> future =
      run_async(default_executor(), [] { return std::this_thread::get_id(); });
  EXPECT_NE(future.get(), caller);
}

TEST(Future, ManyConcurrentTasksAllComplete) {
  std::vector<Future<int>> futures;
  for (int i = 0; i < 2000; ++i)
    futures.push_back(run_async(default_executor(), [i] { return i * 2; }));
  long sum = 0;
  for (auto& f : futures) sum += f.get();
  EXPECT_EQ(sum, 2L * (1999L * 2000L / 2));
}

}  // namespace
}  // namespace kvdex
