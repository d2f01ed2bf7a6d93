// kvdex::Future -> asyncio.Future, without a thread per call.
//
// bridge() creates a future on the given event loop and registers an on_ready
// callback on the C++ future. The callback runs on whatever thread completes the
// C++ future (an executor or I/O thread) and queues the delivery in the loop's inbox
// without touching Python; the first delivery of a batch takes the GIL once to
// schedule a drain with loop.call_soon_threadsafe. The drain runs on the loop's own
// thread: it converts each result to a Python object (or the error to a kvdex
// exception) and sets it unless the awaiting task was cancelled. So 10,000 calls
// completing together cost a few GIL hand-offs, not 10,000. (A loop that takes no
// attributes, where the inbox cannot be kept, gets one call_soon_threadsafe per
// completion.) A C++ future that is already complete is settled at once.
//
// Python references held by a pending call are released under the GIL inside the
// callback. C++ threads enter Python only through PythonGate: at interpreter exit
// (an atexit hook, before finalization) the gate closes after the callbacks already
// inside have finished, and later completions leave Python alone. Without it, a
// thread taking the GIL during finalization is ended by CPython with a forced
// unwind, which aborts the process.
#ifndef KVDEX_PYTHON_ASYNC_BRIDGE_H_
#define KVDEX_PYTHON_ASYNC_BRIDGE_H_

#include <nanobind/nanobind.h>

#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "errors.h"
#include "kvdex/future.h"

namespace kvdex::python {

// Set once at module init: _settle(future, is_error, value) sets a result or an
// exception on an asyncio future unless it is done (cancelled) already.
nanobind::handle settle_function();

class PythonGate {
 public:
  // True if the caller may take the GIL; pair it with leave().
  static bool enter();
  static void leave();
  // Closes the gate and waits for those inside. Called with the GIL held (it is
  // released while waiting).
  static void close();
};

// enter() + the GIL, for the scope of a callback on a C++ thread.
class PythonScope {
 public:
  PythonScope() : entered_(PythonGate::enter()) {
    if (entered_) state_ = PyGILState_Ensure();
  }
  ~PythonScope() {
    if (!entered_) return;
    PyGILState_Release(state_);
    PythonGate::leave();
  }
  PythonScope(const PythonScope&) = delete;
  PythonScope& operator=(const PythonScope&) = delete;
  explicit operator bool() const { return entered_; }

 private:
  bool entered_;
  PyGILState_STATE state_{};
};

namespace detail_async {

// Strong references to the loop and the asyncio future, dropped under the GIL.
class Pending {
 public:
  Pending(nanobind::handle loop, nanobind::handle future)
      : loop_(loop.inc_ref().ptr()), future_(future.inc_ref().ptr()) {}
  Pending(const Pending&) = delete;
  Pending& operator=(const Pending&) = delete;
  ~Pending() {
    if (loop_ == nullptr) return;
    if (PythonScope python{}) release();
  }

  // Needs the GIL.
  void deliver(bool is_error, nanobind::handle value) {
    try {
      nanobind::handle(loop_).attr("call_soon_threadsafe")(
          settle_function(), nanobind::handle(future_), is_error, value);
    } catch (nanobind::python_error&) {
      // The loop is closed: nobody can await the result any more; drop it.
    }
    release();
  }

  nanobind::handle future() const { return future_; }

  void release() {
    Py_XDECREF(loop_);
    Py_XDECREF(future_);
    loop_ = future_ = nullptr;
  }

 private:
  PyObject* loop_;
  PyObject* future_;
};

// Completions waiting for one event loop (see the file comment). Kept on the loop as
// the attribute _kvdex_inbox (a capsule), so it lives as long as the loop.
class LoopInbox : public std::enable_shared_from_this<LoopInbox> {
 public:
  explicit LoopInbox(PyObject* loop) : loop_(loop) {}

  // Any thread, without the GIL. `delivery` later runs on the loop's thread with the
  // GIL held; every delivery holds a strong reference to the loop (Pending), so the
  // loop is alive while one is queued.
  void post(std::function<void()> delivery);

  // On the loop's thread, with the GIL: runs every delivery queued so far.
  void drain();

 private:
  PyObject* loop_;  // borrowed: see post()
  std::mutex mu_;
  std::vector<std::function<void()>> queued_;
  bool drain_scheduled_ = false;
};

// The loop's inbox, created on first use; nullptr if the loop takes no attributes.
// Needs the GIL.
std::shared_ptr<LoopInbox> inbox_for(nanobind::handle loop);

template <class T, class Convert>
nanobind::object convert_result(kvdex::Future<T>& future, Convert& convert) {
  if constexpr (std::is_void_v<T>) {
    future.get();
    return convert();
  } else {
    return convert(future.get());
  }
}

// The converted result, or the Python exception for the C++ error (is_error set).
struct Outcome {
  nanobind::object value;
  bool is_error = false;
};

template <class T, class Convert>
Outcome outcome_of(kvdex::Future<T>& future, Convert& convert) {
  try {
    return {convert_result(future, convert), false};
  } catch (...) {
    return {exception_object(std::current_exception()), true};
  }
}

}  // namespace detail_async

// `convert` turns the C++ result into a Python object (called with the GIL held);
// for Future<void> it takes no argument.
template <class T, class Convert>
nanobind::object bridge(kvdex::Future<T> future, nanobind::handle loop, Convert convert) {
  namespace nb = nanobind;
  nb::object py_future = loop.attr("create_future")();
  if (future.ready()) {
    try {
      py_future.attr("set_result")(detail_async::convert_result(future, convert));
    } catch (...) {
      py_future.attr("set_exception")(exception_object(std::current_exception()));
    }
    return py_future;
  }
  auto pending = std::make_shared<detail_async::Pending>(loop, py_future);
  if (std::shared_ptr<detail_async::LoopInbox> inbox = detail_async::inbox_for(loop)) {
    future.on_ready([future, pending, inbox, convert = std::move(convert)]() mutable {
      inbox->post([future, pending, convert]() mutable {
        detail_async::Outcome outcome = detail_async::outcome_of(future, convert);
        try {
          settle_function()(pending->future(), outcome.is_error, outcome.value);
        } catch (nb::python_error&) {
          // Setting a result cannot fail but for a broken future: nobody awaits it.
        }
        pending->release();
      });
    });
    return py_future;
  }
  future.on_ready([future, pending, convert = std::move(convert)]() mutable {
    PythonScope python;
    if (!python) return;  // the interpreter is exiting; leave the references alone
    detail_async::Outcome outcome = detail_async::outcome_of(future, convert);
    pending->deliver(outcome.is_error, outcome.value);
  });
  return py_future;
}

}  // namespace kvdex::python

#endif  // KVDEX_PYTHON_ASYNC_BRIDGE_H_
