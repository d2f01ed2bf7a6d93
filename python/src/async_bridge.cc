#include "async_bridge.h"

#include <pthread.h>

#include <condition_variable>
#include <mutex>
#include <new>

namespace kvdex::python {
namespace {

std::mutex g_gate_mu;
std::condition_variable g_gate_cv;
bool g_gate_closed = false;
int g_gate_inside = 0;

// A forked child has none of the parent's other threads: whoever was inside the
// gate (or holding its lock) is not, there.
void reset_gate_in_child() {
  new (&g_gate_mu) std::mutex();
  new (&g_gate_cv) std::condition_variable();
  g_gate_inside = 0;
}

const int g_atfork_registered = pthread_atfork(nullptr, nullptr, reset_gate_in_child);

}  // namespace

bool PythonGate::enter() {
  std::lock_guard lock(g_gate_mu);
  if (g_gate_closed) return false;
  ++g_gate_inside;
  return true;
}

void PythonGate::leave() {
  {
    std::lock_guard lock(g_gate_mu);
    --g_gate_inside;
  }
  g_gate_cv.notify_all();
}

void PythonGate::close() {
  nanobind::gil_scoped_release no_gil;  // those inside may be waiting for the GIL
  std::unique_lock lock(g_gate_mu);
  g_gate_closed = true;
  g_gate_cv.wait(lock, [] { return g_gate_inside == 0; });
}

namespace detail_async {

void LoopInbox::post(std::function<void()> delivery) {
  {
    std::lock_guard lock(mu_);
    queued_.push_back(std::move(delivery));
    if (drain_scheduled_) return;
    drain_scheduled_ = true;
  }
  PythonScope python;
  if (!python) return;  // the interpreter is exiting; leave the references alone
  namespace nb = nanobind;
  try {
    std::shared_ptr<LoopInbox> self = shared_from_this();
    nb::handle(loop_).attr("call_soon_threadsafe")(nb::cpp_function([self] { self->drain(); }));
  } catch (...) {
    // The loop is closed (or lost its inbox): nobody can await these results.
    std::vector<std::function<void()>> dropped;
    {
      std::lock_guard lock(mu_);
      dropped.swap(queued_);
      drain_scheduled_ = false;
    }
    dropped.clear();  // releases their Python references, with the GIL held
  }
}

void LoopInbox::drain() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(queued_);
    drain_scheduled_ = false;
  }
  for (auto& delivery : batch) delivery();
}

namespace {
constexpr const char* kInboxCapsule = "kvdex._loop_inbox";

void free_inbox_capsule(PyObject* capsule) {
  delete static_cast<std::shared_ptr<LoopInbox>*>(PyCapsule_GetPointer(capsule, kInboxCapsule));
}
}  // namespace

std::shared_ptr<LoopInbox> inbox_for(nanobind::handle loop) {
  PyObject* existing = PyObject_GetAttrString(loop.ptr(), "_kvdex_inbox");
  if (existing != nullptr) {
    std::shared_ptr<LoopInbox> inbox;
    if (PyCapsule_IsValid(existing, kInboxCapsule))
      inbox =
          *static_cast<std::shared_ptr<LoopInbox>*>(PyCapsule_GetPointer(existing, kInboxCapsule));
    Py_DECREF(existing);
    return inbox;
  }
  PyErr_Clear();
  auto inbox = std::make_shared<LoopInbox>(loop.ptr());
  PyObject* capsule =
      PyCapsule_New(new std::shared_ptr<LoopInbox>(inbox), kInboxCapsule, free_inbox_capsule);
  if (capsule == nullptr) {
    PyErr_Clear();
    return nullptr;
  }
  const int rc = PyObject_SetAttrString(loop.ptr(), "_kvdex_inbox", capsule);
  Py_DECREF(capsule);
  if (rc != 0) {
    PyErr_Clear();  // a loop without a __dict__ (uvloop): one hand-off per call
    return nullptr;
  }
  return inbox;
}

}  // namespace detail_async

}  // namespace kvdex::python
