#include <unistd.h>

#include <algorithm>
#include <deque>
#include <thread>

#include "kvdex/future.h"
#include "kvdex/thread_annotations.h"

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

  void submit(std::function<void()> task) KVDEX_EXCLUDES(mu_) override {
    {
      MutexLock lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void work() KVDEX_EXCLUDES(mu_) {
    for (;;) {
      std::function<void()> task;
      {
        MutexLock lock(mu_);
        while (tasks_.empty()) cv_.wait(mu_);
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();  // run_async catches everything; a task that throws is a bug, not a crash
    }
  }

  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> tasks_ KVDEX_GUARDED_BY(mu_);
};

Mutex g_pool_mu;
ThreadPool* g_pool KVDEX_GUARDED_BY(g_pool_mu) = nullptr;
pid_t g_pool_pid KVDEX_GUARDED_BY(g_pool_mu) = 0;

}  // namespace

Executor& default_executor() {
  MutexLock lock(g_pool_mu);
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
