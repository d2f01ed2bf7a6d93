// Futures for the asynchronous twins (aput, aget, ...).
//
// A Future<T> is the read end of a one-shot result. Two ways to consume it:
//   - block:      T v = store.aget("k").get();
//   - be called:  f.on_ready([f]() mutable { use(f.get()); });
// on_ready is what lets an event loop await a result without parking a thread per
// call: the Python package turns the callback into loop.call_soon_threadsafe, and a
// C++20 coroutine can `co_await` a Future directly (Future is an awaitable).
//
// Who completes a future: stores whose engine has native asynchronous I/O complete it
// from their I/O thread; the others run the synchronous operation on an Executor
// (default_executor(), a small shared thread pool) and complete it there.
//
// Thread safety: a Future may be waited on, polled and given callbacks from any
// thread; get() may be called once (it moves the result out), like std::future.
// Callbacks run exactly once, either on the thread that completes the future or, if
// it is already complete, on the thread calling on_ready. They must not block.
// Errors: get() rethrows what the operation threw (normally a kvdex::Error).
#ifndef KVDEX_FUTURE_H_
#define KVDEX_FUTURE_H_

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "kvdex/error.h"
#include "kvdex/thread_annotations.h"

namespace kvdex {

namespace detail {

template <class T>
struct FutureState {
  using Stored = std::conditional_t<std::is_void_v<T>, bool, T>;

  Mutex mu;
  CondVar cv;
  bool ready KVDEX_GUARDED_BY(mu) = false;
  std::optional<Stored> value KVDEX_GUARDED_BY(mu);
  std::exception_ptr error KVDEX_GUARDED_BY(mu);
  std::vector<std::function<void()>> callbacks KVDEX_GUARDED_BY(mu);

  // Publishes the result (a value or an error) and runs the callbacks outside the
  // lock, so a callback may touch the future (get(), on_ready) without deadlocking.
  void complete(std::optional<Stored> result, std::exception_ptr failure) KVDEX_EXCLUDES(mu) {
    std::vector<std::function<void()>> to_run;
    {
      MutexLock lock(mu);
      if (ready) return;
      value = std::move(result);
      error = std::move(failure);
      ready = true;
      to_run.swap(callbacks);
    }
    cv.notify_all();
    for (auto& callback : to_run) callback();
  }
};

}  // namespace detail

template <class T>
class Promise;

template <class T>
class Future {
 public:
  // A default-constructed Future has no state; only valid() is meaningful on it.
  Future() = default;

  bool valid() const noexcept { return state_ != nullptr; }

  bool ready() const {
    MutexLock lock(state_->mu);
    return state_->ready;
  }

  void wait() const {
    MutexLock lock(state_->mu);
    while (!state_->ready) state_->cv.wait(state_->mu);
  }

  // Waits, then returns the result or rethrows the operation's exception.
  T get() {
    MutexLock lock(state_->mu);
    while (!state_->ready) state_->cv.wait(state_->mu);
    if (state_->error) std::rethrow_exception(state_->error);
    if constexpr (!std::is_void_v<T>) return std::move(*state_->value);
  }

  // Calls `callback` once the future is complete (see the file comment for where).
  void on_ready(std::function<void()> callback) {
    {
      MutexLock lock(state_->mu);
      if (!state_->ready) {
        state_->callbacks.push_back(std::move(callback));
        return;
      }
    }
    callback();
  }

  // C++20 awaitable: `T v = co_await store.aget("k");`
  bool await_ready() const { return ready(); }
  void await_suspend(std::coroutine_handle<> handle) {
    on_ready([handle]() mutable { handle.resume(); });
  }
  T await_resume() { return get(); }

 private:
  friend class Promise<T>;
  explicit Future(std::shared_ptr<detail::FutureState<T>> state) : state_(std::move(state)) {}

  std::shared_ptr<detail::FutureState<T>> state_;
};

// The write end. Destroying a Promise that was never completed completes its future
// with Error(kInternal, "broken promise"), so a waiter can never hang on a lost result.
template <class T>
class Promise {
 public:
  Promise() : state_(std::make_shared<detail::FutureState<T>>()) {}
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&&) noexcept = default;
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() {
    if (state_) {
      set_error(std::make_exception_ptr(Error(ErrorCode::kInternal, "broken promise")));
    }
  }

  Future<T> future() const { return Future<T>(state_); }

  template <class... Args>
  void set_value(Args&&... args) {
    using Stored = typename detail::FutureState<T>::Stored;
    if constexpr (std::is_void_v<T>) {
      state_->complete(Stored(true), nullptr);
    } else {
      state_->complete(std::optional<Stored>(std::in_place, std::forward<Args>(args)...), nullptr);
    }
  }

  void set_error(std::exception_ptr error) { state_->complete(std::nullopt, std::move(error)); }

 private:
  std::shared_ptr<detail::FutureState<T>> state_;
};

template <class T>
Future<std::decay_t<T>> make_ready_future(T&& value) {
  Promise<std::decay_t<T>> promise;
  promise.set_value(std::forward<T>(value));
  return promise.future();
}

inline Future<void> make_ready_future() {
  Promise<void> promise;
  promise.set_value();
  return promise.future();
}

// Runs tasks somewhere else. Implementations must run every submitted task exactly
// once and must accept tasks from any thread, including from inside a task.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual void submit(std::function<void()> task) = 0;
};

// The process-wide pool used by stores that have no asynchronous engine: at least
// four threads (the work it runs may wait on disk). Created on first use and
// recreated in a child process after fork(), so a store used from a forked worker
// (Python's multiprocessing) still completes its futures. Never destroyed.
Executor& default_executor();

// Runs `fn` on `executor` and returns its result (or exception) as a Future.
template <class Fn>
auto run_async(Executor& executor, Fn fn) -> Future<std::invoke_result_t<Fn&>> {
  using R = std::invoke_result_t<Fn&>;
  auto promise = std::make_shared<Promise<R>>();
  Future<R> future = promise->future();
  executor.submit([promise, fn = std::move(fn)]() mutable {
    try {
      if constexpr (std::is_void_v<R>) {
        fn();
        promise->set_value();
      } else {
        promise->set_value(fn());
      }
    } catch (...) {
      promise->set_error(std::current_exception());
    }
  });
  return future;
}

}  // namespace kvdex

#endif  // KVDEX_FUTURE_H_
