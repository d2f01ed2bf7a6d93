// Thread-safety annotations and the annotated locks kvdex's own code uses.
//
// Clang's -Wthread-safety proves at compile time that a member marked
// KVDEX_GUARDED_BY(mu) is only touched with `mu` held, that a function marked
// KVDEX_REQUIRES(mu) is only called with it held, and that a function marked
// KVDEX_EXCLUDES(mu) is not (a self-deadlock). The analysis only understands lock
// types that carry the annotations, and libstdc++'s std::mutex and
// std::shared_mutex carry none, so kvdex wraps them:
//
//   - Mutex:       std::mutex, annotated;
//   - SharedMutex: std::shared_mutex (reader/writer), annotated;
//   - MutexLock:   holds a Mutex for its scope (std::lock_guard);
//   - WriterLock / ReaderLock: hold a SharedMutex exclusively / shared for their scope;
//   - CondVar:     std::condition_variable over a Mutex. Callers loop on their
//                  condition themselves (`while (!ready_) cv_.wait(mu_);`), so the
//                  condition is read where the analysis knows `mu_` is held; a
//                  predicate lambda would be checked as a function of its own.
//
// The wrappers are inline and add no state, so they cost what the std types cost.
// The macros follow LevelDB's and Abseil's names (without their prefixes) and expand
// to nothing on compilers without the analysis (GCC), so annotated code builds
// everywhere; the `clang` CMake preset checks it. Reference:
// https://clang.llvm.org/docs/ThreadSafetyAnalysis.html
//
// Thread safety: the lock types are as thread-safe as the std types they wrap; a
// MutexLock, WriterLock or ReaderLock belongs to the thread that made it.
#ifndef KVDEX_THREAD_ANNOTATIONS_H_
#define KVDEX_THREAD_ANNOTATIONS_H_

#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#if defined(__clang__) && !defined(SWIG)
#define KVDEX_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define KVDEX_THREAD_ANNOTATION_(x)
#endif

// On a class: its objects are locks ("mutex" or any name for the messages).
#define KVDEX_CAPABILITY(name) KVDEX_THREAD_ANNOTATION_(capability(name))
// On a class: an RAII object holding a capability from construction to destruction.
#define KVDEX_SCOPED_CAPABILITY KVDEX_THREAD_ANNOTATION_(scoped_lockable)
// On a data member: read and written only with `mu` held (reads: held shared at least).
#define KVDEX_GUARDED_BY(mu) KVDEX_THREAD_ANNOTATION_(guarded_by(mu))
// On a pointer member: the pointee is guarded by `mu` (the pointer itself is not).
#define KVDEX_PT_GUARDED_BY(mu) KVDEX_THREAD_ANNOTATION_(pt_guarded_by(mu))
// On a lock member: the documented lock order (checked with -Wthread-safety-beta).
#define KVDEX_ACQUIRED_AFTER(...) KVDEX_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))
#define KVDEX_ACQUIRED_BEFORE(...) KVDEX_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
// On a function: callers hold the capabilities (exclusively / at least shared).
#define KVDEX_REQUIRES(...) KVDEX_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define KVDEX_REQUIRES_SHARED(...) KVDEX_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
// On a function: it acquires / releases the capabilities (no argument: `this`).
#define KVDEX_ACQUIRE(...) KVDEX_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define KVDEX_ACQUIRE_SHARED(...) KVDEX_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define KVDEX_RELEASE(...) KVDEX_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define KVDEX_RELEASE_SHARED(...) KVDEX_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
// On a function: it acquires the capability when it returns `result`.
#define KVDEX_TRY_ACQUIRE(...) KVDEX_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
// On a function: callers must not hold the capabilities (it acquires them itself).
#define KVDEX_EXCLUDES(...) KVDEX_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
// On a function: from its return on, the analysis takes the capability as held.
#define KVDEX_ASSERT_CAPABILITY(x) KVDEX_THREAD_ANNOTATION_(assert_capability(x))
#define KVDEX_ASSERT_SHARED_CAPABILITY(x) KVDEX_THREAD_ANNOTATION_(assert_shared_capability(x))
// On a function: it returns a reference to the capability `x`.
#define KVDEX_RETURN_CAPABILITY(x) KVDEX_THREAD_ANNOTATION_(lock_returned(x))
// On a function: not checked. Each use says why the analysis cannot follow it.
#define KVDEX_NO_THREAD_SAFETY_ANALYSIS KVDEX_THREAD_ANNOTATION_(no_thread_safety_analysis)

namespace kvdex {

class CondVar;

class KVDEX_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() KVDEX_ACQUIRE() { mu_.lock(); }
  void unlock() KVDEX_RELEASE() { mu_.unlock(); }
  bool try_lock() KVDEX_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the caller holds the mutex where it cannot see so (an
  // invariant kept by the caller's logic). Checks nothing at run time:
  // std::mutex cannot say who holds it.
  void assert_held() const KVDEX_ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

class KVDEX_CAPABILITY("shared_mutex") SharedMutex {
 public:
  SharedMutex() = default;
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void lock() KVDEX_ACQUIRE() { mu_.lock(); }
  void unlock() KVDEX_RELEASE() { mu_.unlock(); }
  void lock_shared() KVDEX_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() KVDEX_RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

class KVDEX_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) KVDEX_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() KVDEX_RELEASE() { mu_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mu_;
};

class KVDEX_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) KVDEX_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterLock() KVDEX_RELEASE() { mu_.unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex& mu_;
};

class KVDEX_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) KVDEX_ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReaderLock() KVDEX_RELEASE() { mu_.unlock_shared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex& mu_;
};

// std::condition_variable bound to a Mutex at each wait (as absl::CondVar). wait()
// returns with the mutex held again, possibly spuriously: loop on the condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void wait(Mutex& mu) KVDEX_REQUIRES(mu) {
    // Borrows the caller's hold for the wait and hands it back: no second lock.
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();
  }
  void notify_one() noexcept { cv_.notify_one(); }
  void notify_all() noexcept { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace kvdex

#endif  // KVDEX_THREAD_ANNOTATIONS_H_
