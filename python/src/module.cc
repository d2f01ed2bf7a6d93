// kvdex._native: the C++ stores for Python.
//
// The classes here carry the synchronous API and the plumbing; kvdex/_stores.py
// subclasses them to add the coroutines (aput, aget, ...), the fsspec paths of
// persist / from_persist_path and the classmethods, so that the objects users hold
// are instances of the pure-Python classes kvdex.SimpleKVStore, kvdex.KVStore, ...
//
// Values cross as canonical JSON text (py_json.h): a dict is written straight to
// the text json.dumps would make and stored as an EncodedValue; get parses that
// text back into new Python objects, so every get returns an independent value.
//
// The GIL is released around work that may take long or wait: persist, loading,
// to_json_text, batches, get_all, and every operation of a store that is not in
// memory (LMDB I/O, for one). Single in-memory reads and writes keep it: they take
// well under a microsecond, less than a release and re-acquire would cost under
// contention.
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "async_bridge.h"
#include "errors.h"
#include "kvdex/error.h"
#include "kvdex/future.h"
#include "kvdex/in_memory.h"
#include "kvdex/json.h"
#include "kvdex/kvstore.h"
#include "kvdex/open.h"
#include "kvdex/simple_kvstore.h"
#include "kvdex/version.h"
#include "py_json.h"
#if KVDEX_PY_WITH_LMDB
#include "kvdex/lmdb_kvstore.h"
#endif

namespace nb = nanobind;
using namespace nb::literals;

namespace kvdex::python {
namespace {

PyObject* g_settle = nullptr;  // kvdex._native._settle, kept for the process

// An opaque owner of a C++ store, handed from a loader to a class's __init__ so
// that classmethods can return instances of Python subclasses.
struct StoreHandle {
  std::shared_ptr<BaseKVStore> store;
};

// Runs `fn` with the GIL released when `release` is set.
template <class Fn>
auto maybe_without_gil(bool release, Fn&& fn) -> decltype(fn()) {
  if (release) {
    nb::gil_scoped_release no_gil;
    return fn();
  }
  return fn();
}

// Pairs from any iterable of 2-item iterables, values encoded (with the GIL).
std::vector<EncodedKeyValue> encode_pairs(nb::handle kv_pairs) {
  std::vector<EncodedKeyValue> pairs;
  if (PyList_Check(kv_pairs.ptr()) || PyTuple_Check(kv_pairs.ptr())) {
    pairs.reserve(static_cast<std::size_t>(PySequence_Size(kv_pairs.ptr())));
  }
  for (nb::handle item : kv_pairs) {
    nb::object fast = nb::steal(PySequence_Fast(item.ptr(), "cannot unpack non-iterable object"));
    if (!fast.is_valid()) throw nb::python_error();
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(fast.ptr());
    if (n != 2) {
      if (n < 2) {
        PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected 2, got %zd)", n);
      } else {
        PyErr_SetString(PyExc_ValueError, "too many values to unpack (expected 2)");
      }
      throw nb::python_error();
    }
    PyObject** items = PySequence_Fast_ITEMS(fast.ptr());
    StrArg key(items[0], "key");
    pairs.emplace_back(key.str(), encode_value(items[1]));
  }
  return pairs;
}

// An item of PyMapping_Items(): a (key, value) tuple, unless items() was overridden.
void check_item(nb::handle item) {
  if (!PyTuple_Check(item.ptr()) || PyTuple_GET_SIZE(item.ptr()) != 2) {
    throw nb::value_error("items must return 2-tuples");
  }
}

// Pauses Python's cyclic garbage collector while many containers are built at once:
// each new dict counts as an allocation, so a large get_all would otherwise run the
// collector thousands of times over an ever larger young generation (measured: 60% of
// get_all's time on workload A). The objects built hold no cycles.
class GcPause {
 public:
  GcPause() {
#if PY_VERSION_HEX >= 0x030A0000
    was_enabled_ = PyGC_Disable() != 0;
#endif
  }
  ~GcPause() {
#if PY_VERSION_HEX >= 0x030A0000
    if (was_enabled_) PyGC_Enable();
#endif
  }
  GcPause(const GcPause&) = delete;
  GcPause& operator=(const GcPause&) = delete;

 private:
  bool was_enabled_ = false;
};

// What names a store in an error message: its URI, or its class for stores made
// in memory.
using StoreLabel = std::shared_ptr<const std::string>;

// decode_value, its corruption error naming the store, collection and key, as the
// errors of the C++ stores do (a value damaged on disk reaches the decoder first).
nb::object decode_stored(std::string_view text, const StoreLabel& label,
                         std::string_view collection, std::string_view key) {
  try {
    return decode_value(text);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorruption) throw;
    throw Error(e.code(), "store " + *label + ", collection '" + shorten_for_message(collection) +
                              "', key '" + shorten_for_message(key) + "': " + e.what());
  }
}

nb::dict entries_to_dict(const std::vector<EncodedKeyValue>& entries, const StoreLabel& label,
                         std::string_view collection) {
  GcPause pause;
  nb::dict out;
  for (const auto& [key, value] : entries) {
    nb::object k = decode_str(key);
    nb::object v = decode_stored(value.text(), label, collection, key);
    if (PyDict_SetItem(out.ptr(), k.ptr(), v.ptr()) < 0) throw nb::python_error();
  }
  return out;
}

// A collection's entries as get_all takes them (one snapshot), decoded one (key, value)
// pair per next(). A caller that turns each value into something else and drops it
// (LlamaIndex's docs builds a node from each) then holds one decoded value at a time:
// get_all's dict holds them all, and while the caller allocates, every collection the
// cyclic GC runs walks all of them again (docs/python.md, "Reading and keeping
// results"). Each entry's text is released once decoded.
class ItemsIterator {
 public:
  ItemsIterator(std::vector<EncodedKeyValue> entries, StoreLabel label, std::string collection)
      : entries_(std::move(entries)),
        label_(std::move(label)),
        collection_(std::move(collection)) {}

  // A value that cannot be decoded ends the iteration, as an exception ends a
  // generator: a caller that catches the error must not go on to build a partial
  // result without noticing.
  nb::tuple next() {
    if (next_ >= entries_.size()) {
      finish();
      throw nb::stop_iteration();
    }
    EncodedKeyValue entry = std::move(entries_[next_++]);
    try {
      nb::object key = decode_str(entry.first);
      nb::object value = decode_stored(entry.second.text(), label_, collection_, entry.first);
      return nb::make_tuple(key, value);
    } catch (...) {
      finish();
      throw;
    }
  }

  std::size_t remaining() const { return entries_.size() - next_; }

 private:
  void finish() {
    entries_ = {};
    next_ = 0;
  }

  std::vector<EncodedKeyValue> entries_;
  std::size_t next_ = 0;
  StoreLabel label_;
  std::string collection_;
};

// ---- The generic store ------------------------------------------------------------

class PyKVStore {
 public:
  PyKVStore(std::shared_ptr<BaseKVStore> store, std::string label)
      : store_(std::move(store)),
        label_(std::make_shared<const std::string>(std::move(label))),
        in_memory_(dynamic_cast<BaseInMemoryKVStore*>(store_.get()) != nullptr) {}

  // The store, unless closed: every method goes through here (or live()).
  BaseKVStore& store() const { return *live(); }
  const std::shared_ptr<BaseKVStore>& live() const {
    if (closed_) throw Error(ErrorCode::kFailedPrecondition, "store " + *label_ + " is closed");
    return store_;
  }
  bool closed() const { return closed_; }
  const StoreLabel& label() const { return label_; }

  // Saves what the store holds (a json: store rewrites its file) and ends its use.
  // A failure raises and leaves the store open, its writes kept, so close() can be
  // retried; on success the C++ store is released at once (an LMDB environment
  // too) and every later call but close() raises FailedPreconditionError.
  void close() {
    if (closed_) return;
    std::shared_ptr<BaseKVStore> store = store_;
    {
      nb::gil_scoped_release no_gil;
      store->close();
    }
    closed_ = true;
    store_.reset();
    nb::gil_scoped_release no_gil;
    store.reset();  // may wait for the store's pending operations
  }
  bool in_memory() const { return in_memory_; }
  // Single operations release the GIL only where they may wait for I/O.
  bool release_single() const { return !in_memory_; }

  void put(nb::handle key, nb::handle val, nb::handle collection) {
    StrArg k(key.ptr(), "key");
    StrArg c(collection.ptr(), "collection");
    EncodedValue value = encode_value(val.ptr());
    maybe_without_gil(release_single(),
                      [&] { live()->put_encoded(k.view(), std::move(value), c.view()); });
  }

  void put_all(nb::handle kv_pairs, nb::handle collection, int batch_size) {
    check_batch_size(batch_size);  // before anything is read, as LlamaIndex checks first
    StrArg c(collection.ptr(), "collection");
    std::vector<EncodedKeyValue> pairs = encode_pairs(kv_pairs);
    nb::gil_scoped_release no_gil;
    live()->put_all_encoded(pairs, c.view(), batch_size);
  }

  nb::object get(nb::handle key, nb::handle collection) {
    StrArg k(key.ptr(), "key");
    StrArg c(collection.ptr(), "collection");
    std::optional<EncodedValue> value = maybe_without_gil(
        release_single(), [&] { return live()->get_encoded(k.view(), c.view()); });
    if (!value) return nb::none();
    return decode_stored(value->text(), label_, c.view(), k.view());
  }

  nb::dict get_all(nb::handle collection) {
    StrArg c(collection.ptr(), "collection");
    std::vector<EncodedKeyValue> entries;
    {
      nb::gil_scoped_release no_gil;
      entries = live()->get_all_encoded(c.view());
    }
    return entries_to_dict(entries, label_, c.view());
  }

  ItemsIterator iter_items(nb::handle collection) {
    StrArg c(collection.ptr(), "collection");
    std::vector<EncodedKeyValue> entries;
    {
      nb::gil_scoped_release no_gil;
      entries = live()->get_all_encoded(c.view());
    }
    return ItemsIterator(std::move(entries), label_, c.str());
  }

  bool remove(nb::handle key, nb::handle collection) {
    StrArg k(key.ptr(), "key");
    StrArg c(collection.ptr(), "collection");
    return maybe_without_gil(release_single(), [&] { return live()->remove(k.view(), c.view()); });
  }

  nb::list collections() {
    std::vector<std::string> names;
    {
      nb::gil_scoped_release no_gil;
      names = live()->collections();
    }
    nb::list out;
    for (const std::string& name : names) out.append(decode_str(name));
    return out;
  }

  void flush() {
    nb::gil_scoped_release no_gil;
    live()->flush();
  }

  // ---- Asynchronous twins: each returns an asyncio.Future of `loop` ----
  //
  // Each converter holds a reference to the store (`keep`). The store's destructor
  // would wait for its pending operations anyway (kvdex/kvstore.h); holding it means
  // a Python program that drops its last reference never blocks its event loop on
  // that wait.

  nb::object aput(nb::handle key, nb::handle val, nb::handle collection, nb::handle loop) {
    StrArg k(key.ptr(), "key");
    StrArg c(collection.ptr(), "collection");
    return bridge(live()->aput_encoded(k.str(), encode_value(val.ptr()), c.str()), loop,
                  [keep = live()] { return nb::none(); });
  }

  nb::object aput_all(nb::handle kv_pairs, nb::handle collection, int batch_size, nb::handle loop) {
    check_batch_size(batch_size);
    StrArg c(collection.ptr(), "collection");
    std::vector<EncodedKeyValue> pairs = encode_pairs(kv_pairs);
    return bridge(live()->aput_all_encoded(std::move(pairs), c.str(), batch_size), loop,
                  [keep = live()] { return nb::none(); });
  }

  nb::object aget(nb::handle key, nb::handle collection, nb::handle loop) {
    StrArg k(key.ptr(), "key");
    StrArg c(collection.ptr(), "collection");
    return bridge(live()->aget_encoded(k.str(), c.str()), loop,
                  [keep = live(), label = label_, key = k.str(),
                   name = c.str()](std::optional<EncodedValue> value) -> nb::object {
                    if (!value) return nb::none();
                    return decode_stored(value->text(), label, name, key);
                  });
  }

  nb::object aget_all(nb::handle collection, nb::handle loop) {
    StrArg c(collection.ptr(), "collection");
    return bridge(live()->aget_all_encoded(c.str()), loop,
                  [keep = live(), label = label_,
                   name = c.str()](std::vector<EncodedKeyValue> entries) -> nb::object {
                    return entries_to_dict(entries, label, name);
                  });
  }

  nb::object aremove(nb::handle key, nb::handle collection, nb::handle loop) {
    StrArg k(key.ptr(), "key");
    StrArg c(collection.ptr(), "collection");
    return bridge(live()->aremove(k.str(), c.str()), loop,
                  [keep = live()](bool removed) -> nb::object { return nb::bool_(removed); });
  }

 private:
  std::shared_ptr<BaseKVStore> store_;
  StoreLabel label_;
  bool in_memory_;
  // Read and written with the GIL held; atomic for free-threaded builds.
  std::atomic<bool> closed_{false};
};

// ---- SimpleKVStore ------------------------------------------------------------------

std::string collection_label(std::string_view name) {
  return "'" + shorten_for_message(name) + "'";
}

// LlamaIndex's SimpleKVStore(data): {collection: {key: value}}.
std::shared_ptr<SimpleKVStore> simple_from_dict(nb::handle data) {
  if (!PyDict_Check(data.ptr())) {
    throw Error(ErrorCode::kInvalidArgument,
                std::string("from_dict: expected a dict of collections, got ") +
                    Py_TYPE(data.ptr())->tp_name);
  }
  auto store = std::make_shared<SimpleKVStore>();
  nb::object items = nb::steal(PyMapping_Items(data.ptr()));
  if (!items.is_valid()) throw nb::python_error();
  for (nb::handle item : items) {
    check_item(item);
    PyObject* name = PyTuple_GET_ITEM(item.ptr(), 0);
    nb::handle collection = PyTuple_GET_ITEM(item.ptr(), 1);
    StrArg c(name, "collection name");
    if (!PyDict_Check(collection.ptr())) {
      throw Error(ErrorCode::kInvalidArgument,
                  "from_dict: collection " + collection_label(c.view()) + " is not a dict");
    }
    std::vector<EncodedKeyValue> pairs;
    pairs.reserve(static_cast<std::size_t>(PyDict_Size(collection.ptr())));
    nb::object entries = nb::steal(PyMapping_Items(collection.ptr()));
    if (!entries.is_valid()) throw nb::python_error();
    for (nb::handle entry : entries) {
      check_item(entry);
      StrArg k(PyTuple_GET_ITEM(entry.ptr(), 0), "key");
      nb::handle value = PyTuple_GET_ITEM(entry.ptr(), 1);
      if (!PyDict_Check(value.ptr())) {
        throw Error(ErrorCode::kInvalidArgument,
                    "from_dict: value of key " + collection_label(k.view()) + " in collection " +
                        collection_label(c.view()) + " is not a dict");
      }
      pairs.emplace_back(k.str(), encode_value(value.ptr()));
    }
    if (pairs.empty()) {
      store->get_all_encoded(c.view());  // creates the (empty) collection, as LlamaIndex keeps it
    } else {
      store->put_all_encoded(pairs, c.view(),
                             static_cast<int>(std::min<std::size_t>(pairs.size(), 1 << 30)));
    }
  }
  return store;
}

// The C++ parser refuses integers as long as json.loads would here: Python's limit is
// process-wide and can change at any time, so it is read before each parse (the GIL
// held). Pythons before 3.11 have no limit.
void sync_int_max_str_digits() {
  static PyObject* getter = [] {
    PyObject* f = PySys_GetObject("get_int_max_str_digits");  // borrowed
    Py_XINCREF(f);
    return f;
  }();
  if (getter == nullptr) {
    json::set_max_int_digits(0);
    return;
  }
  nb::object limit = nb::steal(PyObject_CallNoArgs(getter));
  if (!limit.is_valid()) throw nb::python_error();
  json::set_max_int_digits(nb::cast<std::size_t>(limit));
}

std::shared_ptr<SimpleKVStore> simple_from_text(nb::handle text, const std::string& source) {
  sync_int_max_str_digits();
  std::string bytes;
  if (PyBytes_Check(text.ptr())) {
    bytes.assign(PyBytes_AS_STRING(text.ptr()),
                 static_cast<std::size_t>(PyBytes_GET_SIZE(text.ptr())));
  } else if (PyByteArray_Check(text.ptr())) {
    bytes.assign(PyByteArray_AS_STRING(text.ptr()),
                 static_cast<std::size_t>(PyByteArray_GET_SIZE(text.ptr())));
  } else if (PyUnicode_Check(text.ptr())) {
    StrArg k(text.ptr(), "text");  // WTF-8, so lone surrogates survive as in json.loads
    bytes = k.str();
    // json.loads(str) refuses a BOM that json.loads(bytes) skips; from_json_text
    // reads bytes.
    if (bytes.starts_with("\xEF\xBB\xBF")) {
      throw Error(ErrorCode::kCorruption, source +
                                              ": Unexpected UTF-8 BOM (decode using utf-8-sig) "
                                              "at byte 0 (line 1, column 1)");
    }
  } else {
    throw nb::type_error("expected str or bytes");
  }
  nb::gil_scoped_release no_gil;
  return std::shared_ptr<SimpleKVStore>(SimpleKVStore::from_json_text(std::move(bytes), source));
}

class PySimpleKVStore : public PyKVStore {
 public:
  explicit PySimpleKVStore(std::shared_ptr<SimpleKVStore> store)
      : PyKVStore(std::move(store), "SimpleKVStore") {}

  SimpleKVStore& simple() const { return static_cast<SimpleKVStore&>(store()); }

  void persist_local(const std::string& path) {
    nb::gil_scoped_release no_gil;
    simple().persist(path);
  }

  nb::object to_json_text() {
    std::string text;
    {
      nb::gil_scoped_release no_gil;
      text = simple().to_json_text();
    }
    return decode_str(text);  // pure ASCII
  }

  nb::dict to_dict() {
    StoreSnapshot snapshot;
    {
      nb::gil_scoped_release no_gil;
      snapshot = simple().snapshot();
    }
    nb::dict out;
    for (const auto& [name, entries] : snapshot) {
      nb::object k = decode_str(name);
      nb::dict collection = entries_to_dict(entries, label(), name);
      if (PyDict_SetItem(out.ptr(), k.ptr(), collection.ptr()) < 0) throw nb::python_error();
    }
    return out;
  }
};

std::shared_ptr<SimpleKVStore> adopt_simple(const StoreHandle& handle) {
  auto simple = std::dynamic_pointer_cast<SimpleKVStore>(handle.store);
  if (!simple) throw nb::type_error("the handle does not hold a SimpleKVStore");
  return simple;
}

// ---- LmdbKVStore --------------------------------------------------------------------

#if KVDEX_PY_WITH_LMDB
LmdbDurability parse_durability(const std::string& name) {
  if (name == "full") return LmdbDurability::kFull;
  if (name == "no_meta_sync") return LmdbDurability::kNoMetaSync;
  throw Error(ErrorCode::kInvalidArgument,
              "durability must be 'full' or 'no_meta_sync', got '" + name + "'");
}

const char* durability_name(LmdbDurability d) {
  return d == LmdbDurability::kFull ? "full" : "no_meta_sync";
}

class PyLmdbKVStore : public PyKVStore {
 public:
  PyLmdbKVStore(std::shared_ptr<LmdbKVStore> store, LmdbOptions options)
      : PyKVStore(store, "'lmdb:" + shorten_for_message(store->path()) + "'"), options_(options) {}

  LmdbKVStore& lmdb() const { return static_cast<LmdbKVStore&>(store()); }
  const LmdbOptions& options() const { return options_; }

 private:
  LmdbOptions options_;
};

std::shared_ptr<LmdbKVStore> open_lmdb(const std::string& path, const LmdbOptions& options) {
  nb::gil_scoped_release no_gil;
  return std::make_shared<LmdbKVStore>(path, options);
}
#endif

// ---- Module -------------------------------------------------------------------------

void settle(nb::handle future, bool is_error, nb::handle value) {
  if (nb::cast<bool>(future.attr("done")())) return;  // cancelled meanwhile
  future.attr(is_error ? "set_exception" : "set_result")(value);
}

}  // namespace

nb::handle settle_function() { return g_settle; }

namespace {

// asyncio's side of the async bridge (async_bridge.h).
void register_async_plumbing(nb::module_& m) {
  m.def("_settle", &settle, "future"_a, "is_error"_a, "value"_a.none());
  g_settle = m.attr("_settle").inc_ref().ptr();
  // Before the interpreter finalizes, stop C++ threads from entering Python.
  m.def("_close_python_gate", &PythonGate::close);
  nb::module_::import_("atexit").attr("register")(m.attr("_close_python_gate"));
}

// Entry points that exist only for the package's tests: they expose the codec and
// the bridge without a store around them.
void register_test_hooks(nb::module_& m) {
  m.def(
      "_dumps",
      [](nb::handle obj) {
        std::string out;
        append_json(out, obj.ptr());
        return decode_str(out);
      },
      "obj"_a.none(), "json.dumps(obj) as kvdex writes it (for tests).");
  m.def(
      "_loads_canonical",
      [](const std::string& text) {
        // Only canonical object text is accepted, as a store holds.
        return decode_value(EncodedValue::parse(text).text());
      },
      "text"_a, "Parses JSON object text as a store reads it back (for tests).");
  m.def(
      "_decode_stored",
      [](nb::bytes text, bool fast_only) -> nb::object {
        const std::string_view view(text.c_str(), text.size());
        if (!fast_only) return decode_value(view);
        std::optional<nb::object> v = decode_value_fast_only(view);
        return v ? *v : nb::none();
      },
      "text"_a, "fast_only"_a = false,
      "Decodes bytes as if a store held them, unchecked (for tests). fast_only: None where "
      "the fast decoder would hand over to the validating parser.");

  m.def(
      "_delayed",
      [](long long result, const std::string& error_code, double seconds, nb::handle loop) {
        const ErrorCode code =
            error_code.empty() ? ErrorCode::kInternal : code_from_name(error_code);
        const bool fail = !error_code.empty();
        auto future = run_async(default_executor(), [=]() -> long long {
          std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
          if (fail) throw Error(code, "delayed failure");
          return result;
        });
        return bridge(std::move(future), loop,
                      [](long long v) -> nb::object { return nb::int_(v); });
      },
      "result"_a, "error_code"_a, "seconds"_a, "loop"_a,
      "An asyncio future completed from a kvdex executor thread after `seconds` (for tests).");
}

void register_kvstore_class(nb::module_& m) {
  nb::class_<StoreHandle>(m, "_StoreHandle",
                          "An opened C++ store, passed to a store class's __init__.");

  nb::class_<ItemsIterator>(m, "_ItemsIterator",
                            "A snapshot of a collection, decoded one (key, value) per next().")
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", &ItemsIterator::next)
      .def("__length_hint__", &ItemsIterator::remaining);

  nb::class_<PyKVStore>(m, "KVStore", "Any kvdex store (the C++ BaseKVStore).")
      .def(
          "__init__",
          [](PyKVStore* self, nb::handle target, bool create_if_missing, bool read_only) {
            if (nb::isinstance<StoreHandle>(target)) {
              new (self) PyKVStore(nb::cast<const StoreHandle&>(target).store, "KVStore");
              return;
            }
            if (!PyUnicode_Check(target.ptr())) throw nb::type_error("uri must be str");
            StrArg uri(target.ptr(), "uri");
            std::unique_ptr<BaseKVStore> store;
            sync_int_max_str_digits();
            {
              nb::gil_scoped_release no_gil;
              store = kvdex::open(uri.view(), OpenOptions{.create_if_missing = create_if_missing,
                                                          .read_only = read_only});
            }
            new (self) PyKVStore(std::shared_ptr<BaseKVStore>(std::move(store)),
                                 "'" + shorten_for_message(uri.view()) + "'");
          },
          "uri"_a, nb::kw_only(), "create_if_missing"_a = true, "read_only"_a = false)
      .def_prop_ro("in_memory", &PyKVStore::in_memory)
      .def("put", &PyKVStore::put, "key"_a.none(), "val"_a.none(),
           "collection"_a.none() = std::string(kDefaultCollection),
           nb::sig("def put(self, key: str, val: dict, collection: str = 'data') -> None"),
           "Store a copy of `val` (a JSON-serializable dict) under `key`.")
      .def("put_all", &PyKVStore::put_all, "kv_pairs"_a.none(),
           "collection"_a.none() = std::string(kDefaultCollection),
           "batch_size"_a = kDefaultBatchSize,
           nb::sig("def put_all(self, kv_pairs: typing.Iterable[tuple[str, dict]], collection: str "
                   "= 'data', "
                   "batch_size: int = 1) -> None"),
           "Store every (key, value) pair, `batch_size` pairs per atomic batch (any batch_size >= "
           "1).")
      .def("get", &PyKVStore::get, "key"_a.none(),
           "collection"_a.none() = std::string(kDefaultCollection),
           nb::sig("def get(self, key: str, collection: str = 'data') -> dict | None"),
           "A new copy of the value stored under `key`, or None.")
      .def("get_all", &PyKVStore::get_all, "collection"_a.none() = std::string(kDefaultCollection),
           nb::sig("def get_all(self, collection: str = 'data') -> dict[str, dict]"),
           "Every key -> value of the collection (new copies).")
      .def("iter_items", &PyKVStore::iter_items,
           "collection"_a.none() = std::string(kDefaultCollection),
           nb::sig("def iter_items(self, collection: str = 'data') -> "
                   "typing.Iterator[tuple[str, dict]]"),
           "get_all(collection).items(), decoded one pair at a time: the collection as it is "
           "when called (later writes are not seen), each value a new copy made when the "
           "iterator reaches it. For reading everything without holding every decoded value "
           "at once. A value that cannot be decoded raises CorruptionError and ends the "
           "iteration.")
      .def("delete", &PyKVStore::remove, "key"_a.none(),
           "collection"_a.none() = std::string(kDefaultCollection),
           nb::sig("def delete(self, key: str, collection: str = 'data') -> bool"),
           "Remove `key`; True if it was there.")
      .def("collections", &PyKVStore::collections,
           "The collection names, in creation order where the store keeps one.")
      .def("flush", &PyKVStore::flush,
           "Make everything written so far durable (json: rewrites its file).")
      .def("close", &PyKVStore::close,
           "Save (json: rewrites its file) and end the store's use; raises if the save fails "
           "(the store then stays open, its writes kept). Later calls raise "
           "FailedPreconditionError; close() again does nothing.")
      .def_prop_ro("closed", &PyKVStore::closed)
      .def("_aput", &PyKVStore::aput, "key"_a.none(), "val"_a.none(), "collection"_a.none(),
           "loop"_a)
      .def("_aput_all", &PyKVStore::aput_all, "kv_pairs"_a.none(), "collection"_a.none(),
           "batch_size"_a, "loop"_a)
      .def("_aget", &PyKVStore::aget, "key"_a.none(), "collection"_a.none(), "loop"_a)
      .def("_aget_all", &PyKVStore::aget_all, "collection"_a.none(), "loop"_a)
      .def("_adelete", &PyKVStore::aremove, "key"_a.none(), "collection"_a.none(), "loop"_a);
}

void register_simple_kvstore_class(nb::module_& m) {
  nb::class_<PySimpleKVStore, PyKVStore>(
      m, "SimpleKVStore",
      "LlamaIndex's SimpleKVStore in C++ (in memory, persisted to one JSON file).")
      .def(
          "__init__",
          [](PySimpleKVStore* self, nb::handle data) {
            if (nb::isinstance<StoreHandle>(data)) {
              new (self) PySimpleKVStore(adopt_simple(nb::cast<const StoreHandle&>(data)));
            } else if (data.is_none()) {
              new (self) PySimpleKVStore(std::make_shared<SimpleKVStore>());
            } else {
              new (self) PySimpleKVStore(simple_from_dict(data));
            }
          },
          "data"_a.none() = nb::none())
      .def("_persist_local", &PySimpleKVStore::persist_local, "persist_path"_a)
      .def("to_json_text", &PySimpleKVStore::to_json_text,
           "The persist file's text (what json.dumps writes for to_dict()).")
      .def("to_dict", &PySimpleKVStore::to_dict, "{collection: {key: value}} (new copies).")
      .def("__getstate__", &PySimpleKVStore::to_json_text)
      .def("__setstate__",
           [](PySimpleKVStore* self, nb::handle state) {
             new (self) PySimpleKVStore(simple_from_text(state, "<pickle>"));
           })
      .def_static(
          "_load",
          [](const std::string& path) {
            std::unique_ptr<SimpleKVStore> store;
            sync_int_max_str_digits();
            {
              nb::gil_scoped_release no_gil;
              store = SimpleKVStore::from_persist_path(path);
            }
            return StoreHandle{std::shared_ptr<BaseKVStore>(std::move(store))};
          },
          "persist_path"_a)
      .def_static(
          "_parse",
          [](nb::handle text, const std::string& source) {
            return StoreHandle{simple_from_text(text, source)};
          },
          "text"_a, "source"_a = "<text>");
}

void register_lmdb_kvstore_class(nb::module_& m) {
#if KVDEX_PY_WITH_LMDB
  m.attr("HAVE_LMDB") = true;
  nb::class_<PyLmdbKVStore, PyKVStore>(m, "LmdbKVStore",
                                       "The durable embedded store (a directory).")
      .def(
          "__init__",
          [](PyLmdbKVStore* self, const std::string& path, std::size_t map_size,
             const std::string& durability, unsigned max_collections, unsigned max_readers,
             bool create_if_missing, bool read_only) {
            LmdbOptions options{.map_size = map_size,
                                .durability = parse_durability(durability),
                                .max_collections = max_collections,
                                .max_readers = max_readers,
                                .create_if_missing = create_if_missing,
                                .read_only = read_only};
            new (self) PyLmdbKVStore(open_lmdb(path, options), options);
          },
          "path"_a, nb::kw_only(), "map_size"_a = LmdbOptions{}.map_size, "durability"_a = "full",
          "max_collections"_a = LmdbOptions{}.max_collections,
          "max_readers"_a = LmdbOptions{}.max_readers, "create_if_missing"_a = true,
          "read_only"_a = false)
      .def_prop_ro("path", [](const PyLmdbKVStore& s) { return s.lmdb().path(); })
      .def_prop_ro("read_only", [](const PyLmdbKVStore& s) { return s.lmdb().read_only(); })
      .def("_options",
           [](const PyLmdbKVStore& s) {
             const LmdbOptions& o = s.options();
             nb::dict d;
             d["map_size"] = o.map_size;
             d["durability"] = durability_name(o.durability);
             d["max_collections"] = o.max_collections;
             d["max_readers"] = o.max_readers;
             d["create_if_missing"] = o.create_if_missing;
             d["read_only"] = o.read_only;
             return d;
           })
      .def("verify", [](PyLmdbKVStore& s) {
        nb::gil_scoped_release no_gil;
        s.lmdb().verify();
      });
#else
  m.attr("HAVE_LMDB") = false;
#endif
}

}  // namespace
}  // namespace kvdex::python

NB_MODULE(_native, m) {
  using namespace kvdex;
  using namespace kvdex::python;
  m.doc() = "kvdex's C++ stores (use the kvdex package, not this module)";
  m.attr("__version__") = KVDEX_VERSION_STRING;
  m.attr("DEFAULT_COLLECTION") = std::string(kDefaultCollection);
  m.attr("DEFAULT_BATCH_SIZE") = kDefaultBatchSize;
  register_error_translation(m);

  register_async_plumbing(m);
  register_test_hooks(m);
  register_kvstore_class(m);
  register_simple_kvstore_class(m);
  register_lmdb_kvstore_class(m);
}
