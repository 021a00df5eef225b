// src/threading/local.cpp — per-thread storage behind Local<T>.
//
// Each thread that uses a Local owns one LocalRecord (shared_ptr held by a thread_local);
// the record maps Local ids to values. A LocalCore remembers (weakly) the records it put a
// value in, so its destructor can remove its values from threads still running. Lock order:
// never hold LocalCore::mu_ and LocalRecord::mu together; values are destroyed outside
// every lock (their destructors may use other Locals).
#include "concur/threading/local.hpp"

#include <atomic>
#include <unordered_map>

namespace concur::detail {

struct Slot {
  void* value = nullptr;
  LocalCore::Deleter del = nullptr;
  Slot() = default;
  Slot(void* v, LocalCore::Deleter d) : value(v), del(d) {}
  Slot(Slot&& o) noexcept : value(o.value), del(o.del) { o.value = nullptr; }
  Slot& operator=(Slot&& o) noexcept {
    std::swap(value, o.value);
    std::swap(del, o.del);
    return *this;
  }
  ~Slot() {
    if (value) del(value);
  }
};

struct LocalRecord {
  std::mutex mu;
  std::unordered_map<std::uint64_t, Slot> values;  // guarded by mu
};

namespace {

std::atomic<std::uint64_t> next_id{1};

// One-entry cache of the last hit (id, value) in this thread. Safe without a lock: ids are
// never reused and a value is only removed by its own thread or when its Local dies, after
// which that id is never looked up again.
struct Cache {
  std::uint64_t id = 0;
  void* value = nullptr;
};
thread_local Cache tls_cache;

struct RecordHolder {
  std::shared_ptr<LocalRecord> rec;
  ~RecordHolder() {
    tls_cache = {};
    if (!rec) return;
    std::unordered_map<std::uint64_t, Slot> dying;
    {
      std::lock_guard g(rec->mu);
      dying.swap(rec->values);
    }
    dying.clear();  // destructors run here, in the exiting thread, without locks
    // Values created by those destructors in this thread are released with the record.
    std::unordered_map<std::uint64_t, Slot> late;
    {
      std::lock_guard g(rec->mu);
      late.swap(rec->values);
    }
    tls_cache = {};
  }
};
thread_local RecordHolder tls_record;

}  // namespace

LocalCore::LocalCore() : id_(next_id.fetch_add(1, std::memory_order_relaxed)) {}

LocalCore::~LocalCore() {
  std::vector<std::weak_ptr<LocalRecord>> records;
  {
    std::lock_guard g(mu_);
    records.swap(records_);
  }
  for (auto& w : records) {
    std::shared_ptr<LocalRecord> rec = w.lock();
    if (!rec) continue;
    Slot victim;
    {
      std::lock_guard g(rec->mu);
      auto it = rec->values.find(id_);
      if (it != rec->values.end()) {
        victim = std::move(it->second);
        rec->values.erase(it);
      }
    }
  }  // victim destroyed outside the lock
  if (tls_cache.id == id_) tls_cache = {};
}

void* LocalCore::find() const noexcept {
  if (tls_cache.id == id_) return tls_cache.value;
  LocalRecord* rec = tls_record.rec.get();
  if (!rec) return nullptr;
  std::lock_guard g(rec->mu);
  auto it = rec->values.find(id_);
  if (it == rec->values.end()) return nullptr;
  tls_cache = {id_, it->second.value};
  return it->second.value;
}

void LocalCore::insert(void* value, Deleter del) {
  Slot slot(value, del);  // owns the value from here, even if an allocation below throws
  if (!tls_record.rec) tls_record.rec = std::make_shared<LocalRecord>();
  std::shared_ptr<LocalRecord> rec = tls_record.rec;
  {
    std::lock_guard g(mu_);
    // Prune records of threads that have exited so the list does not grow without bound.
    bool present = false;
    std::erase_if(records_, [&](const std::weak_ptr<LocalRecord>& w) {
      if (!w.owner_before(rec) && !rec.owner_before(w)) present = true;
      return w.expired();
    });
    if (!present) records_.push_back(rec);
  }
  {
    std::lock_guard g(rec->mu);
    rec->values.emplace(id_, std::move(slot));
  }
  tls_cache = {id_, value};
}

void LocalCore::erase() noexcept {
  if (tls_cache.id == id_) tls_cache = {};
  LocalRecord* rec = tls_record.rec.get();
  if (!rec) return;
  Slot victim;
  {
    std::lock_guard g(rec->mu);
    auto it = rec->values.find(id_);
    if (it == rec->values.end()) return;
    victim = std::move(it->second);
    rec->values.erase(it);
  }
}

}  // namespace concur::detail
