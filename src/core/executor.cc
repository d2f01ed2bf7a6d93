#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "kvdex/future.h"

namespace kvdex {
namespace {

// A fixed pool of detached workers. It is never destroyed: a static destructor
// joining threads at exit would race with whatever the threads still do (and with
// the Python interpreter's own shutdown).
class ThreadPool final : public Executor {
 public:
  explicit ThreadPool(unsigned threads) {
    for (unsigned i = 0; i < threads; ++i) std::thread([this] { work(); }).detach();
  }

  void submit(std::function<void()> task) override {
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();  // run_async catches everything; a task that throws is a bug, not a crash
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
};

std::mutex g_pool_mu;
ThreadPool* g_pool = nullptr;
pid_t g_pool_pid = 0;

}  // namespace

Executor& default_executor() {
  std::lock_guard lock(g_pool_mu);
  // After fork() the child has the pool object but none of its threads: make a new
  // one (the old one is abandoned; its memory is the child's only cost).
  if (g_pool == nullptr || g_pool_pid != getpid()) {
    const unsigned threads = std::max(4u, std::thread::hardware_concurrency());
    g_pool = new ThreadPool(threads);
    g_pool_pid = getpid();
  }
  return *g_pool;
}

}  // namespace kvdex
