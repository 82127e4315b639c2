// Batches request audit events and appends them from a background thread, so that
// answering a request never waits for the audit's disk write. State changes are audited by
// the store itself, in the transaction that makes them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "server/store/store.hpp"

namespace stargate::server {

class AuditLog {
 public:
  explicit AuditLog(AuditStore& store);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;

  // Queues an event; never blocks on the store. When the store has been failing and a
  // million events wait, new ones are counted as lost rather than exhausting memory.
  void record(AuditEvent event);
  // Writes everything queued so far, then returns.
  void flush();
  // Flushes and stops the thread.
  void stop();

  std::uint64_t lost() const;

 private:
  void loop();

  AuditStore& store_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::vector<AuditEvent> pending_;
  std::uint64_t queued_ = 0;   // events ever queued
  std::uint64_t written_ = 0;  // events ever written (or given up on)
  std::uint64_t lost_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace stargate::server
