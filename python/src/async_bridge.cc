#include "async_bridge.h"

#include <condition_variable>
#include <mutex>

namespace kvdex::python {
namespace {

std::mutex g_gate_mu;
std::condition_variable g_gate_cv;
bool g_gate_closed = false;
int g_gate_inside = 0;

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
