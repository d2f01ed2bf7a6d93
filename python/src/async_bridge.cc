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

}  // namespace kvdex::python
